//! statewire runs XState machines as persistent, API-accessible, real-time instances.
//!
//! The modules follow the path of one event through the server:
//!
//! - [`server`]: assembly of the parts below into a listening server, and its ordered shutdown.
//! - [`config`]: layered settings (defaults, file, `STATEWIRE_*` env, flags) for every subcommand.
//! - [`api`]: HTTP routes on hyper (State Backed paths), `/rt` upgrade, `/metrics`, `/healthz`.
//! - [`auth`]: signing keys, HS256 JWT verification, scopes and the operator's admin credential.
//! - [`session`]: WebSocket connections (a reader and a writer task each): subscriptions,
//!   commands, pings.
//! - [`registry`]: hot instances; loads each cold instance once and runs one event at a time.
//! - [`runtime`]: wasmer host for machine modules: compiled-module cache, guest pools, limits.
//! - [`store`]: the `Store` trait with the embedded (redb) and ScyllaDB backends.
//! - [`fanout`]: subscriber sets per instance; each change serialized once, pushed to all.
//! - [`timers`]: durable delayed events, re-armed on restart.
//! - [`effects`]: host operations machine code asks for: `fetch` under an address policy, `sleep`.
//! - [`metrics`]: typed helpers over the `metrics` facade and the Prometheus exporter.
//! - [`error`]: the one map from internal errors to HTTP status, error code and WS error.
//! - [`ids`]: newtypes for every name and id that crosses a module boundary.
//! - [`clock`]: milliseconds since the epoch and the RFC 3339 form the API prints.

pub mod api;
pub mod auth;
pub mod clock;
pub mod config;
pub mod effects;
pub mod error;
pub mod fanout;
pub mod ids;
pub mod metrics;
pub mod registry;
pub mod runtime;
pub mod server;
pub mod session;
pub mod store;
pub mod timers;

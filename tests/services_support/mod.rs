//! What the service tests share: machines that invoke services, and a loopback HTTP server
//! that counts and timestamps the requests it gets.

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use statewire::clock::now_ms;
use tokio::net::TcpListener;

/// Answers `/user/1`, `/user/1/extra`, `/fail` (500), `/hang` (never), `/slow` (after 2 s),
/// and 200 to anything else; remembers every request's path and arrival time (ms since the epoch).
pub struct Backend {
    pub base: String,
    seen: Arc<Mutex<Vec<(String, i64)>>>,
}

impl Backend {
    pub async fn start() -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let log = log.clone();
                        async move {
                            let path = req.uri().path().to_owned();
                            log.lock().push((path.clone(), now_ms()));
                            Ok::<_, Infallible>(answer(&path).await)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Backend { base, seen }
    }

    /// Requests of `path` so far.
    pub fn count(&self, path: &str) -> usize {
        self.seen.lock().iter().filter(|(p, _)| p == path).count()
    }

    /// Arrival times of the requests of `path`.
    pub fn times(&self, path: &str) -> Vec<i64> {
        let seen = self.seen.lock();
        seen.iter()
            .filter(|(p, _)| p == path)
            .map(|(_, t)| *t)
            .collect()
    }

    pub fn counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for (p, _) in self.seen.lock().iter() {
            *counts.entry(p.clone()).or_default() += 1;
        }
        counts
    }
}

async fn answer(path: &str) -> Response<BoxBody<Bytes, Infallible>> {
    let (status, body) = match path {
        "/user/1" => (200, r#"{"id":1,"name":"Ada"}"#),
        "/user/1/extra" => (200, r#"{"plan":"pro"}"#),
        "/fail" => (500, r#"{"oops":true}"#),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            (200, r#"{"slow":true}"#)
        }
        "/hang" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            (200, "{}")
        }
        _ => (200, "{}"),
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)).boxed())
        .unwrap()
}

/// XState 4. `LOAD` invokes `fetchUser` (two chained fetches, from `context.path`), `HANG`
/// a fetch that never answers, `GO` spawns a fetch promise as `p1`, `T` passes through a
/// state with a transient invoke, `CALL` runs a callback service that sends back `PINGED`,
/// `POKE` (in `hanging`) changes only the context, `MARK` enters a state whose entry action fetches `/mark`, `COUNT` enters `counted`,
/// whose named entry action fetches `/count`.
pub const SERVICES_V4: &str = r#"
import { assign, createMachine, spawn } from "npm:xstate";

export default createMachine({
  id: "svc",
  predictableActionArguments: true,
  initial: "idle",
  context: { base: "", path: "/user/1", user: null, error: null },
  states: {
    idle: {
      on: { LOAD: "loading", HANG: "hanging", GO: "spawning", T: "t", CALL: "calling",
            MARK: "marking", COUNT: "counted" },
    },
    loading: {
      invoke: {
        id: "fetchUser",
        src: async (ctx) => {
          const r = await fetch(ctx.base + ctx.path);
          if (!r.ok) throw new Error("status " + r.status);
          const user = await r.json();
          const extra = await (await fetch(ctx.base + ctx.path + "/extra")).json();
          return { ...user, ...extra };
        },
        onDone: { target: "ok", actions: assign({ user: (_, e) => e.data }) },
        onError: { target: "failed", actions: assign({ error: (_, e) => e.data }) },
      },
      after: { 5000: "timedOut" },
    },
    hanging: {
      invoke: { id: "hang", src: (ctx) => fetch(ctx.base + "/hang"), onDone: "ok",
                onError: { target: "failed", actions: assign({ error: (_, e) => e.data }) } },
      on: { POKE: { actions: assign({ pokes: (ctx) => (ctx.pokes || 0) + 1 }) } },
    },
    spawning: {
      entry: assign({ ref: (ctx) => spawn(fetch(ctx.base + "/user/1").then((r) => r.json()), "p1") }),
      on: { "done.invoke.p1": { target: "got", actions: assign({ user: (_, e) => e.data }) } },
    },
    t: { invoke: { id: "never", src: (ctx) => fetch(ctx.base + "/never") }, always: "u" },
    calling: {
      invoke: { id: "cb", src: () => (sendBack) => { setTimeout(() => sendBack({ type: "PINGED" }), 20); } },
      on: { PINGED: "pinged" },
    },
    marking: { entry: (ctx) => { fetch(ctx.base + "/mark"); }, on: { BACK: "idle" } },
    counted: { entry: "count", on: { BACK: "idle" } },
    ok: {}, got: {}, u: {}, pinged: {}, timedOut: {},
    failed: { on: { RETRY: "loading" } },
  },
}, {
  actions: { count: (ctx) => { fetch(ctx.base + "/count"); } },
});

export const allowRead = () => true;
export const allowWrite = () => true;
"#;

/// XState 5: `LOAD` invokes a `fromPromise` actor with input, `GO` spawns a promise child,
/// `HANG` invokes a promise that never settles.
pub const SERVICES_V5: &str = r#"
import { assign, fromPromise, setup, spawnChild } from "xstate5";

const getUser = fromPromise(async ({ input }) => {
  const r = await fetch(input.base + "/user/1");
  return await r.json();
});

const hang = fromPromise(({ input }) => fetch(input.base + "/hang"));

export default setup({ actors: { getUser, hang } }).createMachine({
  id: "svc5",
  initial: "idle",
  context: { base: "", user: null },
  states: {
    idle: { on: { LOAD: "loading", GO: "spawning", HANG: "hanging" } },
    hanging: {
      invoke: { id: "hang", src: "hang", input: ({ context }) => ({ base: context.base }),
                onDone: "ok", onError: "failed" },
    },
    loading: {
      invoke: {
        id: "getUser", src: "getUser", input: ({ context }) => ({ base: context.base }),
        onDone: { target: "ok", actions: assign({ user: ({ event }) => event.output }) },
        onError: "failed",
      },
    },
    spawning: {
      entry: spawnChild("getUser", { id: "p1", input: ({ context }) => ({ base: context.base }) }),
      on: { "xstate.done.actor.p1": { target: "got", actions: assign({ user: ({ event }) => event.output }) } },
    },
    ok: {}, got: {}, failed: { on: { LOAD: "loading" } },
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;
"#;

//! What the HTTP and registry tests share: a real server in-process on 127.0.0.1:0
//! with a temporary data directory, a small HTTP client over real sockets, tokens, and the
//! raw-wasm toggle machine built from `examples/raw-wasm-toggle`.

#![allow(dead_code)]

pub mod client;
pub mod machines;
pub mod probe_store;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use statewire::auth::keys::mint_key;
use statewire::auth::sign::{sign_token, SignOptions};
use statewire::config::{Config, StoreKind};
use statewire::server::{Extensions, RunningServer};
use statewire::store::Store;

pub use client::{Client, Reply};

/// Fails the test if `test` runs longer than `secs`.
pub async fn within<T>(secs: u64, test: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), test)
        .await
        .expect("the test ran past its timeout")
}

/// A config for tests: loopback, port 0, the memory store, `data_dir`, two runtime workers.
pub fn test_config(data_dir: &std::path::Path) -> Config {
    let mut config = Config {
        host: "127.0.0.1".to_owned(),
        port: 0,
        data_dir: data_dir.to_owned(),
        shutdown_grace_ms: 5_000,
        ..Config::default()
    };
    config.store.kind = StoreKind::Memory;
    config.runtime.workers = 2;
    config.runtime.call_deadline_ms = 5_000;
    config
}

/// A running server and what tests need around it.
pub struct TestServer {
    pub server: Option<RunningServer>,
    pub client: Client,
    pub admin_token: String,
    /// Kept so the data directory lives as long as the server.
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}, Extensions::default()).await
    }

    /// Starts with a config adjusted by `adjust` and the given extensions.
    pub async fn start_with(adjust: impl FnOnce(&mut Config), ext: Extensions) -> TestServer {
        Self::start_in(tempfile::tempdir().expect("temp dir"), adjust, ext).await
    }

    /// Starts on an existing data directory (e.g. one a previous server used).
    pub async fn start_in(
        dir: tempfile::TempDir,
        adjust: impl FnOnce(&mut Config),
        ext: Extensions,
    ) -> TestServer {
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let server = statewire::server::start_with(config, ext)
            .await
            .expect("server starts");
        let admin = server.admin_key();
        let admin_token = sign_token(&admin.id, &admin.secret, &json!({"sub": "admin"}), &hour())
            .expect("admin token")
            .token;
        TestServer {
            client: Client::new(server.addr()),
            server: Some(server),
            admin_token,
            dir,
        }
    }

    pub fn running(&self) -> &RunningServer {
        self.server.as_ref().expect("server is running")
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.running().store()
    }

    /// A token of a new key holding exactly `scopes`, acting as `act`.
    pub async fn token(&self, scopes: &[&str], act: Value) -> String {
        let key = mint_key(
            "test".to_owned(),
            scopes.iter().map(|s| (*s).to_owned()).collect(),
        );
        self.store().put_key(&key).await.expect("key stored");
        sign_token(&key.id, &key.secret, &act, &hour())
            .expect("token")
            .token
    }

    /// Creates machine `name` (no versions), as the admin.
    pub async fn create_machine(&self, name: &str) {
        let r = self
            .admin()
            .post("/machines", &json!({ "slug": name }))
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }

    /// Calls made with the admin token: `Authorization: Bearer <admin>`.
    pub fn admin(&self) -> client::Authed<'_> {
        self.client.authed(&self.admin_token)
    }

    /// Shuts the server down cleanly and hands back its data directory.
    pub async fn shutdown(mut self) -> tempfile::TempDir {
        if let Some(server) = self.server.take() {
            server
                .shutdown(Duration::from_secs(5))
                .await
                .expect("clean shutdown");
        }
        self.dir
    }
}

fn hour() -> SignOptions {
    SignOptions {
        expires_in: Duration::from_secs(3600),
        issuer: None,
    }
}

//! Local HTTP servers for the `fetch` tests: each binds 127.0.0.1:0, answers with a handler,
//! reports what it received and counts the connections it accepted.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use statewire::config::FetchConfig;
use statewire::effects::HostOps;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub type Body = BoxBody<Bytes, Infallible>;

/// What a test server saw of one request.
#[derive(Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// A server on 127.0.0.1:0 that answers with `handler`, reports each request on the
/// returned channel and counts the connections it accepted.
pub struct TestServer {
    pub addr: SocketAddr,
    pub seen_rx: mpsc::UnboundedReceiver<Seen>,
    connections: Arc<AtomicUsize>,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

pub async fn serve<F, Fut>(handler: F) -> TestServer
where
    F: Fn(String) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, seen_rx) = mpsc::unbounded_channel();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            counted.fetch_add(1, Ordering::SeqCst);
            let handler = handler.clone();
            let seen_tx = seen_tx.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let handler = handler.clone();
                    let seen_tx = seen_tx.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let path = parts.uri.path_and_query().unwrap().to_string();
                        let _ = seen_tx.send(Seen {
                            method: parts.method.to_string(),
                            path: path.clone(),
                            headers: parts.headers,
                            body,
                        });
                        Ok::<_, Infallible>(handler(path).await)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    TestServer {
        addr,
        seen_rx,
        connections,
    }
}

pub fn full(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Response<Body> {
    let mut builder = Response::builder().status(status);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.body(Full::new(body.into()).boxed()).unwrap()
}

pub fn ops(allow: &[String], tweak: impl FnOnce(&mut FetchConfig)) -> HostOps {
    let mut config = FetchConfig {
        allow: allow.to_vec(),
        ..FetchConfig::default()
    };
    tweak(&mut config);
    HostOps::new(&config).unwrap()
}

pub fn allow_loopback() -> HostOps {
    ops(&["127.0.0.1".to_owned()], |_| {})
}

/// Runs a test body with a deadline so a hang fails instead of blocking the suite.
pub async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("test took longer than 20 s")
}

pub fn error_of(result: &Value) -> &str {
    assert_eq!(result["ok"], false, "expected a failure, got {result}");
    result["error"].as_str().expect("error is a string")
}

impl TestServer {
    /// Connections accepted so far.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

//! A keep-alive HTTP/1.1 client for setting a server up.

use std::net::SocketAddr;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// One HTTP/1.1 connection; requests go one after the other.
pub struct Http {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
}

/// A response: status and body.
pub struct Response {
    pub status: u16,
    pub body: Bytes,
}

impl Response {
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "status {} body is not JSON: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Fails unless the status is `want`.
    pub fn expect(self, want: u16, what: &str) -> anyhow::Result<Response> {
        anyhow::ensure!(
            self.status == want,
            "{what}: status {} ({})",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        Ok(self)
    }
}

impl Http {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Http> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Http { addr, sender })
    }

    /// Sends a request with `content-type` and an optional bearer token.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: impl Into<Bytes>,
    ) -> anyhow::Result<Response> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string())
            .header("content-type", content_type);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        // The connection takes the next request only once it finished the previous one.
        self.sender.ready().await?;
        let response = self
            .sender
            .send_request(builder.body(Full::new(body.into()))?)
            .await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Response { status, body })
    }

    pub async fn json(
        &mut self,
        method: Method,
        path: &str,
        token: &str,
        body: &Value,
    ) -> anyhow::Result<Response> {
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(body)?
        };
        self.call(method, path, Some(token), "application/json", bytes)
            .await
    }
}

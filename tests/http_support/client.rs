//! A small HTTP/1.1 client over real sockets: one connection per request.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone, Copy, Debug)]
pub struct Client {
    pub addr: SocketAddr,
}

/// A response, fully read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The `code` of an error body.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Client {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends `request` on a fresh connection and reads the whole response.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Reply {
        self.connect().await.send(request).await
    }

    /// A keep-alive connection for several requests in a row.
    pub async fn connect(&self) -> Connection {
        let stream = TcpStream::connect(self.addr).await.expect("connect");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        Connection {
            host: self.addr.to_string(),
            sender,
        }
    }

    /// A request with the given headers and body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        self.send(builder.body(Full::new(body.into())).unwrap())
            .await
    }

    pub fn authed<'a>(&'a self, token: &'a str) -> Authed<'a> {
        Authed {
            client: self,
            token,
        }
    }

    /// Writes `raw` bytes on a fresh connection and reads until the server closes it (or
    /// `max_bytes` of response arrived); for requests a well-behaved client would not send.
    pub async fn raw(&self, raw: &[u8]) -> String {
        let mut stream = TcpStream::connect(self.addr).await.expect("connect");
        // The server may answer and close before reading everything; a failed write is fine.
        let _ = stream.write_all(raw).await;
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// One HTTP/1.1 connection; requests on it go one after the other.
pub struct Connection {
    host: String,
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Connection {
    pub async fn send(&mut self, mut request: Request<Full<Bytes>>) -> Reply {
        if !request.headers().contains_key(http::header::HOST) {
            let host = self.host.parse().unwrap();
            request.headers_mut().insert(http::header::HOST, host);
        }
        self.sender.ready().await.expect("connection ready");
        let response = self
            .sender
            .send_request(request)
            .await
            .unwrap_or_else(|e| panic!("response: {e:?}"));
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }
}

/// Requests the way the official client makes them: bearer token and
/// `content-type: application/json` on every call.
pub struct Authed<'a> {
    pub client: &'a Client,
    pub token: &'a str,
}

impl Authed<'_> {
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let auth = format!("Bearer {}", self.token);
        let body = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        self.client
            .request(
                method,
                path,
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                body,
            )
            .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    /// A POST with no body at all, as the client does for `POST …/v`.
    pub async fn post_empty(&self, path: &str) -> Reply {
        self.call(Method::POST, path, None).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::DELETE, path, Some(body)).await
    }
}

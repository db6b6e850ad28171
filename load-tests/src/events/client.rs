//! One connection that sends events and waits for each reply: HTTP/1.1 keep-alive
//! (`POST /machines/{m}/i/{i}/events`) or a WebSocket speaking the `send-event` command.
//! A connection that failed is opened again on the next send.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use hyper::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::Protocol;
use crate::http::Http;

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Why an event was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What the report counts: `http 409 invalid-state`, `ws 403 missing-scope`, `timeout`,
    /// `connect`, `connection` (the connection broke mid-request), `bad-reply`.
    pub kind: String,
    /// The server answered with an error: the connection is still good.
    refused: bool,
}

impl Failure {
    fn broken(kind: &str) -> Failure {
        Failure {
            kind: kind.to_owned(),
            refused: false,
        }
    }

    /// A refusal with the status and error code the server answered.
    fn refused(protocol: &str, status: u64, body: &Value) -> Failure {
        let code = body["code"].as_str().unwrap_or("no-code");
        Failure {
            kind: format!("{protocol} {status} {code}"),
            refused: true,
        }
    }
}

enum Link {
    Http(Http),
    Ws(Box<Socket>),
}

pub struct EventClient {
    protocol: Protocol,
    addr: SocketAddr,
    /// Events go to `/machines/{machine}/i/{instance}/events` (or the command's fields).
    machine: String,
    instance: String,
    token: String,
    link: Option<Link>,
    next_request: u64,
    timeout: Duration,
}

impl EventClient {
    pub fn new(
        protocol: Protocol,
        addr: SocketAddr,
        machine: &str,
        instance: &str,
        token: String,
        timeout: Duration,
    ) -> EventClient {
        EventClient {
            protocol,
            addr,
            machine: machine.to_owned(),
            instance: instance.to_owned(),
            token,
            link: None,
            next_request: 0,
            timeout,
        }
    }

    /// Opens the connection now rather than on the first send.
    pub async fn connect(&mut self) -> Result<(), Failure> {
        if self.link.is_none() {
            self.link = Some(self.open().await?);
        }
        Ok(())
    }

    /// Sends `toggle` and returns the `ts` of the durable state the reply carries.
    pub async fn send(&mut self) -> Result<u64, Failure> {
        self.connect().await?;
        let outcome = tokio::time::timeout(self.timeout, self.exchange()).await;
        let outcome = outcome.unwrap_or_else(|_| Err(Failure::broken("timeout")));
        if matches!(&outcome, Err(failure) if !failure.refused) {
            self.link = None;
        }
        outcome
    }

    async fn open(&self) -> Result<Link, Failure> {
        match self.protocol {
            Protocol::Http => Http::connect(self.addr)
                .await
                .map(Link::Http)
                .map_err(|_| Failure::broken("connect")),
            Protocol::Ws => {
                let stream = tokio::net::TcpStream::connect(self.addr)
                    .await
                    .map_err(|_| Failure::broken("connect"))?;
                let url = format!("ws://{}/rt?token={}", self.addr, self.token);
                let (ws, _) = tokio_tungstenite::client_async(url, stream)
                    .await
                    .map_err(|_| Failure::broken("connect"))?;
                Ok(Link::Ws(Box::new(ws)))
            }
        }
    }

    async fn exchange(&mut self) -> Result<u64, Failure> {
        self.next_request += 1;
        let request_id = self.next_request.to_string();
        let (machine, instance, token) = (&self.machine, &self.instance, &self.token);
        match self.link.as_mut().expect("connected before the exchange") {
            Link::Http(http) => {
                let path = format!("/machines/{machine}/i/{instance}/events");
                let response = http
                    .json(Method::POST, &path, token, &json!({"event": "toggle"}))
                    .await
                    .map_err(|_| Failure::broken("connection"))?;
                let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
                if response.status != 200 {
                    return Err(Failure::refused("http", response.status.into(), &body));
                }
                body["ts"].as_u64().ok_or(Failure::broken("bad-reply"))
            }
            Link::Ws(ws) => {
                let command = json!({"type": "send-event", "requestId": request_id,
                    "machineName": machine, "machineInstanceName": instance, "event": "toggle"});
                ws.send(Message::Text(command.to_string().into()))
                    .await
                    .map_err(|_| Failure::broken("connection"))?;
                loop {
                    let frame = match ws.next().await {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(_)) => continue,
                        _ => return Err(Failure::broken("connection")),
                    };
                    let frame: Value =
                        serde_json::from_str(&frame).map_err(|_| Failure::broken("bad-reply"))?;
                    if frame["requestId"].as_str() != Some(request_id.as_str()) {
                        continue;
                    }
                    let status = frame["status"].as_u64().unwrap_or(0);
                    return match frame["type"].as_str() {
                        Some("reply") if status == 200 => frame["body"]["ts"]
                            .as_u64()
                            .ok_or(Failure::broken("bad-reply")),
                        _ => Err(Failure::refused("ws", status, &frame)),
                    };
                }
            }
        }
    }
}

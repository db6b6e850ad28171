//! What the real-time tests share: a WebSocket client speaking the `/rt` protocol over a real
//! socket, a server with the toggle machine, and a client-side model of the diff extension.
//! Built on the HTTP tests' server and client (`http_support`).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use statewire::config::Config;
use statewire::fanout::patch::{apply, PatchOp};
use statewire::server::Extensions;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::http_support::{machines, TestServer};

/// What an end user's token may do: create, read and send events.
pub const USER_SCOPES: &[&str] = &["instances.write", "state.read", "events.write"];

/// How long a test waits for one frame before failing.
const FRAME_WAIT: Duration = Duration::from_secs(20);

/// A server (adjusted by `adjust`) with the toggle machine as `toggle`'s current version.
pub async fn toggle_server(adjust: impl FnOnce(&mut Config)) -> TestServer {
    let s = TestServer::start_with(adjust, Extensions::default()).await;
    let code = machines::toggle().await;
    machines::machine_with_version(&s, "toggle", &code).await;
    s
}

/// A token the toggle's authorizers accept for instance `name`.
pub async fn user(s: &TestServer, name: &str) -> String {
    s.token(USER_SCOPES, json!({"sub": name})).await
}

/// Creates toggle instance `name` over HTTP; returns its `State`.
pub async fn create(s: &TestServer, token: &str, name: &str) -> Value {
    let r = s
        .client
        .authed(token)
        .post("/machines/toggle", &json!({"slug": name}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.json()
}

/// Sends `toggle` to instance `name` over HTTP; returns its `State`.
pub async fn toggle(s: &TestServer, token: &str, name: &str) -> Value {
    let r = s
        .client
        .authed(token)
        .post(
            &format!("/machines/toggle/i/{name}/events"),
            &json!({"event": "toggle"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.json()
}

/// A client's WebSocket configuration: small buffers, so thousands of clients fit.
pub fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// `/rt?token=…`, as the official client builds it.
pub fn rt_url(addr: SocketAddr, token: &str) -> String {
    format!("ws://{addr}/rt?token={token}")
}

pub struct WsClient {
    pub ws: WebSocketStream<TcpStream>,
}

/// A refused handshake: status and body.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: Value,
}

impl WsClient {
    /// Connects to `/rt` with `token`; panics if refused.
    pub async fn connect(addr: SocketAddr, token: &str) -> WsClient {
        Self::connect_url(addr, &rt_url(addr, token))
            .await
            .unwrap_or_else(|r| panic!("upgrade refused: {r:?}"))
    }

    /// Connects over an already made TCP stream (e.g. one with a small receive buffer).
    pub async fn connect_on(stream: TcpStream, url: &str) -> Result<WsClient, Refused> {
        match tokio_tungstenite::client_async_with_config(url, stream, Some(client_config())).await
        {
            Ok((ws, _)) => Ok(WsClient { ws }),
            Err(WsError::Http(response)) => {
                let status = response.status().as_u16();
                let body = response
                    .body()
                    .as_deref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(Value::Null);
                Err(Refused { status, body })
            }
            Err(e) => panic!("websocket handshake failed: {e}"),
        }
    }

    pub async fn connect_url(addr: SocketAddr, url: &str) -> Result<WsClient, Refused> {
        let stream = TcpStream::connect(addr).await.expect("tcp connect");
        Self::connect_on(stream, url).await
    }

    pub async fn send(&mut self, message: Value) {
        self.ws
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("send");
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.expect("send");
    }

    /// The next message of any kind, `None` once the stream ended.
    pub async fn next_message(&mut self) -> Option<Result<Message, WsError>> {
        tokio::time::timeout(FRAME_WAIT, self.ws.next())
            .await
            .expect("no frame arrived in time")
    }

    /// The next text frame as JSON; panics on anything else.
    pub async fn next_json(&mut self) -> Value {
        loop {
            match self.next_message().await {
                Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Asserts that no text frame arrives within `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        if let Ok(next) = tokio::time::timeout(quiet, self.ws.next()).await {
            panic!("expected silence, got {next:?}");
        }
    }

    /// Reads until the server's close frame; returns it (`None` when the stream ended
    /// without one).
    pub async fn close_frame(&mut self) -> Option<CloseFrame> {
        loop {
            match self.next_message().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    pub async fn subscribe(&mut self, instance: &str, request_id: &str) {
        self.send(json!({
            "type": "subscribe-to-instance", "requestId": request_id,
            "machineName": "toggle", "machineInstanceName": instance,
        }))
        .await;
    }

    /// Subscribes asking for diffs, optionally resuming from `last` (`lastSeq`, `lastTs`).
    pub async fn subscribe_diffs(
        &mut self,
        instance: &str,
        request_id: &str,
        last: Option<(u64, i64)>,
    ) {
        let mut message = json!({
            "type": "subscribe-to-instance", "requestId": request_id,
            "machineName": "toggle", "machineInstanceName": instance, "diffs": true,
        });
        if let Some((seq, ts)) = last {
            message["lastSeq"] = seq.into();
            message["lastTs"] = ts.into();
        }
        self.send(message).await;
    }

    pub async fn unsubscribe(&mut self, instance: &str, request_id: &str) {
        self.send(json!({
            "type": "unsubscribe-from-instance", "requestId": request_id,
            "machineName": "toggle", "machineInstanceName": instance,
        }))
        .await;
    }

    /// Sends a command (to machine `toggle` unless it names one) and waits for the frame
    /// answering it (other frames are skipped).
    pub async fn command(&mut self, mut command: Value, request_id: &str) -> Value {
        command["requestId"] = request_id.into();
        if command.get("machineName").is_none() {
            command["machineName"] = "toggle".into();
        }
        self.send(command).await;
        loop {
            let frame = self.next_json().await;
            if frame["requestId"] == request_id {
                return frame;
            }
        }
    }
}

/// `{state, publicContext, tags, done}` of a full frame or an HTTP `State`.
pub fn view(state: &Value) -> Value {
    json!({
        "state": state["state"],
        "publicContext": state.get("publicContext").cloned().unwrap_or_else(|| json!({})),
        "tags": state["tags"],
        "done": state["done"],
    })
}

/// What a client of the diff extension holds: the view and the sequence it is at.
#[derive(Debug, Default, Clone)]
pub struct DiffView {
    pub view: Option<Value>,
    pub seq: Option<u64>,
    pub ts: Option<i64>,
    /// Patches applied so far.
    pub patches: usize,
}

impl DiffView {
    /// Applies an `instance-update` or `instance-patch`; panics when a patch does not apply
    /// to exactly the sequence held.
    pub fn receive(&mut self, frame: &Value) {
        match frame["type"].as_str() {
            Some("instance-update") => self.view = Some(view(frame)),
            Some("instance-patch") => {
                assert_eq!(
                    frame["prevSeq"].as_u64(),
                    self.seq,
                    "patch {frame} does not apply to the held sequence"
                );
                let ops: Vec<PatchOp> = serde_json::from_value(frame["patch"].clone()).unwrap();
                let held = self.view.as_ref().expect("a full update came first");
                self.view = Some(apply(held, &ops).expect("patch applies"));
                self.patches += 1;
            }
            other => panic!("not an update: {other:?} in {frame}"),
        }
        self.seq = frame["seq"].as_u64();
        self.ts = frame["ts"].as_i64();
    }
}

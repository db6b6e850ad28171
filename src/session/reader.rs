//! The reading half of a connection: decodes each frame and handles it.
//!
//! Subscribes and unsubscribes are handled in order, inline (a subscribe waits for its
//! `allowRead`); commands run on their own tasks, at most [`MAX_COMMANDS_IN_FLIGHT`] at once,
//! and are aborted when the connection ends (their registry writes, which run on tasks of
//! their own, still complete). Any frame, a WebSocket ping or a `ping` message, counts as
//! activity for the idle timeout.

use std::sync::Arc;

use futures_util::stream::SplitStream;
use futures_util::StreamExt as _;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::close::CloseReason;
use super::connection::{Conn, Socket};
use super::protocol::{self, Request};
use super::{commands, subscriptions, MAX_COMMANDS_IN_FLIGHT};
use crate::fanout::Frame;

/// Reads until the connection ends; tells the writer why through `ended_tx` (`None`: the
/// client closed or the transport failed), then reads on for the client's close frame until
/// the writer is done.
pub(super) async fn run(
    conn: Arc<Conn>,
    mut stream: SplitStream<Socket>,
    queue_tx: mpsc::Sender<Frame>,
    ended_tx: oneshot::Sender<Option<CloseReason>>,
    mut stop_rx: watch::Receiver<bool>,
) {
    let config = &conn.shared.config;
    let mut running = JoinSet::new();
    let idle = tokio::time::sleep(config.idle_timeout);
    tokio::pin!(idle);
    let why = loop {
        tokio::select! {
            biased;
            () = set(&mut stop_rx) => break None,
            Some(_) = running.join_next(), if !running.is_empty() => {}
            () = &mut idle => break Some(CloseReason::Idle),
            next = stream.next() => {
                idle.as_mut().reset(Instant::now() + config.idle_timeout);
                match next {
                    Some(Ok(Message::Text(text))) => {
                        handle(&conn, &text, &queue_tx, &mut running).await;
                    }
                    Some(Ok(Message::Binary(_))) => break Some(CloseReason::Binary),
                    Some(Ok(Message::Close(_))) | None => break None,
                    // Pings are answered by the protocol layer; pongs and raw frames need nothing.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Err(e)) => break reason_for(&conn, &e),
                }
            }
        }
    };
    drop(running);
    let _ = ended_tx.send(why);
    // Reading on lets the protocol layer take the client's close frame and answer pings while
    // the writer finishes; bounded by the linger time.
    let linger = async {
        set(&mut stop_rx).await;
        while let Some(Ok(_)) = stream.next().await {}
    };
    let _ = tokio::time::timeout(config.close_linger * 2, linger).await;
}

/// Resolves once the flag is set (at once if it already is). The watch's read guard is
/// dropped inside, so it is never held across the caller's awaits.
pub(super) async fn set(flag_rx: &mut watch::Receiver<bool>) {
    let _ = flag_rx.wait_for(|set| *set).await;
}

/// The close a read error calls for; `None` when the transport is gone and nothing can be sent.
/// A client that drops its connection without a close frame (end of stream, reset) ended the
/// connection itself: that is not a protocol violation and is not counted as one.
fn reason_for(conn: &Conn, e: &WsError) -> Option<CloseReason> {
    tracing::debug!(conn = %conn.id, error = %e, "websocket read failed");
    match e {
        WsError::Capacity(_) => Some(CloseReason::TooBig),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        WsError::Protocol(_) | WsError::Utf8(_) => Some(CloseReason::Protocol),
        WsError::ConnectionClosed | WsError::AlreadyClosed | WsError::Io(_) => None,
        _ => Some(CloseReason::Protocol),
    }
}

/// decode → handle → answer (through the writer's queue).
async fn handle(
    conn: &Arc<Conn>,
    text: &str,
    queue_tx: &mpsc::Sender<Frame>,
    running: &mut JoinSet<()>,
) {
    let envelope = protocol::decode(text);
    let request_id = envelope.request_id;
    let handled = match envelope.request {
        Ok(Request::Ping) => {
            let _ = queue_tx.send(protocol::pong()).await;
            return;
        }
        Ok(Request::Subscribe(request)) => {
            subscriptions::subscribe(conn, request_id.as_deref(), request).await
        }
        Ok(Request::Unsubscribe(key)) => {
            subscriptions::unsubscribe(conn, request_id.as_deref(), &key);
            return;
        }
        Ok(Request::Command(command)) => {
            while running.len() >= MAX_COMMANDS_IN_FLIGHT {
                running.join_next().await;
            }
            running.spawn(commands::run(
                conn.clone(),
                request_id,
                command,
                queue_tx.clone(),
            ));
            return;
        }
        Err(e) => Err(e),
    };
    if let Err(e) = handled {
        let class = e.class();
        if class.expected {
            tracing::debug!(conn = %conn.id, status = class.status.as_u16(), code = class.code, error = %e, "message refused");
        } else {
            tracing::error!(conn = %conn.id, status = class.status.as_u16(), code = class.code, error = ?e, "message failed");
        }
        let _ = queue_tx
            .send(protocol::error(request_id.as_deref(), &e))
            .await;
    }
}

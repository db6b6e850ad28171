//! One WebSocket connection: the reader half on a task of its own, the writer half on the
//! connection's task (so that waking the writer for an update never polls the reader).
//!
//! Ending: whichever half stops first tells the other. The reader stops on the client's close,
//! a transport error, a frame it cannot accept, or silence beyond the idle timeout; the
//! writer then sends the close frame. The writer stops on token expiry, a stalled write,
//! shutdown, or the reader's end; the reader then reads a little longer, for the client's
//! close frame. Subscriptions are detached when both have stopped.

use std::sync::Arc;

use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use futures_util::StreamExt as _;
use tokio::sync::{mpsc, oneshot, watch};

use super::subscriptions::Table;
use super::{reader, writer, Shared, QUEUE_FRAMES, READ_BUFFER_BYTES, WRITE_BUFFER_BYTES};
use crate::api::ApiState;
use crate::auth::Principal;
use crate::fanout::Outbox;
use crate::ids::ConnId;

/// The socket of one connection.
pub(super) type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// What both halves of a connection (and its command tasks) share.
pub(super) struct Conn {
    pub id: ConnId,
    pub shared: Arc<Shared>,
    pub api: Arc<ApiState>,
    pub principal: Arc<Principal>,
    /// Subscriptions with updates to write.
    pub outbox: Arc<Outbox>,
    pub table: Table,
}

/// Serves one upgraded connection until it closes. Failures end the connection, never the
/// server: they are logged at debug with the connection's id.
pub(super) async fn serve(
    shared: Arc<Shared>,
    api: Arc<ApiState>,
    principal: Arc<Principal>,
    on_upgrade: OnUpgrade,
    id: ConnId,
) {
    let _live = shared.counters.live();
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(e) => {
            tracing::debug!(conn = %id, error = %e, "websocket upgrade did not complete");
            return;
        }
    };
    let max_message_bytes = api.json_body_limit_bytes();
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(Some(max_message_bytes))
        .max_frame_size(Some(max_message_bytes));
    let socket =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
    let (sink, stream) = socket.split();
    let conn = Arc::new(Conn {
        id,
        shared: shared.clone(),
        api,
        principal,
        outbox: Outbox::new(),
        table: Table::default(),
    });
    tracing::debug!(conn = %id, "websocket open");

    let (queue_tx, queue_rx) = mpsc::channel(QUEUE_FRAMES);
    let (ended_tx, ended_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let reading = tokio::spawn(reader::run(
        conn.clone(),
        stream,
        queue_tx,
        ended_tx,
        stop_rx,
    ));
    let closed = writer::run(conn.clone(), sink, queue_rx, ended_rx, stop_tx).await;
    // The reader stops once the writer is done, after lingering for the client's close frame.
    // If it panicked, the writer saw its end as a vanished transport and closed already.
    if let Err(e) = reading.await {
        tracing::error!(conn = %id, error = %e, "websocket reader failed");
    }
    conn.table.clear();
    // Ready subscriptions point back at the outbox; emptying the list breaks that cycle.
    drop(conn.outbox.take_ready());
    tracing::debug!(conn = %id, reason = closed.map(|r| r.text()), "websocket closed");
}

//! The writing half of a connection: the only code that writes to the socket.
//!
//! It writes, in this order of preference: updates of subscriptions with something pending
//! (taken from the outbox, each conflated to its latest), then queued replies and errors. Every
//! write is bounded by the stall timeout: a client that stops reading stalls the write once the
//! socket buffers are full, and the connection is then closed with 4008. Meanwhile the
//! fan-out keeps replacing the pending update, so a stalled connection holds at most one
//! update per subscription, whatever the rate of changes.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::SinkExt as _;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;

use super::close::CloseReason;
use super::connection::{Conn, Socket};
use super::protocol;
use super::reader::set;
use super::upgrade::session_end_ms;
use crate::clock::now_ms;
use crate::error::ApiError;
use crate::fanout::{Ended, Frame, Next, Subscription};

type Sink = SplitSink<Socket, Message>;

/// Most queued frames written before the next flush.
const QUEUE_BATCH: usize = 32;

/// How a write failed: the connection must close with this reason (`None`: the transport is
/// gone, nothing more can be sent).
type WriteFailed = Option<CloseReason>;

/// Writes until the connection ends; returns why it was closed by the server, if it was.
pub(super) async fn run(
    conn: Arc<Conn>,
    mut sink: Sink,
    mut queue_rx: mpsc::Receiver<Frame>,
    mut ended_rx: oneshot::Receiver<Option<CloseReason>>,
    stop_tx: watch::Sender<bool>,
) -> Option<CloseReason> {
    let mut closing_rx = conn.shared.closing_tx.subscribe();
    let session_end = session_end_ms(&conn.principal);
    let expiry = tokio::time::sleep_until(until(session_end.unwrap_or(i64::MAX)));
    tokio::pin!(expiry);

    let why = loop {
        let ready = conn.outbox.take_ready();
        if !ready.is_empty() {
            if let Err(failed) = write_updates(&conn, &mut sink, ready).await {
                break failed;
            }
            continue;
        }
        tokio::select! {
            biased;
            () = set(&mut closing_rx) => {
                // Pending updates and answers go out before the close frame.
                let ready = conn.outbox.take_ready();
                let flushed = match write_updates(&conn, &mut sink, ready).await {
                    Ok(()) => write_queued(&conn, &mut sink, &mut queue_rx, None).await,
                    Err(failed) => Err(failed),
                };
                break flushed.err().unwrap_or(Some(CloseReason::ShuttingDown));
            }
            ended = &mut ended_rx => break ended.unwrap_or(None),
            () = &mut expiry, if session_end.is_some() => break Some(CloseReason::TokenExpired),
            frame = queue_rx.recv() => match frame {
                Some(frame) => {
                    if let Err(failed) = write_queued(&conn, &mut sink, &mut queue_rx, Some(frame)).await {
                        break failed;
                    }
                }
                None => break None,
            },
            () = conn.outbox.wait() => {}
        }
    };
    if let Some(reason) = why {
        conn.shared.counters.closed(reason);
    }
    close(&conn, &mut sink, why).await;
    stop_tx.send_replace(true);
    why
}

/// Sends the close frame for `why` (or completes the client's close), bounded by the linger.
async fn close(conn: &Conn, sink: &mut Sink, why: Option<CloseReason>) {
    let linger = conn.shared.config.close_linger;
    let closed = match why {
        Some(reason) => {
            tracing::debug!(conn = %conn.id, code = reason.code(), reason = reason.text(), "closing websocket");
            let frame = Message::Close(Some(reason.frame()));
            tokio::time::timeout(linger, sink.send(frame)).await
        }
        None => tokio::time::timeout(linger, sink.close()).await,
    };
    if closed.is_err() {
        tracing::debug!(conn = %conn.id, "close frame not written before the linger time");
    }
}

/// Writes what each ready subscription has due, then flushes.
async fn write_updates(
    conn: &Conn,
    sink: &mut Sink,
    ready: Vec<Arc<Subscription>>,
) -> Result<(), WriteFailed> {
    let stall = conn.shared.config.stall_timeout;
    let mut written = 0;
    for subscription in ready {
        match subscription.take() {
            Next::Nothing => {}
            Next::Frames(frames) => {
                for frame in frames {
                    feed(sink, frame, stall).await?;
                    written += 1;
                }
            }
            Next::Ended(why) => {
                let error = match why {
                    Ended::Deleted => {
                        ApiError::NotFound(format!("instance {}", subscription.key()))
                    }
                };
                tracing::debug!(conn = %conn.id, instance = %subscription.key(), "subscription ended: instance deleted");
                for request_id in conn.table.remove_ended(&subscription) {
                    feed(sink, protocol::error(request_id.as_deref(), &error), stall).await?;
                    written += 1;
                }
            }
        }
    }
    if written > 0 {
        flush(sink, stall).await?;
        conn.shared.counters.frames_sent(written);
    }
    Ok(())
}

/// Writes `first` (if any) and whatever else is queued, up to a batch, then flushes.
async fn write_queued(
    conn: &Conn,
    sink: &mut Sink,
    queue_rx: &mut mpsc::Receiver<Frame>,
    first: Option<Frame>,
) -> Result<(), WriteFailed> {
    let stall = conn.shared.config.stall_timeout;
    let mut written = 0;
    let mut next = first.or_else(|| queue_rx.try_recv().ok());
    while let Some(frame) = next {
        feed(sink, frame, stall).await?;
        written += 1;
        next = if written < QUEUE_BATCH {
            queue_rx.try_recv().ok()
        } else {
            None
        };
    }
    if written > 0 {
        flush(sink, stall).await?;
        conn.shared.counters.frames_sent(written);
    }
    Ok(())
}

async fn feed(sink: &mut Sink, frame: Frame, stall: Duration) -> Result<(), WriteFailed> {
    match bounded(stall, sink.feed(Message::Text(frame))).await {
        Some(Ok(())) => Ok(()),
        Some(Err(_)) => Err(None),
        None => Err(Some(CloseReason::SlowConsumer)),
    }
}

async fn flush(sink: &mut Sink, stall: Duration) -> Result<(), WriteFailed> {
    match bounded(stall, sink.flush()).await {
        Some(Ok(())) => Ok(()),
        Some(Err(_)) => Err(None),
        None => Err(Some(CloseReason::SlowConsumer)),
    }
}

/// Runs `write` to completion, or gives up after `stall` (`None`). The usual case, a socket
/// with room, completes on the first poll and arms no timer.
async fn bounded<T>(stall: Duration, write: impl Future<Output = T>) -> Option<T> {
    let mut write = std::pin::pin!(write);
    let first = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(done) => Some(done),
        Poll::Pending => tokio::time::timeout(stall, write).await.ok(),
    }
}

/// The instant `end_ms` (ms since the epoch) falls at, by the monotonic clock.
fn until(end_ms: i64) -> tokio::time::Instant {
    let left_ms = end_ms.saturating_sub(now_ms()).max(0) as u64;
    // Far-off ends are capped: a sleep beyond a year is never reached anyway.
    let left = Duration::from_millis(left_ms).min(Duration::from_secs(365 * 24 * 3600));
    tokio::time::Instant::now() + left
}

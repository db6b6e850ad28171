//! A bare broadcast server over tokio-tungstenite: the ceiling the fan-out is compared with.
//!
//! No authentication, no storage, no machine: a connection whose first message is a publish
//! is the publisher; every other connection is a subscriber. Each publish is turned into one
//! frame shaped like statewire's `instance-update` (same fields, similar size), serialized
//! once and handed to every subscriber through a `tokio::sync::broadcast` channel; a
//! subscriber that lags behind the channel skips ahead, as a conflating server would.

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Frames kept for subscribers that fall behind.
const CHANNEL_FRAMES: usize = 1024;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", args.port)).await?;
    println!("bare listening on {}", listener.local_addr()?);
    let (frames_tx, _) = broadcast::channel::<Utf8Bytes>(CHANNEL_FRAMES);
    loop {
        let (stream, _) = listener.accept().await?;
        let frames_tx = frames_tx.clone();
        tokio::spawn(async move {
            // A connection that fails only ends itself.
            let _ = serve(stream, frames_tx).await;
        });
    }
}

async fn serve(stream: TcpStream, frames_tx: broadcast::Sender<Utf8Bytes>) -> anyhow::Result<()> {
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(16 * 1024);
    let ws = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await?;
    let (mut sink, mut stream) = ws.split();
    let Some(Ok(Message::Text(first))) = stream.next().await else {
        return Ok(());
    };
    if first.contains("\"publish\"") {
        let mut message = Some(first);
        while let Some(text) = message {
            if let Some(seq) = crate::fanout::number_after(&text, "\"seq\":") {
                let _ = frames_tx.send(frame(seq));
            }
            message = match stream.next().await {
                Some(Ok(Message::Text(text))) => Some(text),
                _ => None,
            };
        }
        return Ok(());
    }
    let mut frames_rx = frames_tx.subscribe();
    sink.send(Message::Text(frame(0))).await?;
    loop {
        match frames_rx.recv().await {
            Ok(frame) => sink.send(Message::Text(frame)).await?,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        }
    }
}

/// An update frame with the fields and about the size of statewire's.
fn frame(seq: u64) -> Utf8Bytes {
    let ts_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let state = if seq % 2 == 1 { "on" } else { "off" };
    format!(
        r#"{{"type":"instance-update","machineName":"bench","machineInstanceName":"fan","state":"{state}","publicContext":{{"toggleCount":{}}},"tags":[],"done":false,"ts":{ts_ms},"seq":{seq}}}"#,
        seq / 2 + 1
    )
    .into()
}

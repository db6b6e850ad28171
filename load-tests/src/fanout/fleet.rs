//! Many WebSocket subscribers in this process, each recording when each update arrived.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use super::{now_us, number_after};

/// One update as one subscriber saw it.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub seq: u64,
    /// The frame's `ts`: commit time for statewire, broadcast time for the bare server.
    pub ts_ms: u64,
    /// When it was read, µs since the epoch.
    pub at_us: u64,
}

pub struct Fleet {
    /// The newest sequence each subscriber holds.
    last_seq: Arc<Vec<AtomicU64>>,
    tasks: JoinSet<anyhow::Result<Vec<Arrival>>>,
    stop_tx: watch::Sender<bool>,
}

impl Fleet {
    /// Connects `n` subscribers to `url`, each sending `subscribe` and waiting for its first
    /// update, with at most `at_once` handshakes in flight.
    pub async fn connect(
        url: &str,
        subscribe: &str,
        n: usize,
        at_once: usize,
    ) -> anyhow::Result<Fleet> {
        let last_seq: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
        let (stop_tx, stop_rx) = watch::channel(false);
        let gate = Arc::new(Semaphore::new(at_once.max(1)));
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<anyhow::Result<()>>(n.max(1));
        let mut tasks = JoinSet::new();
        for i in 0..n {
            let permit = gate.clone().acquire_owned().await?;
            let (url, subscribe) = (url.to_owned(), subscribe.to_owned());
            let (last_seq, ready_tx, stop_rx) =
                (last_seq.clone(), ready_tx.clone(), stop_rx.clone());
            tasks.spawn(async move {
                let subscribed = subscriber(&url, &subscribe).await;
                drop(permit);
                let (ws, first) = match subscribed {
                    Ok(ok) => ok,
                    Err(e) => {
                        let _ = ready_tx.send(Err(anyhow::anyhow!("{e:#}"))).await;
                        return Err(e);
                    }
                };
                last_seq[i].store(first.seq, Ordering::Release);
                let _ = ready_tx.send(Ok(())).await;
                listen(ws, i, &last_seq, stop_rx).await
            });
        }
        for _ in 0..n {
            ready_rx.recv().await.context("a subscriber vanished")??;
        }
        Ok(Fleet {
            last_seq,
            tasks,
            stop_tx,
        })
    }

    /// Waits until every subscriber holds `seq` or newer; `false` after `timeout`.
    pub async fn wait_for(&self, seq: u64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self
                .last_seq
                .iter()
                .all(|s| s.load(Ordering::Acquire) >= seq)
            {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }

    /// Disconnects every subscriber and returns what each saw.
    pub async fn finish(mut self) -> anyhow::Result<Vec<Vec<Arrival>>> {
        self.stop_tx.send_replace(true);
        let mut all = Vec::new();
        while let Some(done) = self.tasks.join_next().await {
            all.push(done??);
        }
        Ok(all)
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn subscriber(url: &str, subscribe: &str) -> anyhow::Result<(Socket, Arrival)> {
    let addr = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .context("url is not ws://ADDR/…")?;
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
    ws.send(Message::Text(subscribe.into())).await?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let arrival = arrival(&text).with_context(|| format!("unexpected frame {text}"))?;
                return Ok((ws, arrival));
            }
            Some(Ok(_)) => continue,
            other => anyhow::bail!("subscriber's connection ended: {other:?}"),
        }
    }
}

async fn listen(
    mut ws: Socket,
    i: usize,
    last_seq: &[AtomicU64],
    mut stop_rx: watch::Receiver<bool>,
) -> anyhow::Result<Vec<Arrival>> {
    let mut seen = Vec::new();
    loop {
        tokio::select! {
            _ = stop_rx.changed() => break,
            next = ws.next() => match next {
                Some(Ok(Message::Text(text))) => {
                    if let Some(a) = arrival(&text) {
                        last_seq[i].store(a.seq, Ordering::Release);
                        seen.push(a);
                    }
                }
                Some(Ok(_)) => {}
                _ => break,
            },
        }
    }
    let _ = ws.close(None).await;
    Ok(seen)
}

/// `seq` and `ts` of an update frame, read without parsing the whole frame.
fn arrival(text: &str) -> Option<Arrival> {
    Some(Arrival {
        seq: number_after(text, "\"seq\":")?,
        ts_ms: number_after(text, "\"ts\":")?,
        at_us: now_us(),
    })
}

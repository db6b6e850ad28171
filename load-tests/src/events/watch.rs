//! Subscribers of the instances events are sent to: each records when each update arrived,
//! so that the time from commit (and from send) to the *last* subscriber of an instance can be
//! computed once the run is over.

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::Context as _;
use futures_util::{SinkExt as _, StreamExt as _};
use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use super::stats::Committed;
use crate::fanout::{now_us, number_after};
use crate::percentiles::Summary;

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Updates one subscriber of `instance` saw: `(ts_ms, arrived_us)`.
pub struct Seen {
    pub instance: usize,
    pub updates: Vec<(u64, u64)>,
}

pub struct Watchers {
    tasks: JoinSet<anyhow::Result<Seen>>,
    stop_tx: watch::Sender<bool>,
}

impl Watchers {
    /// Subscribes `per_instance` connections to each instance; `tokens[i]` may read instance
    /// `names[i]`. Returns once every subscriber got its first update.
    pub async fn connect(
        addr: SocketAddr,
        machine: &str,
        names: &[String],
        tokens: &[String],
        per_instance: usize,
    ) -> anyhow::Result<Watchers> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for (instance, (name, token)) in names.iter().zip(tokens).enumerate() {
            for _ in 0..per_instance {
                let subscribe = json!({"type": "subscribe-to-instance", "requestId": "w",
                    "machineName": machine, "machineInstanceName": name})
                .to_string();
                let ws = subscribe_one(addr, token, &subscribe)
                    .await
                    .with_context(|| format!("subscribing to {name}"))?;
                tasks.spawn(listen(ws, instance, stop_rx.clone()));
            }
        }
        Ok(Watchers { tasks, stop_tx })
    }

    /// Disconnects every subscriber and returns what each saw.
    pub async fn finish(mut self) -> anyhow::Result<Vec<Seen>> {
        self.stop_tx.send_replace(true);
        let mut all = Vec::new();
        while let Some(done) = self.tasks.join_next().await {
            all.push(done??);
        }
        Ok(all)
    }
}

async fn subscribe_one(addr: SocketAddr, token: &str, subscribe: &str) -> anyhow::Result<Socket> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let url = format!("ws://{addr}/rt?token={token}");
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await?;
    ws.send(Message::Text(subscribe.into())).await?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) if text.contains("\"instance-update\"") => return Ok(ws),
            Some(Ok(Message::Text(text))) => anyhow::bail!("subscribe refused: {text}"),
            Some(Ok(_)) => continue,
            other => anyhow::bail!("subscriber's connection ended: {other:?}"),
        }
    }
}

async fn listen(
    mut ws: Socket,
    instance: usize,
    mut stop_rx: watch::Receiver<bool>,
) -> anyhow::Result<Seen> {
    let mut updates = Vec::new();
    loop {
        tokio::select! {
            _ = stop_rx.changed() => break,
            next = ws.next() => match next {
                Some(Ok(Message::Text(text))) => {
                    if let Some(ts_ms) = number_after(&text, "\"ts\":") {
                        updates.push((ts_ms, now_us()));
                    }
                }
                Some(Ok(_)) => {}
                _ => break,
            },
        }
    }
    let _ = ws.close(None).await;
    Ok(Seen { instance, updates })
}

/// Commit → last subscriber, over the measured commits every subscriber of their instance saw.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FanoutFigures {
    pub subscribers_per_instance: usize,
    /// Measured commits.
    pub commits: usize,
    /// Of those, the ones every subscriber got (the others were conflated away for someone).
    pub seen_by_all: usize,
    /// From the commit's `ts` (ms resolution, so up to 1 ms pessimistic) to the last arrival.
    pub commit_to_last_subscriber: Summary,
    /// From sending the event to the last arrival.
    pub send_to_last_subscriber: Summary,
}

pub fn fanout_figures(
    committed: &[Committed],
    seen: &[Seen],
    per_instance: usize,
) -> FanoutFigures {
    // (instance, ts) → (subscribers that saw it, latest arrival).
    let mut arrivals: HashMap<(usize, u64), (usize, u64)> = HashMap::new();
    for subscriber in seen {
        for &(ts_ms, at_us) in &subscriber.updates {
            let entry = arrivals
                .entry((subscriber.instance, ts_ms))
                .or_insert((0, 0));
            entry.0 += 1;
            entry.1 = entry.1.max(at_us);
        }
    }
    let (mut from_commit, mut from_send) = (Vec::new(), Vec::new());
    for c in committed {
        if let Some(&(count, last_us)) = arrivals.get(&(c.instance, c.ts_ms)) {
            if count == per_instance {
                from_commit.push(last_us.saturating_sub(c.ts_ms * 1000) as f64 / 1000.0);
                from_send.push(last_us.saturating_sub(c.sent_us) as f64 / 1000.0);
            }
        }
    }
    FanoutFigures {
        subscribers_per_instance: per_instance,
        commits: committed.len(),
        seen_by_all: from_commit.len(),
        commit_to_last_subscriber: Summary::of(from_commit),
        send_to_last_subscriber: Summary::of(from_send),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_commits_every_subscriber_saw_count_and_the_last_arrival_wins() {
        let committed = [
            Committed {
                instance: 0,
                ts_ms: 1_000,
                sent_us: 999_000,
            },
            Committed {
                instance: 0,
                ts_ms: 1_010,
                sent_us: 1_009_500,
            },
            Committed {
                instance: 1,
                ts_ms: 1_000,
                sent_us: 999_800,
            },
        ];
        let seen = [
            Seen {
                instance: 0,
                updates: vec![(1_000, 1_002_000), (1_010, 1_011_000)],
            },
            // The second subscriber of instance 0 missed ts 1010 (conflated).
            Seen {
                instance: 0,
                updates: vec![(1_000, 1_004_000)],
            },
            Seen {
                instance: 1,
                updates: vec![(1_000, 1_001_000), (2_000, 2_000_000)],
            },
            Seen {
                instance: 1,
                updates: vec![(1_000, 1_003_000)],
            },
        ];
        let figures = fanout_figures(&committed, &seen, 2);
        assert_eq!((figures.commits, figures.seen_by_all), (3, 2));
        // Instance 0: last arrival 1_004_000 µs, commit at 1_000_000, sent at 999_000.
        // Instance 1: last arrival 1_003_000 µs, commit at 1_000_000, sent at 999_800.
        assert_eq!(figures.commit_to_last_subscriber.max_ms, 4.0);
        assert_eq!(figures.commit_to_last_subscriber.p50_ms, 3.0);
        assert_eq!(figures.send_to_last_subscriber.max_ms, 5.0);
        assert_eq!(figures.send_to_last_subscriber.p50_ms, 3.2);
    }
}

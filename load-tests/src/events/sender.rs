//! One sender: a connection bound to one instance, sending `toggle` after `toggle`, either as
//! soon as the previous reply came (closed loop) or on a fixed schedule (open loop).
//!
//! In the open loop there is still one event in flight per connection: when a reply is late,
//! the next event goes out late, and its latency counts from when it was due, so a slow server
//! cannot hide its queueing by slowing the sender down. An event sent on time counts from when
//! it went out, so the timer's millisecond granularity is not charged to the server.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::client::EventClient;
use super::stats::{Committed, Live, Tally, Window};
use crate::fanout::now_us;

/// Pause after a broken connection before trying again, so a dead server is not spun on.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

pub struct Sender {
    pub client: EventClient,
    /// Index of the instance the client sends to.
    pub instance: usize,
    /// Open loop: the first event's due time and the interval; closed loop: `None`.
    pub schedule: Option<(Instant, Duration)>,
    /// Keep each measured commit for the subscribers' figures.
    pub keep_commits: bool,
}

impl Sender {
    pub async fn run(mut self, window: Window, live: Arc<Live>) -> Tally {
        let mut tally = Tally::default();
        let mut next_due = self.schedule.map(|(first, _)| first);
        loop {
            // When latency counts from: the due time if the previous reply made this event
            // late, else the moment it went out (the timer's own lateness is the sender's).
            let due = match (next_due.as_mut(), self.schedule) {
                (Some(due), Some((_, interval))) => {
                    let this = *due;
                    *due += interval;
                    if Instant::now() < this {
                        tokio::time::sleep_until(this).await;
                        Instant::now()
                    } else {
                        this
                    }
                }
                _ => Instant::now(),
            };
            if due >= window.end {
                break;
            }
            let sent_us = now_us();
            tally.sent += 1;
            live.sent.fetch_add(1, Ordering::Relaxed);
            let outcome = self.client.send().await;
            let done = Instant::now();
            match outcome {
                Ok(ts_ms) => {
                    tally.ok += 1;
                    live.ok.fetch_add(1, Ordering::Relaxed);
                    if window.measures(done) {
                        tally.ok_in_window += 1;
                        if due >= window.measure_from {
                            tally.latencies_ms.push((done - due).as_secs_f64() * 1000.0);
                            if self.keep_commits {
                                tally.committed.push(Committed {
                                    instance: self.instance,
                                    ts_ms,
                                    sent_us,
                                });
                            }
                        }
                    }
                }
                Err(failure) => {
                    *tally.errors.entry(failure.kind).or_default() += 1;
                    live.errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
        tally
    }
}

//! The figures of one `events` run, printed and written as JSON.

use std::collections::BTreeMap;

use serde::Serialize;

use super::watch::FanoutFigures;
use crate::percentiles::Summary;

#[derive(Debug, Clone, Serialize)]
pub struct EventsReport {
    pub scenario: &'static str,
    /// `http` or `ws`.
    pub protocol: &'static str,
    /// `closed` or `open`.
    pub mode: &'static str,
    /// Events per second asked for, over all connections (open loop only).
    pub target_rate_per_s: Option<f64>,
    pub connections: usize,
    pub instances: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// `spawned (<store> store)` or the URL of the server.
    pub server: String,
    /// Totals over the whole run, warm-up included.
    pub sent: u64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    /// Durable, acknowledged events per second over the measured window.
    pub throughput_events_per_s: f64,
    /// Event → reply, for events sent and answered inside the window.
    pub latency: Summary,
    pub fanout: Option<FanoutFigures>,
    /// The spawned server's resident memory at the end.
    pub server_rss_bytes: Option<u64>,
}

impl EventsReport {
    pub fn error_total(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn print(&self) {
        println!(
            "events over {} ({} loop), {} connections, {} instances, {}",
            self.protocol, self.mode, self.connections, self.instances, self.server
        );
        println!(
            "  throughput: {:.0} durable events/s over {:.1} s (sent {}, ok {}, errors {})",
            self.throughput_events_per_s,
            self.duration_s,
            self.sent,
            self.ok,
            self.error_total()
        );
        println!("  event -> reply: {}", self.latency);
        for (kind, n) in &self.errors {
            println!("  error {kind}: {n}");
        }
        if let Some(f) = &self.fanout {
            println!(
                "  {} subscribers per instance; {} of {} measured commits reached all of them",
                f.subscribers_per_instance, f.seen_by_all, f.commits
            );
            println!(
                "  commit -> last subscriber: {}",
                f.commit_to_last_subscriber
            );
            println!("  send -> last subscriber:   {}", f.send_to_last_subscriber);
        }
        if let Some(rss) = self.server_rss_bytes {
            println!("  server memory: {:.1} MiB", rss as f64 / (1024.0 * 1024.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_report_has_every_figure_under_a_stable_name() {
        let report = EventsReport {
            scenario: "events",
            protocol: "http",
            mode: "closed",
            target_rate_per_s: None,
            connections: 64,
            instances: 64,
            warmup_s: 1.0,
            duration_s: 5.0,
            server: "spawned (embedded store)".into(),
            sent: 1000,
            ok: 998,
            errors: BTreeMap::from([("timeout".to_owned(), 2)]),
            throughput_events_per_s: 180.5,
            latency: Summary::of(vec![1.0, 2.0, 3.0]),
            fanout: None,
            server_rss_bytes: Some(1 << 20),
        };
        assert_eq!(report.error_total(), 2);
        let json = serde_json::to_value(&report).unwrap();
        for key in [
            "scenario",
            "protocol",
            "mode",
            "target_rate_per_s",
            "connections",
            "instances",
            "warmup_s",
            "duration_s",
            "server",
            "sent",
            "ok",
            "errors",
            "throughput_events_per_s",
            "latency",
            "fanout",
            "server_rss_bytes",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        assert_eq!(json["errors"]["timeout"], 2);
        assert_eq!(json["latency"]["p50_ms"], 2.0);
        for key in ["count", "p50_ms", "p90_ms", "p99_ms", "max_ms"] {
            assert!(json["latency"].get(key).is_some(), "missing latency.{key}");
        }
        assert!(json["fanout"].is_null());
        assert!(json["target_rate_per_s"].is_null());
    }
}

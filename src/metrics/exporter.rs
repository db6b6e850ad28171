//! The process-wide Prometheus recorder and the text it renders for `GET /metrics`.
//!
//! The exporter's own HTTP listener is not used (its features are off); `/metrics` is one of
//! our routes and calls [`Exporter::render`].

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::{describe_all, OPS_BUCKETS, SECONDS_BUCKETS};

/// The media type of the text exposition format that [`Exporter::render`] produces.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often histogram samples are folded into their buckets when nobody scrapes. Rendering
/// folds them too; this only bounds the memory they take between scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Why the recorder could not be installed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MetricsError {
    /// Another recorder was installed in this process before ours; metrics recorded through
    /// the facade go there, and ours would render nothing.
    #[error("another metrics recorder is already installed in this process")]
    ForeignRecorder,
    #[error("invalid histogram buckets: {0}")]
    Buckets(String),
    #[error("cannot start the metrics upkeep thread: {0}")]
    Upkeep(String),
}

/// Renders the process's metrics. Cheap to clone; every clone renders the same registry.
#[derive(Clone, Debug)]
pub struct Exporter {
    handle: PrometheusHandle,
}

impl Exporter {
    /// The Prometheus text exposition of every metric recorded in this process so far.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

impl crate::api::MetricsRenderer for Exporter {
    fn render(&self) -> String {
        Exporter::render(self)
    }
}

/// Installs the process-wide recorder on the first call and returns the exporter for it; later
/// calls return the same exporter (or the same error). Safe to call from any number of servers
/// and threads.
pub fn install() -> Result<Exporter, MetricsError> {
    static INSTALLED: OnceLock<Result<Exporter, MetricsError>> = OnceLock::new();
    INSTALLED.get_or_init(install_once).clone()
}

fn install_once() -> Result<Exporter, MetricsError> {
    let buckets = |e: metrics_exporter_prometheus::BuildError| MetricsError::Buckets(e.to_string());
    let recorder = PrometheusBuilder::new()
        .set_buckets(SECONDS_BUCKETS)
        .map_err(buckets)?
        .set_buckets_for_metric(Matcher::Suffix("_ops".to_owned()), OPS_BUCKETS)
        .map_err(buckets)?
        .build_recorder();
    let handle = recorder.handle();
    ::metrics::set_global_recorder(recorder).map_err(|_| MetricsError::ForeignRecorder)?;
    describe_all();

    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_INTERVAL);
            upkeep.run_upkeep();
        })
        .map_err(|e| MetricsError::Upkeep(e.to_string()))?;
    tracing::info!("metrics recorder installed");
    Ok(Exporter { handle })
}

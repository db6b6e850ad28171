//! Typed helpers over the `metrics` facade; the Prometheus exporter is installed by `serve`.

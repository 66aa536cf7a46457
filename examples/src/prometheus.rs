//! `/metrics`: the cache's counters and latency histograms in Prometheus text format.
//!
//! The recorder renders into an axum route of the app itself (the exporter's own HTTP
//! listener is not built), so one port serves the app and its metrics:
//!
//! ```text
//! curl localhost:5000/square/5; curl localhost:5000/square/5
//! curl -s localhost:5000/metrics | grep -E 'cache_(hits|misses)_total'
//! # cache_hits_total{cache="cache",function="examples::tutorial::square"} 1
//! # cache_misses_total{cache="cache",function="examples::tutorial::square"} 1
//! ```

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Bucket bounds of the `_seconds` histograms: 50 µs to 5 s.
const SECONDS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.25, 1.0, 5.0,
];
/// Bucket bounds of `cache_value_bytes`: 64 B to 4 MiB.
const BYTES: [f64; 7] = [64.0, 256.0, 1024.0, 4096.0, 16384.0, 262_144.0, 4_194_304.0];

/// How often old histogram samples are folded away, so memory stays bounded between scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// Installs the Prometheus recorder as the process's `metrics` recorder: call it before the
/// first cached call, so every function registers its handles with it.
pub fn install() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS)
        .and_then(|builder| {
            builder.set_buckets_for_metric(Matcher::Full("cache_value_bytes".into()), &BYTES)
        })
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|error| format!("cannot install the metrics recorder: {error}"))
}

/// The `/metrics` route, and the upkeep task of `handle` (on the current tokio runtime).
pub fn router(handle: PrometheusHandle) -> Router {
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Router::new().route("/metrics", get(move || async move { handle.render() }))
}

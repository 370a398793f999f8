//! Prometheus metrics: one process-wide recorder, and a layer that counts
//! every request by route and status.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The process's recorder, installed on first use.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5])
                .expect("constant buckets are valid")
                // Audio added latency lives between a few and a few tens of
                // milliseconds: 2 ms steps there.
                .set_buckets_for_metric(
                    Matcher::Full("mixer_added_latency_seconds".to_owned()),
                    &[0.002, 0.004, 0.006, 0.008, 0.010, 0.012, 0.014, 0.016, 0.018, 0.020, 0.022, 0.024, 0.026, 0.028, 0.030, 0.032, 0.034, 0.036, 0.038, 0.040, 0.045, 0.050, 0.060, 0.080, 0.100, 0.150, 0.200],
                )
                .expect("constant buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed, and then ours simply
            // records nothing; the endpoint still answers.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed");
            }
            handle
        })
        .clone()
}

/// Counts and times each request under its route pattern (never the raw
/// path, which would carry ids and tokens).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// When this process started (for `process_start_time_seconds` and the
/// operator's uptime); fixed on first use, which `serve` makes early.
pub fn started() -> (Instant, std::time::SystemTime) {
    static STARTED: OnceLock<(Instant, std::time::SystemTime)> = OnceLock::new();
    *STARTED.get_or_init(|| (Instant::now(), std::time::SystemTime::now()))
}

/// Gauges worked out when `/metrics` is read rather than kept up to date:
/// HLS viewers per the live channels' sessions, the start time, the version.
pub fn on_scrape(state: &crate::state::AppState) {
    let now = Instant::now();
    let hls: usize = state
        .streaming
        .live()
        .iter()
        .map(|c| c.viewer_count(now).saturating_sub(c.webrtc_viewers.load(std::sync::atomic::Ordering::Relaxed)))
        .sum();
    metrics::gauge!("hls_viewers").set(hls as f64);
    let start = started().1.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    metrics::gauge!("process_start_time_seconds").set(start);
    metrics::gauge!("confcast_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

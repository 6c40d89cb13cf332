//! Prometheus metrics: the process-wide recorder behind the `metrics` macros, the `/metrics`
//! endpoint, and the per-request HTTP metrics of the edge.
//!
//! The `metrics` facade records into one global recorder by design; it is installed once per
//! process (several in-process service instances, as in tests, share it).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets for durations, in seconds: 0.5 ms to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2,
    0.5, 1.0, 2.0, 5.0, 10.0,
];
/// Histogram buckets for batch sizes.
const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

/// A request that takes this long or longer is logged (`slow request`, at WARN).
const SLOW_REQUEST: Duration = Duration::from_secs(1);

/// How often histogram samples are folded into buckets between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder on first use.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_size".into()), SIZE_BUCKETS))
            .expect("non-empty bucket lists")
            .build_recorder();
        let handle = recorder.handle();
        // A histogram keeps every sample until upkeep folds them into its buckets, which a
        // scrape also does: unscraped, the query service grew by ~0.5 MiB a second under
        // 33,000 reads a second (`bench queries --concurrency 64 --seconds 60`).
        let upkeep = handle.clone();
        let started = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
        if let Err(error) = started {
            tracing::warn!(%error, "could not start the metrics upkeep thread");
        }
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        metrics::describe_counter!(
            "http_requests_total",
            "HTTP requests answered, by route template, method and status."
        );
        metrics::describe_histogram!(
            "http_request_duration_seconds",
            metrics::Unit::Seconds,
            "Time to answer an HTTP request, by route template, method and status."
        );
        handle
    })
}

/// `GET /metrics` in the Prometheus text format.
pub async fn render() -> Response {
    let mut response = handle().render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Counts each request and times it, by route template (not raw path, so ids do not explode
/// the label set), method and status.
pub async fn record_http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = [
        ("route", route),
        ("method", method),
        ("status", response.status().as_u16().to_string()),
    ];
    let took = started.elapsed();
    if took >= SLOW_REQUEST {
        // Which request stalled, and how long, in the log: the histogram only says that one did.
        tracing::warn!(
            route = %labels[0].1,
            method = %labels[1].1,
            status = %labels[2].1,
            elapsed_ms = took.as_millis() as u64,
            "slow request"
        );
    }
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(took.as_secs_f64());
    response
}

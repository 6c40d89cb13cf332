//! The per-client rate limit: a token bucket per client (a token's subject, or the peer
//! address), failed authentications weighing more than requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{AuthSettings, Mode, RateLimit};
use crate::problem::Problem;

/// Buckets kept before idle ones are dropped.
const MAX_TRACKED_CLIENTS: usize = 10_000;

/// The edge's authentication and rate-limit layer state.
#[derive(Debug)]
pub struct Gate {
    pub(super) settings: AuthSettings,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Gate {
    /// The gate for `settings`; says loudly when authentication is off.
    pub fn new(settings: AuthSettings) -> Arc<Gate> {
        match &settings.mode {
            Mode::Disabled => tracing::warn!(
                "AUTHENTICATION IS DISABLED (AUTH_MODE=disabled): every caller is treated as an admin. Use this for local development only."
            ),
            Mode::Jwt(verifier) => tracing::info!(?verifier, "bearer JWT authentication on"),
        }
        Arc::new(Gate {
            settings,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one request from `client`'s bucket, which fills at `share` of the configured rate
    /// and holds `share` of its burst (at least one), or says how long until one is available.
    pub(super) fn take(&self, client: &str, now: Instant, share: f64) -> Result<(), Duration> {
        let Some(limit) = self.settings.rate_limit else {
            return Ok(());
        };
        let limit = RateLimit {
            per_second: limit.per_second * share,
            burst: (limit.burst * share).max(1.0),
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_TRACKED_CLIENTS && !buckets.contains_key(client) {
            // Forget clients whose bucket has refilled: they start full again anyway.
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * limit.per_second < limit.burst
            });
        }
        let bucket = buckets.entry(client.to_owned()).or_insert(Bucket {
            tokens: limit.burst,
            at: now,
        });
        let refilled = (bucket.tokens
            + now.duration_since(bucket.at).as_secs_f64() * limit.per_second)
            .min(limit.burst);
        bucket.at = now;
        if refilled >= 1.0 {
            bucket.tokens = refilled - 1.0;
            Ok(())
        } else {
            bucket.tokens = refilled;
            Err(Duration::from_secs_f64((1.0 - refilled) / limit.per_second))
        }
    }
}

/// The share of the rate limit an address gets for failed authentications.
pub(super) const FAILURE_SHARE: f64 = 0.1;

pub(super) fn too_many_requests(gate: &Gate, wait: Duration, share: f64) -> Response {
    metrics::counter!("http_rate_limited_total").increment(1);
    let seconds = wait.as_secs_f64().ceil().max(1.0);
    let what = if share < 1.0 {
        "failed authentications"
    } else {
        "requests"
    };
    Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        "Too many requests",
    )
    .with_detail(format!(
        "This client may send {} {what} per second; retry after {seconds} s.",
        gate.settings
            .rate_limit
            .map_or(0.0, |l| l.per_second * share)
    ))
    .with_header(header::RETRY_AFTER, HeaderValue::from(seconds as u64))
    .into_response()
}

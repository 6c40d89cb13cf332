//! Read-your-writes: a query carrying `X-Consistency-Token` (from a command response), or
//! `?min_version=` on a single-aggregate view, waits until the views include that version of
//! the aggregate — at most the configured time — and otherwise answers 503 with `Retry-After`.
//!
//! Waiting is woken by view change notifications from PostgreSQL, so it works on a replica
//! that is not the one consuming the aggregate's partition; a periodic re-check covers a
//! notification lost to a reconnect.

use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use platform::auth::Caller;
use platform::problem::{FieldError, Problem};
use shared_events::ConsistencyToken;
use uuid::Uuid;

use super::Resources;
use crate::changes;
use crate::projections::{checkpoint, order_detail};

pub use platform::http::CONSISTENCY_TOKEN;
const RECHECK: Duration = Duration::from_millis(250);

/// Registers the help texts of the read-your-writes metrics.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "read_your_writes_waits_total",
        "Read-your-writes waits by outcome: caught_up or timed_out."
    );
    metrics::describe_histogram!(
        "read_your_writes_wait_seconds",
        metrics::Unit::Seconds,
        "How long read-your-writes waits that caught up took."
    );
}

/// The versions a query must see: from the token header and from `?min_version=`.
#[derive(Debug, Clone, Default)]
pub struct Wanted(Vec<(Uuid, i64)>);

impl Wanted {
    /// Reads `X-Consistency-Token`; a malformed token is a 400.
    pub fn from_headers(headers: &HeaderMap) -> Result<Wanted, Problem> {
        let Some(raw) = headers.get(&CONSISTENCY_TOKEN) else {
            return Ok(Wanted::default());
        };
        let token: ConsistencyToken =
            raw.to_str()
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| {
                    Problem::new(
                        StatusCode::BAD_REQUEST,
                        "malformed-consistency-token",
                        "X-Consistency-Token is not a token the command service issued",
                    )
                    .with_errors(vec![FieldError::new(
                        "X-Consistency-Token",
                        "send the header value of a command response unchanged",
                    )])
                })?;
        Ok(Wanted(vec![(token.aggregate_id, token.version)]))
    }

    /// Adds `?min_version=` of the aggregate the query is about.
    pub fn and(mut self, aggregate_id: Uuid, min_version: Option<i64>) -> Wanted {
        if let Some(version) = min_version {
            self.0.push((aggregate_id, version));
        }
        self
    }
}

impl Resources {
    /// Waits until the views include every wanted version, or answers 503.
    ///
    /// A customer may wait only for their own customer and orders, and who owns what is
    /// decided before a wait can end: another customer's aggregate never counts as arrived, so
    /// its token waits the whole time and answers 503 exactly as an id nobody has does. Neither
    /// an order's existence nor its version can be learnt from how (or how fast) this answers.
    ///
    /// The database is asked once at the start, on every periodic re-check and when a
    /// notification cannot say (`*`) or says a wanted version arrived for a customer (who owns
    /// it is then read); otherwise the notifications' versions answer, so many waiters do not
    /// turn every applied batch into many queries.
    pub async fn read_your_writes(&self, caller: Caller, wanted: &Wanted) -> Result<(), Problem> {
        if wanted.0.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.consistency_wait;
        let mut changes = self.changes.subscribe();
        let mut missing = self.not_yet_visible(caller, &wanted.0).await?;
        while !missing.is_empty() {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    metrics::counter!("read_your_writes_waits_total", "outcome" => "timed_out").increment(1);
                    return Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not-yet-consistent", "The views do not include your change yet")
                        .with_detail(format!("Waited {} ms for the views to catch up; retry shortly.", self.consistency_wait.as_millis()))
                        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1")));
                }
                change = changes::next(&mut changes) => match change {
                    Some(change) if missing.iter().all(|(id, v)| change.includes(*id, *v) == Some(false)) => {}
                    Some(change) if caller == Caller::Admin && missing.iter().all(|(id, v)| change.includes(*id, *v).is_some()) => {
                        missing.retain(|(id, v)| change.includes(*id, *v) != Some(true));
                    }
                    _ => missing = self.not_yet_visible(caller, &missing).await?,
                },
                () = tokio::time::sleep(RECHECK) => missing = self.not_yet_visible(caller, &missing).await?,
            }
        }
        metrics::counter!("read_your_writes_waits_total", "outcome" => "caught_up").increment(1);
        metrics::histogram!("read_your_writes_wait_seconds")
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// The wanted versions that `caller` cannot see yet: not applied, or (for a customer)
    /// applied to an aggregate that is not theirs.
    async fn not_yet_visible(
        &self,
        caller: Caller,
        wanted: &[(Uuid, i64)],
    ) -> Result<Vec<(Uuid, i64)>, Problem> {
        let mut missing = Vec::new();
        for (aggregate, version) in wanted {
            let applied = checkpoint::applied_version(&self.reads, *aggregate).await?;
            let visible = applied >= *version
                && match caller {
                    Caller::Admin => true,
                    Caller::Customer(me) => {
                        *aggregate == me
                            || order_detail::find(&self.reads, *aggregate)
                                .await?
                                .is_some_and(|(customer, _)| customer == me)
                    }
                };
            if !visible {
                missing.push((*aggregate, *version));
            }
        }
        Ok(missing)
    }
}

//! Operations on the projections: dead letters (list, retry, discard), the projector's position
//! per partition, and rebuilds.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use platform::problem::Problem;
use rdkafka::consumer::Consumer;
use serde::Serialize;

use super::AppState;
use super::consistency::internal;
use super::params::Params;
use crate::consumer::rebuild::AlreadyRunning;
use crate::projections::retry::{self, Retried, RetryError};
use crate::projections::{checkpoint, dead_letters};

/// `GET /admin/dead-letters?status=parked|retried|discarded&after=&limit=`, oldest first.
pub async fn list_dead_letters(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Problem> {
    let get = |name: &str| query.get(name).map(String::as_str);
    let mut params = Params::default();
    let status = match get("status") {
        None | Some("") => None,
        Some(s @ ("parked" | "waiting" | "retried" | "discarded")) => Some(s),
        Some(_) => {
            params.refuse("status", "must be parked, waiting, retried or discarded");
            None
        }
    };
    let after = params.version("after", get("after")).unwrap_or(0);
    let limit = params.limit(get("limit"));
    params.finish()?;
    let letters = dead_letters::list(&state.pool, status, after, limit)
        .await
        .map_err(internal)?;
    let next = (letters.len() as i64 == limit)
        .then(|| letters.last().map(|l| l.id))
        .flatten();
    Ok(Json(serde_json::json!({ "items": letters, "next_after": next })).into_response())
}

fn letter_id(raw: &str) -> Result<i64, Problem> {
    raw.parse().map_err(|_| retry_problem(RetryError::NotFound))
}

/// `POST /admin/dead-letters/{id}/retry`: applies the letter again. An optional JSON body is a
/// corrected envelope to apply instead of the stored payload.
pub async fn retry_dead_letter(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let id = letter_id(&id)?;
    let replacement = (!body.iter().all(u8::is_ascii_whitespace)).then(|| body.to_vec());
    match retry::retry(&state.pool, id, replacement).await {
        Ok(Retried::Applied { versions }) => Ok(Json(
            serde_json::json!({ "id": id, "outcome": "applied", "applied_versions": versions }),
        )
        .into_response()),
        Ok(Retried::AlreadyApplied) => {
            Ok(Json(serde_json::json!({ "id": id, "outcome": "already_applied" })).into_response())
        }
        Err(error) => Err(retry_problem(error)),
    }
}

/// `POST /admin/dead-letters/{id}/discard`.
pub async fn discard_dead_letter(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = letter_id(&id)?;
    retry::discard(&state.pool, id)
        .await
        .map_err(retry_problem)?;
    Ok(Json(serde_json::json!({ "id": id, "outcome": "discarded" })).into_response())
}

fn retry_problem(error: RetryError) -> Problem {
    let detail = error.to_string();
    let problem = match error {
        RetryError::NotFound => {
            Problem::new(StatusCode::NOT_FOUND, "not-found", "Dead letter not found")
        }
        RetryError::Resolved(_) => Problem::new(
            StatusCode::CONFLICT,
            "dead-letter-resolved",
            "The dead letter was already retried or discarded",
        ),
        RetryError::StillBroken(_) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "dead-letter-still-failing",
            "The event still cannot be applied",
        ),
        RetryError::Mismatch(_) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "dead-letter-mismatch",
            "The corrected payload is another event",
        ),
        RetryError::RebuildRunning => Problem::new(
            StatusCode::CONFLICT,
            "rebuild-running",
            "A rebuild of the views is running",
        ),
        RetryError::Waiting { needed } => Problem::new(
            StatusCode::CONFLICT,
            "dead-letter-waiting",
            "An earlier version must be applied first",
        )
        .with("needed_version", needed),
        RetryError::Unexpected(error) => return internal(format!("{error:#}")),
    };
    problem.with_detail(detail)
}

/// One partition's position.
#[derive(Debug, Serialize)]
struct PartitionStatus {
    partition: i32,
    /// Next offset the views will apply (recorded in the read database).
    committed_offset: i64,
    /// The partition's end on the broker (`null` when the broker did not answer).
    high_watermark: Option<i64>,
    /// Messages published but not yet applied.
    lag_events: Option<i64>,
    /// Age of the newest applied event while there is lag, else 0.
    lag_seconds: Option<f64>,
    /// When the newest applied event happened.
    last_applied_event_at: Option<DateTime<Utc>>,
    /// Messages per second this replica applied over the last 10 s.
    events_per_second: f64,
    /// Whether this replica consumes the partition now.
    assigned_here: bool,
}

/// `GET /admin/projections`: per partition the recorded offset, high watermark, lag in events
/// and seconds, last applied event time and rate; the parked dead letters; the latest rebuild.
pub async fn projections(State(state): State<AppState>) -> Result<Response, Problem> {
    let mut conn = state.pool.acquire().await.map_err(internal)?;
    let recorded = checkpoint::offsets(&mut conn, &state.topic)
        .await
        .map_err(|e| internal(format!("{e:#}")))?;
    drop(conn);
    let watermarks = watermarks(&state).await;
    let assigned = state.progress.assigned();
    let mut partitions: Vec<i32> = recorded
        .iter()
        .map(|(p, _, _)| *p)
        .chain(watermarks.keys().copied())
        .collect();
    partitions.sort_unstable();
    partitions.dedup();
    let now = Utc::now();
    let rows: Vec<PartitionStatus> = partitions
        .into_iter()
        .map(|partition| {
            let (next, last) = recorded
                .iter()
                .find(|(p, _, _)| *p == partition)
                .map_or((0, None), |(_, n, l)| (*n, *l));
            let high = watermarks.get(&partition).copied();
            let lag = high.map(|h| (h - next).max(0));
            PartitionStatus {
                partition,
                committed_offset: next,
                high_watermark: high,
                lag_events: lag,
                lag_seconds: lag.map(|l| {
                    if l > 0 {
                        last.map_or(0.0, |t| (now - t).num_milliseconds() as f64 / 1000.0)
                    } else {
                        0.0
                    }
                }),
                last_applied_event_at: last,
                events_per_second: state.progress.rate(partition),
                assigned_here: assigned.contains(&partition),
            }
        })
        .collect();
    let parked = dead_letters::parked_count(&state.pool)
        .await
        .map_err(internal)?;
    let rebuild = crate::consumer::rebuild::latest(&state.pool)
        .await
        .map_err(internal)?;
    let total_lag: Option<i64> = rows.iter().map(|r| r.lag_events).sum();
    Ok(Json(serde_json::json!({
        "topic": state.topic,
        "partitions": rows,
        "total_lag_events": total_lag,
        "parked_dead_letters": parked,
        "rebuild": rebuild,
    }))
    .into_response())
}

/// The high watermark of every partition of the topic; empty when the broker does not answer.
pub async fn watermarks(state: &AppState) -> HashMap<i32, i64> {
    let consumer = state.consumer.clone();
    let topic = state.topic.clone();
    tokio::task::spawn_blocking(move || {
        let timeout = Duration::from_secs(1);
        let Ok(metadata) = consumer.fetch_metadata(Some(&topic), timeout) else {
            return HashMap::new();
        };
        metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions())
            .filter_map(|p| {
                consumer
                    .fetch_watermarks(&topic, p.id(), timeout)
                    .ok()
                    .map(|(_, high)| (p.id(), high))
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

/// `POST /admin/projections/rebuild`: 202 and a rebuild running in this replica, or 409 when
/// one runs already. Progress: `GET /admin/projections`.
pub async fn rebuild(
    State(state): State<AppState>,
    _headers: HeaderMap,
) -> Result<Response, Problem> {
    let id = match state.rebuild.start().await {
        Ok(id) => id,
        Err(error) => {
            return Err(match error.downcast::<AlreadyRunning>() {
                Ok(AlreadyRunning(id)) => Problem::new(
                    StatusCode::CONFLICT,
                    "rebuild-running",
                    "A rebuild is already running",
                )
                .with("rebuild_id", id),
                Err(error) => internal(format!("{error:#}")),
            });
        }
    };
    let (rebuild, shutdown) = (state.rebuild.clone(), state.shutdown.clone());
    tokio::spawn(async move {
        let _ = rebuild.run(id, shutdown).await;
    });
    let mut response = (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "rebuild_id": id, "status": "running" })),
    )
        .into_response();
    response.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_static("/admin/projections"),
    );
    Ok(response)
}

//! Operations on the projections: dead letters (list, retry, discard), the projector's position
//! per partition, and rebuilds.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use platform::openapi::ProblemSchema;
use platform::problem::Problem;
use rdkafka::consumer::Consumer;
use serde::Serialize;

use super::AppState;
use super::error::rebuild_refused;
use super::params::{Params, ViewParams};
use crate::projections::retry::{self, Retried, RetryError};
use crate::projections::{checkpoint, dead_letters};

/// `GET /admin/dead-letters?status=parked|retried|discarded&after=&limit=`, oldest first.
#[utoipa::path(
    get,
    path = "/admin/dead-letters",
    tag = "operations",
    summary = "Dead letters, oldest first",
    params(
        ("status" = Option<String>, Query, description = "parked, waiting, retried or discarded", pattern = "^(parked|waiting|retried|discarded)?$"),
        ("after" = Option<i64>, Query, minimum = 1, description = "`next_after` of the previous page"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "1–100, default 20"),
    ),
    responses(
        (status = 200, description = "A page of dead letters", body = DeadLetterPage),
        (
            status = 422,
            description = "A parameter is invalid",
            body = ProblemSchema,
            content_type = "application/problem+json"
        ),
    )
)]
pub async fn list_dead_letters(
    State(state): State<AppState>,
    mut params: Params,
) -> Result<Response, Problem> {
    let status = params.letter_status();
    let after = params.version("after").unwrap_or(0);
    let limit = params.limit();
    params.finish()?;
    let letters = dead_letters::list(&state.pool, status, after, limit).await?;
    let next = (letters.len() as i64 == limit)
        .then(|| letters.last().map(|l| l.id))
        .flatten();
    Ok(Json(DeadLetterPage {
        items: letters,
        next_after: next,
    })
    .into_response())
}

fn letter_id(raw: &str) -> Result<i64, Problem> {
    raw.parse().map_err(|_| RetryError::NotFound.into())
}

/// `POST /admin/dead-letters/{id}/retry`: applies the letter again. An optional JSON body is a
/// corrected envelope to apply instead of the stored payload.
#[utoipa::path(
    post,
    path = "/admin/dead-letters/{id}/retry",
    tag = "operations",
    summary = "Apply a dead letter again, optionally with a corrected envelope",
    params(
        ("id" = i64, Path, description = "Dead letter id"),
    ),
    request_body(
        content = Option<shared_events::EventEnvelope>,
        content_type = "application/json",
        description = "A corrected envelope (same aggregate and version); empty to retry the stored payload"
    ),
    responses(
        (status = 200, description = "Applied (with the waiting versions behind it) or already applied", body = Outcome),
        (
            status = 404,
            description = "Unknown dead letter",
            body = ProblemSchema,
            content_type = "application/problem+json"
        ),
        (
            status = 409,
            description = "Already resolved, an earlier version must go first (`needed_version`), or a rebuild runs",
            body = ProblemSchema,
            content_type = "application/problem+json"
        ),
        (
            status = 422,
            description = "It still cannot be applied, or the corrected envelope is another event",
            body = ProblemSchema,
            content_type = "application/problem+json"
        ),
    )
)]
pub async fn retry_dead_letter(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let id = letter_id(&id)?;
    let replacement = (!body.iter().all(u8::is_ascii_whitespace)).then(|| body.to_vec());
    match retry::retry(&state.pool, id, replacement).await {
        Ok(Retried::Applied { versions }) => Ok(Json(Outcome {
            id,
            outcome: "applied",
            applied_versions: Some(versions),
        })
        .into_response()),
        Ok(Retried::AlreadyApplied) => Ok(Json(Outcome {
            id,
            outcome: "already_applied",
            applied_versions: None,
        })
        .into_response()),
        Err(error) => Err(error.into()),
    }
}

/// `POST /admin/dead-letters/{id}/discard`.
#[utoipa::path(
    post,
    path = "/admin/dead-letters/{id}/discard",
    tag = "operations",
    summary = "Never apply a dead letter; the events waiting behind it follow",
    params(
        ("id" = i64, Path, description = "Dead letter id"),
    ),
    responses(
        (status = 200, description = "Discarded", body = Outcome),
        (
            status = 404,
            description = "Unknown dead letter",
            body = ProblemSchema,
            content_type = "application/problem+json"
        ),
        (
            status = 409,
            description = "Already resolved, or a rebuild runs",
            body = ProblemSchema,
            content_type = "application/problem+json"
        ),
    )
)]
pub async fn discard_dead_letter(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = letter_id(&id)?;
    retry::discard(&state.pool, id).await?;
    Ok(Json(Outcome {
        id,
        outcome: "discarded",
        applied_versions: None,
    })
    .into_response())
}

/// A page of dead letters.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetterPage {
    /// Oldest first.
    pub items: Vec<dead_letters::DeadLetter>,
    /// Pass as `after` for the next page; `null` on the last.
    pub next_after: Option<i64>,
}

/// What a retry or discard did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Outcome {
    /// The dead letter.
    pub id: i64,
    /// `applied`, `already_applied` or `discarded`.
    pub outcome: &'static str,
    /// For `applied`: the versions of the aggregate applied (the letter's and those that waited
    /// behind it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_versions: Option<Vec<i64>>,
}

/// A rebuild that was started.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RebuildStarted {
    /// Its id (see `rebuild` in `GET /admin/projections`).
    pub rebuild_id: i64,
    /// `running`.
    pub status: &'static str,
}

/// The projector's position.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProjectionsStatus {
    /// The event topic.
    pub topic: String,
    /// Per partition.
    pub partitions: Vec<PartitionStatus>,
    /// Sum of `lag_events` (`null` when the broker did not answer).
    pub total_lag_events: Option<i64>,
    /// Dead letters waiting for an operator.
    pub parked_dead_letters: i64,
    /// The latest rebuild: `id`, `status` (`running`, `swapped`, `failed`), `started_at`,
    /// `heartbeat_at`, `finished_at`, `applied_offsets` per partition, `error`.
    #[schema(value_type = Option<Object>)]
    pub rebuild: Option<serde_json::Value>,
}

/// One partition's position.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PartitionStatus {
    /// The partition.
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
#[utoipa::path(
    get,
    path = "/admin/projections",
    tag = "operations",
    summary = "The projector's position per partition, dead letters and the latest rebuild",
    responses(
        (status = 200, description = "Status", body = ProjectionsStatus),
    )
)]
pub async fn projections(State(state): State<AppState>) -> Result<Response, Problem> {
    let mut conn = state.pool.acquire().await?;
    let recorded = checkpoint::offsets(&mut conn, &state.topic).await?;
    drop(conn);
    // The broker's answer, else the last watermark the consumer's own fetches reported (a
    // broker slow to list offsets should not blank out the lag).
    let mut watermarks = state.progress.high_watermarks();
    watermarks.extend(watermarks_now(&state).await);
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
    let parked = dead_letters::parked_count(&state.pool).await?;
    let rebuild = crate::consumer::rebuild::latest(&state.pool).await?;
    let total_lag: Option<i64> = rows.iter().map(|r| r.lag_events).sum();
    Ok(Json(ProjectionsStatus {
        topic: state.topic.clone(),
        partitions: rows,
        total_lag_events: total_lag,
        parked_dead_letters: parked,
        rebuild,
    })
    .into_response())
}

/// The high watermark of every partition of the topic; empty when the broker does not answer.
pub async fn watermarks_now(state: &AppState) -> HashMap<i32, i64> {
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
#[utoipa::path(
    post,
    path = "/admin/projections/rebuild",
    tag = "operations",
    summary = "Rebuild the views from the start of the topic and swap them in",
    responses(
        (status = 202, description = "Started; progress in GET /admin/projections", body = RebuildStarted),
        (
            status = 409,
            description = "A rebuild is running",
            body = ProblemSchema,
            content_type = "application/problem+json"
        ),
    )
)]
pub async fn rebuild(
    State(state): State<AppState>,
    _headers: HeaderMap,
) -> Result<Response, Problem> {
    let id = state.rebuild.start().await.map_err(rebuild_refused)?;
    let (rebuild, shutdown) = (state.rebuild.clone(), state.shutdown.clone());
    tokio::spawn(async move {
        let _ = rebuild.run(id, shutdown).await;
    });
    let mut response = (
        StatusCode::ACCEPTED,
        Json(RebuildStarted {
            rebuild_id: id,
            status: "running",
        }),
    )
        .into_response();
    response.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_static("/admin/projections"),
    );
    Ok(response)
}

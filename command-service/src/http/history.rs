//! The audit trail: `GET /orders/{id}/events` and `GET /customers/{id}/events`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use platform::auth::Caller;
use platform::problem::Problem;
use serde::Deserialize;
use shared_events::AggregateType;
use uuid::Uuid;

use super::{AppState, path_id};
use crate::commands::CommandError;

/// Most events one page returns.
const MAX_PAGE: i64 = 1000;

/// `?after_version=&limit=`: the page of the history to return.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Only events after this version (default 0: from the first).
    #[serde(default)]
    after_version: i64,
    /// At most this many events, 1–1000 (default 1000).
    limit: Option<i64>,
}

/// A page of an aggregate's history.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct History {
    /// Envelopes, oldest first.
    pub events: Vec<shared_events::EventEnvelope>,
    /// Pass as `after_version` for the next page; `null` on the last.
    pub next_after_version: Option<i64>,
}

/// The order's events, oldest first.
#[utoipa::path(get, path = "/orders/{id}/events", tag = "orders", summary = "The order's events (audit trail), oldest first", params(("id" = String, Path, description = "Order id (UUID)"), Page), responses((status = 200, description = "A page of the history", body = History), (status = 404, description = "No such order", body = platform::openapi::ProblemSchema, content_type = "application/problem+json")))]
pub async fn order_events(
    caller: Caller,
    state: State<AppState>,
    Path(id): Path<String>,
    page: Query<Page>,
) -> Result<Response, Problem> {
    history(caller, state, AggregateType::Order, &id, page).await
}

/// The customer's events, oldest first.
#[utoipa::path(get, path = "/customers/{id}/events", tag = "customers", summary = "The customer's events (audit trail), oldest first", params(("id" = String, Path, description = "Customer id (UUID)"), Page), responses((status = 200, description = "A page of the history", body = History), (status = 404, description = "No such customer", body = platform::openapi::ProblemSchema, content_type = "application/problem+json")))]
pub async fn customer_events(
    caller: Caller,
    state: State<AppState>,
    Path(id): Path<String>,
    page: Query<Page>,
) -> Result<Response, Problem> {
    history(caller, state, AggregateType::Customer, &id, page).await
}

/// `{"events": [envelope…], "next_after_version": n | null}`; 404 for an unknown aggregate,
/// and for one of another customer (every event of an aggregate is keyed by its customer).
async fn history(
    caller: Caller,
    State(state): State<AppState>,
    aggregate: AggregateType,
    id: &str,
    Query(page): Query<Page>,
) -> Result<Response, Problem> {
    let id = path_id(id, aggregate)?;
    let limit = page.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let after = page.after_version.max(0);
    let events = state.commands.history(aggregate, id, after, limit).await?;
    let foreign = events.first().is_some_and(|event| {
        Uuid::try_parse(&event.partition_key).map_or(true, |customer| !caller.acts_for(customer))
    });
    if foreign || (events.is_empty() && after == 0) {
        return Err(CommandError::NotFound { aggregate, id }.into());
    }
    let next = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.aggregate_version))
        .flatten();
    Ok(Json(History {
        events,
        next_after_version: next,
    })
    .into_response())
}

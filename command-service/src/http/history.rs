//! The audit trail: `GET /orders/{id}/events` and `GET /customers/{id}/events`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use platform::problem::Problem;
use serde::Deserialize;
use shared_events::AggregateType;

use super::{AppState, path_id};
use crate::commands::CommandError;

/// Most events one page returns.
const MAX_PAGE: i64 = 1000;

/// `?after_version=&limit=`: the page of the history to return.
#[derive(Debug, Deserialize)]
pub struct Page {
    #[serde(default)]
    after_version: i64,
    limit: Option<i64>,
}

/// The order's events, oldest first.
pub async fn order_events(
    state: State<AppState>,
    Path(id): Path<String>,
    page: Query<Page>,
) -> Result<Response, Problem> {
    history(state, AggregateType::Order, &id, page).await
}

/// The customer's events, oldest first.
pub async fn customer_events(
    state: State<AppState>,
    Path(id): Path<String>,
    page: Query<Page>,
) -> Result<Response, Problem> {
    history(state, AggregateType::Customer, &id, page).await
}

/// `{"events": [envelope…], "next_after_version": n | null}`; 404 for an unknown aggregate.
async fn history(
    State(state): State<AppState>,
    aggregate: AggregateType,
    id: &str,
    Query(page): Query<Page>,
) -> Result<Response, Problem> {
    let id = path_id(id, aggregate)?;
    let limit = page.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let after = page.after_version.max(0);
    let events = state.commands.history(aggregate, id, after, limit).await?;
    if events.is_empty() && after == 0 {
        return Err(CommandError::NotFound { aggregate, id }.into());
    }
    let next = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.aggregate_version))
        .flatten();
    Ok(Json(serde_json::json!({ "events": events, "next_after_version": next })).into_response())
}

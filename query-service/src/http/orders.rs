//! `GET /orders/{id}` (order detail) and `GET /orders` (back-office search).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use platform::problem::Problem;
use uuid::Uuid;

use super::AppState;
use super::caching::{json_value, json_view};
use super::consistency::{Wanted, internal};
use super::params::Params;
use crate::projections::order_detail;
use crate::projections::order_lists::{self, OrderSummary, Search};

/// 404 for an order the views do not have (or an id that cannot name one).
pub fn not_found(id: &str) -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "not-found", "Order not found").with_detail(format!(
        "No order with id {id:?} is known to the query service (yet)."
    ))
}

/// The order detail document, after waiting for `X-Consistency-Token` / `?min_version=`.
pub async fn detail(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let mut params = Params::default();
    let min_version = params.version("min_version", query.get("min_version").map(String::as_str));
    params.finish()?;
    let order_id = Uuid::try_parse(&id).map_err(|_| not_found(&id))?;
    state
        .read_your_writes(&Wanted::from_headers(&headers)?.and(order_id, min_version))
        .await?;
    let body = order_detail::find(&state.pool, order_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found(&id))?;
    Ok(json_view(&headers, body.into_bytes()))
}

/// A page of orders and where the next one starts.
pub fn page(items: Vec<OrderSummary>, limit: i64) -> serde_json::Value {
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(|o| o.cursor().to_string()))
        .flatten();
    serde_json::json!({ "items": items, "next_cursor": next })
}

/// `GET /orders?status=&customer_id=&placed_after=&placed_before=&limit=&cursor=`.
pub async fn search(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let get = |name: &str| query.get(name).map(String::as_str);
    let mut params = Params::default();
    let search = Search {
        customer_id: params.uuid("customer_id", get("customer_id")),
        status: params.status(get("status")),
        placed_after: params.time("placed_after", get("placed_after")),
        placed_before: params.time("placed_before", get("placed_before")),
    };
    let limit = params.limit(get("limit"));
    let cursor = params.cursor(get("cursor"));
    if let (Some(after), Some(before)) = (search.placed_after, search.placed_before)
        && after >= before
    {
        params.refuse("placed_before", "must be later than placed_after");
    }
    params.finish()?;
    state
        .read_your_writes(&Wanted::from_headers(&headers)?)
        .await?;
    let items = order_lists::search(&state.pool, &search, cursor, limit)
        .await
        .map_err(internal)?;
    Ok(json_value(&headers, &page(items, limit)))
}

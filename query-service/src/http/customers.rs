//! `GET /customers/{id}` (profile) and `GET /customers/{id}/orders` (their orders, newest
//! first).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use platform::problem::Problem;
use uuid::Uuid;

use super::AppState;
use super::caching::json_value;
use super::consistency::{Wanted, internal};
use super::orders::page;
use super::params::Params;
use crate::projections::{customer_profile, order_lists};

fn not_found(id: &str) -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "not-found", "Customer not found").with_detail(format!(
        "No customer with id {id:?} is known to the query service (yet)."
    ))
}

/// The customer profile, after waiting for `X-Consistency-Token` / `?min_version=`.
pub async fn profile(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let mut params = Params::default();
    let min_version = params.version("min_version", query.get("min_version").map(String::as_str));
    params.finish()?;
    let customer_id = Uuid::try_parse(&id).map_err(|_| not_found(&id))?;
    state
        .read_your_writes(&Wanted::from_headers(&headers)?.and(customer_id, min_version))
        .await?;
    let profile = customer_profile::find(&state.pool, customer_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found(&id))?;
    Ok(json_value(&headers, &profile))
}

/// `GET /customers/{id}/orders?status=&limit=&cursor=`. An unknown customer has no orders.
pub async fn orders(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let get = |name: &str| query.get(name).map(String::as_str);
    let mut params = Params::default();
    let status = params.status(get("status"));
    let limit = params.limit(get("limit"));
    let cursor = params.cursor(get("cursor"));
    params.finish()?;
    let customer_id = Uuid::try_parse(&id).map_err(|_| not_found(&id))?;
    state
        .read_your_writes(&Wanted::from_headers(&headers)?)
        .await?;
    let items =
        order_lists::customer_orders(&state.pool, customer_id, status.as_deref(), cursor, limit)
            .await
            .map_err(internal)?;
    Ok(json_value(&headers, &page(items, limit)))
}

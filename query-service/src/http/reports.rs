//! `GET /dashboards/shipping` and `GET /reports/daily-sales`.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{Days, Utc};
use platform::problem::Problem;

use super::AppState;
use super::caching::json_value;
use super::consistency::{Wanted, internal};
use super::params::Params;
use crate::projections::daily_sales;
use crate::projections::order_lists::{self, Cursor};

/// Longest report range, in days.
const MAX_REPORT_DAYS: u64 = 366;

/// Confirmed orders awaiting shipment, oldest first, with their age: `?limit=&cursor=`.
pub async fn shipping(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let get = |name: &str| query.get(name).map(String::as_str);
    let mut params = Params::default();
    let limit = params.limit(get("limit"));
    let cursor = params.cursor(get("cursor"));
    params.finish()?;
    state
        .read_your_writes(&Wanted::from_headers(&headers)?)
        .await?;
    let items = order_lists::awaiting_shipment(&state.pool, cursor, limit, Utc::now())
        .await
        .map_err(internal)?;
    let next = (items.len() as i64 == limit)
        .then(|| {
            items.last().map(|o| {
                Cursor {
                    at: o.confirmed_at,
                    id: o.order_id,
                }
                .to_string()
            })
        })
        .flatten();
    Ok(json_value(
        &headers,
        &serde_json::json!({ "items": items, "next_cursor": next }),
    ))
}

/// Sales per UTC day and currency: `?from=YYYY-MM-DD&to=YYYY-MM-DD` (inclusive; default the
/// last 30 days; at most 366 days).
pub async fn daily_sales(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let get = |name: &str| query.get(name).map(String::as_str);
    let mut params = Params::default();
    let today = Utc::now().date_naive();
    let to = params.date("to", get("to")).unwrap_or(today);
    let from = params
        .date("from", get("from"))
        .unwrap_or_else(|| to.checked_sub_days(Days::new(29)).unwrap_or(to));
    if from > to {
        params.refuse("from", "must not be after to");
    } else if (to - from).num_days() >= MAX_REPORT_DAYS as i64 {
        params.refuse("to", "the range may cover at most 366 days");
    }
    params.finish()?;
    state
        .read_your_writes(&Wanted::from_headers(&headers)?)
        .await?;
    let days = daily_sales::report(&state.pool, from, to)
        .await
        .map_err(internal)?;
    Ok(json_value(
        &headers,
        &serde_json::json!({ "from": from, "to": to, "days": days }),
    ))
}

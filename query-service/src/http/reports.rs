//! `GET /dashboards/shipping` and `GET /reports/daily-sales`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{Days, NaiveDate, Utc};
use platform::auth::Caller;
use platform::db::connections::Connections;
use platform::problem::Problem;

use super::AppState;
use super::batched::View;
use super::caching::{json_view, to_json};
use super::consistency::Wanted;
use super::docs::{PageParams, ViewAnswers, ViewHeaders};
use super::params::{Params, ViewParams, keyset};
use crate::projections::daily_sales;
use crate::projections::order_lists::{self, Cursor};

/// A page of the shipping dashboard.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ShippingPage {
    /// Confirmed orders, longest waiting first.
    pub items: Vec<order_lists::AwaitingShipment>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// The daily sales report.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SalesReport {
    /// First day (inclusive).
    pub from: chrono::NaiveDate,
    /// Last day (inclusive).
    pub to: chrono::NaiveDate,
    /// One row per day and currency with sales; days without any are absent.
    pub days: Vec<daily_sales::DaySales>,
}

/// Longest report range, in days.
const MAX_REPORT_DAYS: u64 = 366;

/// The shipping dashboard's pages, by cursor and limit: every screen polling the same page
/// shares one query and one serialization, with the ages as of that query.
pub struct ShippingPages;

impl View for ShippingPages {
    type Key = (Option<Cursor>, i64);
    type Answer = Bytes;

    async fn read(
        db: &Connections,
        keys: Vec<(Option<Cursor>, i64)>,
    ) -> Result<HashMap<(Option<Cursor>, i64), Bytes>, Problem> {
        let now = Utc::now();
        let mut pages = HashMap::with_capacity(keys.len());
        for (cursor, limit) in keys {
            let rows = order_lists::awaiting_shipment(db, cursor, limit + 1, now).await?;
            let (items, next_cursor) = keyset(rows, limit, |o| Cursor {
                at: o.confirmed_at,
                id: o.order_id,
            });
            let page = ShippingPage { items, next_cursor };
            pages.insert((cursor, limit), to_json(&page));
        }
        Ok(pages)
    }
}

/// The daily sales reports, by first and last day.
pub struct SalesReports;

impl View for SalesReports {
    type Key = (NaiveDate, NaiveDate);
    type Answer = Bytes;

    async fn read(
        db: &Connections,
        keys: Vec<(NaiveDate, NaiveDate)>,
    ) -> Result<HashMap<(NaiveDate, NaiveDate), Bytes>, Problem> {
        let mut reports = HashMap::with_capacity(keys.len());
        for (from, to) in keys {
            let days = daily_sales::report(db, from, to).await?;
            reports.insert((from, to), to_json(&SalesReport { from, to, days }));
        }
        Ok(reports)
    }
}

/// Confirmed orders awaiting shipment, oldest first, with their age: `?limit=&cursor=`.
#[utoipa::path(
    get,
    path = "/dashboards/shipping",
    tag = "back office",
    summary = "Confirmed orders awaiting shipment, longest waiting first",
    params(
        PageParams,
        ViewHeaders,
    ),
    responses(
        (
            status = 200,
            description = "A page of the dashboard",
            body = ShippingPage,
            headers(("ETag" = String))
        ),
        ViewAnswers,
    )
)]
pub async fn shipping(
    caller: Caller,
    State(state): State<AppState>,
    mut params: Params,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let limit = params.limit();
    let cursor = params.cursor();
    params.finish()?;
    state
        .read_your_writes(caller, &Wanted::from_headers(&headers)?)
        .await?;
    let page = state.views.shipping.answer((cursor, limit)).await?;
    Ok(json_view(&headers, page))
}

/// Sales per UTC day and currency: `?from=YYYY-MM-DD&to=YYYY-MM-DD` (inclusive; default the
/// last 30 days; at most 366 days).
#[utoipa::path(
    get,
    path = "/reports/daily-sales",
    tag = "back office",
    summary = "Sales per UTC day and currency",
    params(
        ("from" = Option<String>, Query, format = Date, description = "YYYY-MM-DD, inclusive; default 29 days before to; not after to"),
        ("to" = Option<String>, Query, format = Date, description = "YYYY-MM-DD, inclusive; default today; the range covers at most 366 days"),
        ViewHeaders,
    ),
    responses(
        (
            status = 200,
            description = "The report",
            body = SalesReport,
            headers(("ETag" = String))
        ),
        ViewAnswers,
    )
)]
pub async fn daily_sales(
    caller: Caller,
    State(state): State<AppState>,
    mut params: Params,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let today = Utc::now().date_naive();
    let to = params.date("to").unwrap_or(today);
    let from = params
        .date("from")
        .unwrap_or_else(|| to.checked_sub_days(Days::new(29)).unwrap_or(to));
    if from > to {
        params.refuse("from", "must not be after to");
    } else if (to - from).num_days() >= MAX_REPORT_DAYS as i64 {
        params.refuse("to", "the range may cover at most 366 days");
    }
    params.finish()?;
    state
        .read_your_writes(caller, &Wanted::from_headers(&headers)?)
        .await?;
    let report = state.views.sales.answer((from, to)).await?;
    Ok(json_view(&headers, report))
}

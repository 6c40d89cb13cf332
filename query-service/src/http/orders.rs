//! `GET /orders/{id}` (order detail) and `GET /orders` (back-office search).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use platform::auth::Caller;
use platform::db::connections::Connections;
use platform::openapi::ProblemSchema;
use platform::problem::Problem;
use shared_events::AggregateType;
use uuid::Uuid;

use super::AppState;
use super::batched::View;
use super::caching::json_view;
use super::consistency::Wanted;
use super::docs::{OrderPath, PageParams, StatusFilter, ViewAnswers, ViewHeaders};
use super::error::not_found;
use super::params::{Params, ViewParams};
use crate::projections::order_detail;
use crate::projections::order_lists::{self, CustomerOrders, Search};

/// `GET /orders/{id}`'s reads: the customer and stored document of each order, one
/// `order_id = ANY($1)` query per batch.
pub struct OrderDetails;

impl View for OrderDetails {
    type Key = Uuid;
    type Answer = (Uuid, Bytes);

    async fn read(
        db: &Connections,
        keys: Vec<Uuid>,
    ) -> Result<HashMap<Uuid, (Uuid, Bytes)>, Problem> {
        let found = order_detail::find_many(db, &keys).await?;
        Ok(found
            .into_iter()
            .map(|(order, (customer, body))| (order, (customer, Bytes::from(body))))
            .collect())
    }
}

/// The order detail document, after waiting for `X-Consistency-Token` / `?min_version=`.
#[utoipa::path(
    get,
    path = "/orders/{id}",
    tag = "orders",
    summary = "Order detail",
    params(
        OrderPath,
        ("min_version" = Option<i64>, Query, minimum = 1, description = "Wait until the view has at least this version"),
        ViewHeaders,
    ),
    responses(
        (
            status = 200,
            description = "The order",
            body = order_detail::OrderDetail,
            headers(("ETag" = String, description = "Changes whenever the document does"))
        ),
        (
            status = 404,
            description = "Unknown order",
            body = ProblemSchema,
            content_type = "application/problem+json"
        ),
        ViewAnswers,
    )
)]
pub async fn detail(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    mut params: Params,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let min_version = params.version("min_version");
    params.finish()?;
    let order_id = Uuid::try_parse(&id).map_err(|_| not_found(AggregateType::Order, &id))?;
    state
        .read_your_writes(
            caller,
            &Wanted::from_headers(&headers)?.and(order_id, min_version),
        )
        .await?;
    let (_, body) = state
        .views
        .details
        .read(order_id)
        .await?
        .filter(|(customer, _)| caller.acts_for(*customer))
        .ok_or_else(|| not_found(AggregateType::Order, &id))?;
    Ok(json_view(&headers, body))
}

/// `GET /orders?status=&customer_id=&placed_after=&placed_before=&limit=&cursor=`.
#[utoipa::path(
    get,
    path = "/orders",
    tag = "orders",
    summary = "Back-office order search, newest first",
    params(
        StatusFilter,
        ("customer_id" = Option<String>, Query, format = Uuid, description = "Only this customer's orders"),
        ("placed_after" = Option<String>, Query, format = DateTime, description = "RFC 3339, inclusive"),
        ("placed_before" = Option<String>, Query, format = DateTime, description = "RFC 3339, exclusive; later than placed_after"),
        PageParams,
        ViewHeaders,
    ),
    responses(
        (
            status = 200,
            description = "A page of orders",
            body = order_lists::OrderPage,
            headers(("ETag" = String))
        ),
        ViewAnswers,
    )
)]
pub async fn search(
    caller: Caller,
    State(state): State<AppState>,
    mut params: Params,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let search = Search {
        customer_id: params.uuid("customer_id"),
        status: params.status(),
        placed_after: params.time("placed_after"),
        placed_before: params.time("placed_before"),
    };
    let limit = params.limit();
    let cursor = params.cursor();
    if let (Some(after), Some(before)) = (search.placed_after, search.placed_before)
        && after >= before
    {
        params.refuse("placed_before", "must be later than placed_after");
    }
    params.finish()?;
    state
        .read_your_writes(caller, &Wanted::from_headers(&headers)?)
        .await?;
    let page = match search.customer_id {
        Some(customer_id) => {
            let page = CustomerOrders {
                customer_id,
                status: search.status,
                placed_after: search.placed_after,
                placed_before: search.placed_before,
                after: cursor,
                limit,
            };
            state.views.customer_orders.answer(page).await?
        }
        None => order_lists::search(&state.reads, &search, cursor, limit)
            .await?
            .into_body()
            .into(),
    };
    Ok(json_view(&headers, page))
}

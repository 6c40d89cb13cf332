//! `GET /customers/{id}` (profile) and `GET /customers/{id}/orders` (their orders, newest
//! first).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use platform::auth::Caller;
use platform::openapi::ProblemSchema;
use platform::problem::Problem;
use shared_events::AggregateType;
use uuid::Uuid;

use super::AppState;
use super::caching::{json_value, json_view};
use super::consistency::Wanted;
use super::docs::{CustomerPath, PageParams, StatusFilter, ViewAnswers, ViewHeaders};
use super::error::not_found;
use super::params::{Params, ViewParams};
use crate::projections::{customer_profile, order_lists};

/// The customer `id` names, if the caller may see them; otherwise a 404 that does not say
/// whether they exist.
pub(super) fn own_customer(caller: Caller, id: &str) -> Result<Uuid, Problem> {
    Uuid::try_parse(id)
        .ok()
        .filter(|customer| caller.acts_for(*customer))
        .ok_or_else(|| not_found(AggregateType::Customer, id))
}

/// The customer profile, after waiting for `X-Consistency-Token` / `?min_version=`.
#[utoipa::path(
    get,
    path = "/customers/{id}",
    tag = "customers",
    summary = "Customer profile",
    params(
        CustomerPath,
        ("min_version" = Option<i64>, Query, minimum = 1, description = "Wait until the customer is at least at this version"),
        ViewHeaders,
    ),
    responses(
        (
            status = 200,
            description = "The profile",
            body = customer_profile::Profile,
            headers(("ETag" = String))
        ),
        (
            status = 404,
            description = "Unknown customer",
            body = ProblemSchema,
            content_type = "application/problem+json"
        ),
        ViewAnswers,
    )
)]
pub async fn profile(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    mut params: Params,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let min_version = params.version("min_version");
    params.finish()?;
    let customer_id = own_customer(caller, &id)?;
    state
        .read_your_writes(
            caller,
            &Wanted::from_headers(&headers)?.and(customer_id, min_version),
        )
        .await?;
    let profile = customer_profile::find(&state.reads, customer_id)
        .await?
        .ok_or_else(|| not_found(AggregateType::Customer, &id))?;
    Ok(json_value(&headers, &profile))
}

/// `GET /customers/{id}/orders?status=&limit=&cursor=`. An unknown customer has no orders.
#[utoipa::path(
    get,
    path = "/customers/{id}/orders",
    tag = "customers",
    summary = "A customer's orders, newest first",
    params(
        CustomerPath,
        StatusFilter,
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
        (
            status = 404,
            description = "Not a customer id",
            body = ProblemSchema,
            content_type = "application/problem+json"
        ),
        ViewAnswers,
    )
)]
pub async fn orders(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    mut params: Params,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let status = params.status();
    let limit = params.limit();
    let cursor = params.cursor();
    params.finish()?;
    let customer_id = own_customer(caller, &id)?;
    state
        .read_your_writes(caller, &Wanted::from_headers(&headers)?)
        .await?;
    let page =
        order_lists::customer_orders(&state.reads, customer_id, status, cursor, limit).await?;
    Ok(json_view(&headers, page.into_body().into_bytes()))
}

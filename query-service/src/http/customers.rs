//! `GET /customers/{id}` (profile) and `GET /customers/{id}/orders` (their orders, newest
//! first).

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
use super::caching::{json_view, to_json};
use super::consistency::Wanted;
use super::docs::{CustomerPath, PageParams, StatusFilter, ViewAnswers, ViewHeaders};
use super::error::not_found;
use super::params::{Params, ViewParams};
use crate::projections::order_lists::CustomerOrders;
use crate::projections::{customer_profile, order_lists};

/// `GET /customers/{id}`'s reads: one `customer_id = ANY($1)` query per batch.
pub struct Profiles;

impl View for Profiles {
    type Key = Uuid;
    type Answer = Bytes;

    async fn read(db: &Connections, keys: Vec<Uuid>) -> Result<HashMap<Uuid, Bytes>, Problem> {
        let found = customer_profile::find_many(db, &keys).await?;
        Ok(found
            .iter()
            .map(|profile| (profile.customer_id, to_json(profile)))
            .collect())
    }
}

/// The pages of customers' orders (`GET /customers/{id}/orders`, and `GET /orders` naming a
/// customer): one statement per batch, a lateral page per read.
pub struct CustomerOrderPages;

impl View for CustomerOrderPages {
    type Key = CustomerOrders;
    type Answer = Bytes;

    async fn read(
        db: &Connections,
        keys: Vec<CustomerOrders>,
    ) -> Result<HashMap<CustomerOrders, Bytes>, Problem> {
        let pages = order_lists::customer_orders(db, &keys).await?;
        Ok(keys
            .into_iter()
            .zip(pages)
            .map(|(key, page)| (key, page.into_body().into()))
            .collect())
    }
}

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
    let profile = state
        .views
        .profiles
        .read(customer_id)
        .await?
        .ok_or_else(|| not_found(AggregateType::Customer, &id))?;
    Ok(json_view(&headers, profile))
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
    let page = CustomerOrders {
        customer_id,
        status,
        placed_after: None,
        placed_before: None,
        after: cursor,
        limit,
    };
    let page = state.views.customer_orders.answer(page).await?;
    Ok(json_view(&headers, page))
}

//! Strict reads: `GET /orders/{id}` and `GET /customers/{id}` answer the current state from the
//! write model, for the moments a client must be exact (choosing the `If-Match` of a command
//! that must not fail, or after a 412). Everything else reads the query service's views, which
//! are shaped per screen and cost the write database nothing.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use platform::auth::Caller;
use platform::openapi::ProblemSchema;
use platform::problem::Problem;
use shared_events::AggregateType;
use shared_events::order::{OrderLine, ShippingAddress};
use uuid::Uuid;

use super::docs::{CustomerPath, OrderPath};
use super::{AppState, error, path_id};

use crate::domain::customer::Customer;
use crate::domain::order::{Order, OrderStatus};
use crate::domain::values::{CustomerId, OrderId};

/// An order as the write model has it now.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct OrderState {
    /// The order.
    pub order_id: Uuid,
    /// Who placed it.
    pub customer_id: Uuid,
    /// Where it is in its lifecycle.
    pub status: OrderStatus,
    /// ISO 4217 code of every price.
    pub currency: String,
    /// Lines in the order they were added.
    pub items: Vec<OrderLine>,
    /// Where to ship, if given.
    pub shipping_address: Option<ShippingAddress>,
    /// Once shipped.
    pub carrier: Option<String>,
    /// Once shipped.
    pub tracking_number: Option<String>,
    /// Once cancelled.
    pub cancellation_reason: Option<String>,
    /// Its version; also the `ETag`.
    pub version: i64,
    /// When it was placed.
    pub placed_at: DateTime<Utc>,
}

impl From<Order> for OrderState {
    fn from(order: Order) -> Self {
        let (carrier, tracking_number) = order.shipment.unzip();
        OrderState {
            order_id: order.id.0,
            customer_id: order.customer_id.0,
            status: order.status,
            currency: order.currency,
            items: order.lines,
            shipping_address: order.shipping_address,
            carrier,
            tracking_number,
            cancellation_reason: order.cancellation_reason,
            version: order.version,
            placed_at: order.placed_at,
        }
    }
}

/// A customer as the write model has them now.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CustomerState {
    /// The customer.
    pub customer_id: Uuid,
    /// Full name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Their version; also the `ETag`.
    pub version: i64,
}

impl From<Customer> for CustomerState {
    fn from(customer: Customer) -> Self {
        CustomerState {
            customer_id: customer.id.0,
            name: customer.name,
            email: customer.email,
            version: customer.version,
        }
    }
}

/// The order now, from the write model.
#[utoipa::path(
    get,
    path = "/orders/{id}",
    tag = "orders",
    summary = "The order as it is now (strict read from the write model)",
    params(OrderPath),
    responses(
        (
            status = 200, description = "The order", body = OrderState,
            headers(("ETag" = String, description = "\"<version>\", usable in If-Match"))
        ),
        (
            status = 404, description = "No such order (or another customer's)", body = ProblemSchema,
            content_type = "application/problem+json"
        ),
    )
)]
pub async fn order(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let order_id = OrderId(path_id(&id, AggregateType::Order)?);
    let order = state
        .commands
        .current_order(order_id)
        .await?
        .filter(|order| caller.acts_for(order.customer_id.0))
        .ok_or_else(|| error::not_found(AggregateType::Order, &id))?;
    Ok(exact(order.version, OrderState::from(order)))
}

/// The customer now, from the write model.
#[utoipa::path(
    get,
    path = "/customers/{id}",
    tag = "customers",
    summary = "The customer as they are now (strict read from the write model)",
    params(CustomerPath),
    responses(
        (
            status = 200, description = "The customer", body = CustomerState,
            headers(("ETag" = String, description = "\"<version>\", usable in If-Match"))
        ),
        (
            status = 404, description = "No such customer (or another one than the caller)", body = ProblemSchema,
            content_type = "application/problem+json"
        ),
    )
)]
pub async fn customer(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let customer_id = CustomerId(path_id(&id, AggregateType::Customer)?);
    let customer = state
        .commands
        .current_customer(customer_id)
        .await?
        .filter(|customer| caller.acts_for(customer.id.0))
        .ok_or_else(|| error::not_found(AggregateType::Customer, &id))?;
    Ok(exact(customer.version, CustomerState::from(customer)))
}

/// `body` with `ETag: "<version>"`, never stored by a cache: it is exact only now.
fn exact(version: i64, body: impl serde::Serialize) -> Response {
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{version}\"")) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

//! Live views as Server-Sent Events: `GET /orders/{id}/stream` and
//! `GET /customers/{id}/orders/stream`. Each sends the view when it connects (if it exists) and
//! again whenever it changes, driven by the view change notifications; frontends use these
//! instead of polling. Streams end when the service shuts down.

use std::convert::Infallible;
use std::future::Future;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use platform::auth::Caller;
use platform::problem::Problem;
use uuid::Uuid;

use super::AppState;
use crate::changes;
use crate::projections::{order_detail, order_lists};

/// Orders sent per update of the customer's orders stream (their newest).
const STREAM_PAGE: i64 = 20;

/// One event of `GET /orders/{id}/stream`, as a Server-Sent Events client parses it. Only
/// documents the stream (the handler writes the event text directly).
#[derive(Debug, utoipa::ToSchema)]
#[expect(dead_code, reason = "a schema of the wire format, never built")]
pub struct OrderStreamEvent {
    /// Always `order`.
    #[schema(pattern = "^order$")]
    pub event: String,
    /// The order detail document (the body of `GET /orders/{id}`), as JSON.
    #[schema(content_media_type = "application/json")]
    pub data: String,
}

/// One event of `GET /customers/{id}/orders/stream`, as a Server-Sent Events client parses it.
/// Only documents the stream.
#[derive(Debug, utoipa::ToSchema)]
#[expect(dead_code, reason = "a schema of the wire format, never built")]
pub struct OrdersStreamEvent {
    /// Always `orders`.
    #[schema(pattern = "^orders$")]
    pub event: String,
    /// A page of the customer's newest orders (`items`, `next_cursor`), as JSON.
    #[schema(content_media_type = "application/json")]
    pub data: String,
}

/// The order detail document, now and after every change.
#[utoipa::path(get, path = "/orders/{id}/stream", tag = "orders", summary = "Live order detail (Server-Sent Events)", params(("id" = String, Path, format = Uuid, description = "Order id")), responses((status = 200, description = "`event: order`, `data:` the order detail document, at once and after every change", content_type = "text/event-stream", body = OrderStreamEvent), (status = 404, description = "Not an order id", body = platform::openapi::ProblemSchema, content_type = "application/problem+json")))]
pub async fn order(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    let order_id = Uuid::try_parse(&id).map_err(|_| super::orders::not_found(&id))?;
    let stream = live(state, "order", None, move |state: AppState| async move {
        // Another customer's order streams nothing, exactly like an order that does not exist.
        let view = order_detail::find(&state.pool, order_id)
            .await?
            .filter(|(customer, _)| caller.acts_for(*customer));
        Ok(view.map(|(customer, body)| (Some(customer), body)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The customer's newest orders, now and after every change to any of their orders.
#[utoipa::path(get, path = "/customers/{id}/orders/stream", tag = "customers", summary = "Live list of a customer's newest orders (Server-Sent Events)", params(("id" = String, Path, format = Uuid, description = "Customer id")), responses((status = 200, description = "`event: orders`, `data:` a page of their 20 newest orders, at once and after every change", content_type = "text/event-stream", body = OrdersStreamEvent), (status = 404, description = "Not a customer id", body = platform::openapi::ProblemSchema, content_type = "application/problem+json")))]
pub async fn customer_orders(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    let customer_id = Uuid::try_parse(&id)
        .ok()
        .filter(|id| caller.acts_for(*id))
        .ok_or_else(|| {
            Problem::new(
                axum::http::StatusCode::NOT_FOUND,
                "not-found",
                "Customer not found",
            )
            .with_detail(format!("{id:?} is not a customer id"))
        })?;
    let stream = live(
        state,
        "orders",
        Some(customer_id),
        move |state: AppState| async move {
            let items =
                order_lists::customer_orders(&state.pool, customer_id, None, None, STREAM_PAGE)
                    .await?;
            let page = super::orders::page(items, STREAM_PAGE);
            Ok(Some((
                Some(customer_id),
                serde_json::to_string(&page).unwrap_or_default(),
            )))
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

struct Watch<F> {
    state: AppState,
    changes: tokio::sync::broadcast::Receiver<changes::Change>,
    customer: Option<Uuid>,
    last: Option<String>,
    first: bool,
    read: F,
    event: &'static str,
}

/// Sends `read`'s view as event `event` at once and after each change concerning `customer`
/// (any change while the customer is not known yet), skipping unchanged views.
fn live<F, Fut>(
    state: AppState,
    event: &'static str,
    customer: Option<Uuid>,
    read: F,
) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: Fn(AppState) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Option<(Option<Uuid>, String)>, sqlx::Error>> + Send,
{
    let changes = state.changes.subscribe();
    let watch = Watch {
        state,
        changes,
        customer,
        last: None,
        first: true,
        read,
        event,
    };
    futures_util::stream::unfold(watch, |mut watch| async move {
        loop {
            if !watch.first {
                let change = tokio::select! {
                    () = watch.state.shutdown.cancelled() => return None,
                    change = changes::next(&mut watch.changes) => change?,
                };
                if watch
                    .customer
                    .is_some_and(|customer| !change.concerns(customer))
                {
                    continue;
                }
            }
            watch.first = false;
            match (watch.read)(watch.state.clone()).await {
                Ok(Some((customer, body))) if watch.last.as_ref() != Some(&body) => {
                    watch.customer = watch.customer.or(customer);
                    watch.last = Some(body.clone());
                    return Some((Ok(Event::default().event(watch.event).data(body)), watch));
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "live view could not be read; waiting for the next change")
                }
            }
        }
    })
}

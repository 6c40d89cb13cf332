//! Live views as Server-Sent Events: `GET /orders/{id}/stream` and
//! `GET /customers/{id}/orders/stream`. Each sends the view when it connects and again whenever
//! it changes, driven by the view change notifications; frontends use these instead of polling.
//! An order or customer the caller cannot see answers 404, as its view does. Browsers, whose
//! `EventSource` cannot send `Authorization`, open them with a ticket (`POST /stream-tickets`,
//! see [`crate::tickets`]). Each client may hold a bounded number open per replica; streams end
//! when the service shuts down.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use platform::auth::{Caller, Client};
use platform::openapi::ProblemSchema;
use platform::problem::{FieldErrors, Problem};
use shared_events::AggregateType;
use uuid::Uuid;

use super::AppState;
use super::docs::{CustomerPath, OrderPath, StreamTicketParam, TooManyStreams};
use super::error::not_found;
use crate::changes;
use crate::projections::order_lists::{CustomerOrders, JsonPage};
use crate::projections::{customer_profile, order_detail, order_lists};

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

/// `POST /stream-tickets`: which stream the ticket is for.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketRequest {
    /// The stream's path: `/orders/{id}/stream` or `/customers/{id}/orders/stream`.
    #[schema(schema_with = stream_path)]
    pub stream: String,
}

/// The schema of [`TicketRequest::stream`]: the paths [`is_stream_path`] accepts.
fn stream_path() -> utoipa::openapi::Object {
    const ID: &str = "([0-9A-Fa-f]{32}|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})";
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some(
            "The stream's path: `/orders/{id}/stream` or `/customers/{id}/orders/stream`.",
        ))
        .pattern(Some(format!(
            "^/(orders/{ID}|customers/{ID}/orders)/stream$"
        )))
        .build()
}

/// A ticket opening one stream as the caller who asked for it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct StreamTicket {
    /// The ticket; send it as the stream's `ticket` query parameter.
    pub ticket: String,
    /// The stream's path with the ticket: what to pass to `new EventSource(...)`, after the
    /// query service's origin.
    pub url: String,
    /// Until when it opens the stream (reconnects included); an open stream outlives it.
    pub expires_at: DateTime<Utc>,
}

/// A ticket for a browser's `EventSource`, which cannot send `Authorization`.
#[utoipa::path(
    post,
    path = "/stream-tickets",
    tag = "streams",
    summary = "A short-lived ticket that opens one live stream (for EventSource)",
    request_body = TicketRequest,
    responses(
        (status = 201, description = "The ticket", body = StreamTicket),
        (
            status = 422, description = "`stream` is not a stream's path", body = ProblemSchema,
            content_type = "application/problem+json"
        ),
    )
)]
pub async fn ticket(
    caller: Caller,
    Extension(Client(client)): Extension<Client>,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let request: TicketRequest = platform::http::parse_json(&headers, &body)?;
    let mut fields = FieldErrors::default();
    let stream = fields.check(
        || "stream".into(),
        is_stream_path(&request.stream)
            .then_some(request.stream.as_str())
            .ok_or("must be /orders/{id}/stream or /customers/{id}/orders/stream"),
    );
    let stream = fields.finish(stream)?;
    let issued = state.tickets.issue(caller, &client, stream).await?;
    let url = format!("{stream}?ticket={}", issued.ticket);
    let ticket = StreamTicket {
        ticket: issued.ticket,
        url,
        expires_at: issued.expires_at,
    };
    Ok((StatusCode::CREATED, Json(ticket)).into_response())
}

/// Whether `path` is a stream's: an order's or a customer's orders'.
fn is_stream_path(path: &str) -> bool {
    let uuid = |id: &str| Uuid::try_parse(id).is_ok();
    let order = path
        .strip_prefix("/orders/")
        .and_then(|rest| rest.strip_suffix("/stream"));
    let customer = path
        .strip_prefix("/customers/")
        .and_then(|rest| rest.strip_suffix("/orders/stream"));
    order.or(customer).is_some_and(uuid)
}

/// The order detail document, now and after every change.
#[utoipa::path(
    get,
    path = "/orders/{id}/stream",
    tag = "streams",
    summary = "Live order detail (Server-Sent Events)",
    params(
        OrderPath,
        StreamTicketParam,
    ),
    responses(
        (
            status = 200, content_type = "text/event-stream", body = OrderStreamEvent,
            description = "`event: order`, `data:` the order detail document, at once and after every change"
        ),
        (
            status = 404, description = "Unknown order (or another customer's)", body = ProblemSchema,
            content_type = "application/problem+json"
        ),
        TooManyStreams,
    )
)]
pub async fn order(
    caller: Caller,
    Extension(Client(client)): Extension<Client>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    let order_id = Uuid::try_parse(&id).map_err(|_| not_found(AggregateType::Order, &id))?;
    let slot = state.streams.open(client)?;
    // Another customer's order is as unknown as one that does not exist.
    let (customer, first) = visible_order(&state, caller, order_id)
        .await?
        .ok_or_else(|| not_found(AggregateType::Order, &id))?;
    let read = move |state: AppState| async move {
        let view = visible_order(&state, caller, order_id).await?;
        Ok(view.map(|(_, body)| body))
    };
    let stream = live(state, "order", customer, first, slot, read);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The order's owner and detail document, if `caller` may see it.
async fn visible_order(
    state: &AppState,
    caller: Caller,
    order_id: Uuid,
) -> Result<Option<(Uuid, String)>, sqlx::Error> {
    let view = order_detail::find(&state.reads, order_id).await?;
    Ok(view.filter(|(customer, _)| caller.acts_for(*customer)))
}

/// The customer's newest orders, now and after every change to any of their orders.
#[utoipa::path(
    get,
    path = "/customers/{id}/orders/stream",
    tag = "streams",
    summary = "Live list of a customer's newest orders (Server-Sent Events)",
    params(
        CustomerPath,
        StreamTicketParam,
    ),
    responses(
        (
            status = 200, content_type = "text/event-stream", body = OrdersStreamEvent,
            description = "`event: orders`, `data:` a page of their 20 newest orders, at once and after every change"
        ),
        (
            status = 404, description = "Unknown customer (or another one than the caller)", body = ProblemSchema,
            content_type = "application/problem+json"
        ),
        TooManyStreams,
    )
)]
pub async fn customer_orders(
    caller: Caller,
    Extension(Client(client)): Extension<Client>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    let customer_id = super::customers::own_customer(caller, &id)?;
    let slot = state.streams.open(client)?;
    customer_profile::find(&state.reads, customer_id)
        .await?
        .ok_or_else(|| not_found(AggregateType::Customer, &id))?;
    let read = move |state: AppState| async move {
        let page = CustomerOrders {
            customer_id,
            status: None,
            placed_after: None,
            placed_before: None,
            after: None,
            limit: STREAM_PAGE,
        };
        let pages = order_lists::customer_orders(&state.reads, &[page]).await?;
        Ok(pages.into_iter().next().map(JsonPage::into_body))
    };
    let first = read(state.clone()).await?.unwrap_or_default();
    let stream = live(state, "orders", customer_id, first, slot, read);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The streams each client has open on this replica, at most `per_client` at once.
#[derive(Debug, Clone)]
pub struct OpenStreams {
    per_client: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open stream of a client; dropping it (the stream ended) frees the place.
#[derive(Debug)]
pub struct Slot {
    streams: OpenStreams,
    client: String,
}

impl OpenStreams {
    /// At most `per_client` streams per client (`STREAMS_PER_CLIENT`).
    pub fn new(per_client: usize) -> OpenStreams {
        OpenStreams {
            per_client,
            open: Arc::default(),
        }
    }

    /// A place for one more of `client`'s streams, or 429 when it has all its places.
    fn open(&self, client: String) -> Result<Slot, Problem> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(client.clone()).or_default();
        if *count >= self.per_client {
            return Err(Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-streams",
                "Too many open streams",
            )
            .with_detail(format!(
                "This client has {count} streams open here, the most allowed; close one first."
            ))
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("5")));
        }
        *count += 1;
        metrics::gauge!("http_streams_open").increment(1.0);
        Ok(Slot {
            streams: self.clone(),
            client,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
        metrics::gauge!("http_streams_open").decrement(1.0);
    }
}

struct Watch<F> {
    state: AppState,
    changes: tokio::sync::broadcast::Receiver<changes::Change>,
    customer: Uuid,
    last: String,
    first: bool,
    read: F,
    event: &'static str,
    _slot: Slot,
}

/// Sends `first` as event `event` at once, then `read`'s view after each change concerning
/// `customer`, skipping unchanged views. Holds `slot` for as long as the stream is open.
fn live<F, Fut>(
    state: AppState,
    event: &'static str,
    customer: Uuid,
    first: String,
    slot: Slot,
    read: F,
) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: Fn(AppState) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Option<String>, sqlx::Error>> + Send,
{
    let changes = state.changes.subscribe();
    let watch = Watch {
        state,
        changes,
        customer,
        last: first,
        first: true,
        read,
        event,
        _slot: slot,
    };
    futures_util::stream::unfold(watch, |mut watch| async move {
        if watch.first {
            watch.first = false;
            let event = Event::default().event(watch.event).data(&watch.last);
            return Some((Ok(event), watch));
        }
        loop {
            let change = tokio::select! {
                () = watch.state.shutdown.cancelled() => return None,
                change = changes::next(&mut watch.changes) => change?,
            };
            if !change.concerns(watch.customer) {
                continue;
            }
            match (watch.read)(watch.state.clone()).await {
                Ok(Some(body)) if watch.last != body => {
                    let event = Event::default().event(watch.event).data(&body);
                    watch.last = body;
                    return Some((Ok(event), watch));
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "live view could not be read; waiting for the next change")
                }
            }
        }
    })
}

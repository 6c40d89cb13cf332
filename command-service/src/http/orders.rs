//! Order commands: request bodies, their parsing into domain commands, and the handlers.

use axum::extract::{Path, State};
use axum::response::Response;
use platform::problem::Problem;
use serde::Deserialize;
use shared_events::AggregateType;

use super::fields::Fields;
use super::request::{Answer, CommandInput, OrderAccepted, run};
use super::{AppState, invalid, path_id};
use crate::commands::Command;
use crate::domain::order::{Lines, LinesError, NewLine, PlaceOrder, Shipment};
use crate::domain::values::{
    Currency, CustomerId, Invalid, OrderId, ProductName, Quantity, ShippingAddress, Sku, Text,
    UnitPrice,
};

/// Currency of orders placed without one.
const DEFAULT_CURRENCY: &str = "EUR";
const CHANGED: Answer = Answer::Changed {
    id_field: "order_id",
};

/// Body of `POST /orders`. Fields are read loosely (strings, wide integers) so that every
/// mistake is reported by field with a readable message instead of a serde error.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PlaceOrderRequest {
    /// A registered customer.
    #[schema(format = Uuid)]
    customer_id: String,
    /// ISO 4217 code; default `EUR`.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z]{3}$", example = "EUR")]
    currency: Option<String>,
    /// At most 100 lines, each SKU once.
    #[serde(default)]
    #[schema(max_items = 100)]
    items: Vec<ItemRequest>,
    #[serde(default)]
    shipping_address: Option<AddressRequest>,
}

/// One line: in `POST /orders` items, and the body of `POST /orders/{id}/items`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ItemRequest {
    /// 1–64 of `A–Z a–z 0–9 . _ -`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$", example = "A-1")]
    sku: String,
    /// 1–200 characters.
    #[schema(min_length = 1, max_length = 200, example = "Widget")]
    name: String,
    /// 1–10 000.
    #[schema(minimum = 1, maximum = 10000)]
    quantity: i64,
    /// Price of one unit in minor units, 0–10¹⁰.
    #[schema(minimum = 0, maximum = 10000000000_i64)]
    unit_price_cents: i64,
}

/// A shipping address in a request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AddressRequest {
    /// Recipient, 1–200 characters.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// Street lines, 1–500 characters.
    #[schema(min_length = 1, max_length = 500)]
    street: String,
    /// 1–100 characters.
    #[schema(min_length = 1, max_length = 100)]
    city: String,
    /// 1–20 characters.
    #[schema(min_length = 1, max_length = 20)]
    postal_code: String,
    /// ISO 3166-1 alpha-2.
    #[schema(pattern = "^[A-Za-z]{2}$", example = "DE")]
    country: String,
}

/// Body of `POST /orders/{id}/ship`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ShipRequest {
    /// 1–100 characters.
    #[schema(min_length = 1, max_length = 100)]
    carrier: String,
    /// 1–100 characters.
    #[schema(min_length = 1, max_length = 100)]
    tracking_number: String,
}

/// Body of `POST /orders/{id}/cancel`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CancelRequest {
    /// 1–500 characters.
    #[schema(min_length = 1, max_length = 500)]
    reason: String,
}

impl TryFrom<PlaceOrderRequest> for PlaceOrder {
    type Error = Vec<platform::problem::FieldError>;

    fn try_from(request: PlaceOrderRequest) -> Result<Self, Self::Error> {
        let mut fields = Fields::default();
        let customer_id = fields.check(
            || "customer_id".into(),
            CustomerId::parse(&request.customer_id),
        );
        let currency = fields.check(
            || "currency".into(),
            Currency::parse(request.currency.as_deref().unwrap_or(DEFAULT_CURRENCY)),
        );
        let lines: Vec<Option<NewLine>> = request
            .items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_line(&mut fields, &format!("items[{i}]."), item))
            .collect();
        let lines = lines
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .and_then(|lines| {
                Lines::new(lines)
                    .map_err(|error| match error {
                        LinesError::TooMany(Invalid(m)) => fields
                            .0
                            .push(platform::problem::FieldError::new("items", m)),
                        LinesError::DuplicateSku(i, Invalid(m)) => {
                            fields.0.push(platform::problem::FieldError::new(
                                format!("items[{i}].sku"),
                                m,
                            ));
                        }
                    })
                    .ok()
            });
        let shipping_address = match &request.shipping_address {
            None => Some(None),
            Some(address) => parse_address(&mut fields, address).map(Some),
        };
        let command = (|| {
            Some(PlaceOrder {
                customer_id: customer_id?,
                currency: currency?,
                lines: lines?,
                shipping_address: shipping_address?,
            })
        })();
        fields.finish(command)
    }
}

fn parse_line(fields: &mut Fields, prefix: &str, item: &ItemRequest) -> Option<NewLine> {
    let sku = fields.check(|| format!("{prefix}sku"), Sku::parse(&item.sku));
    let name = fields.check(|| format!("{prefix}name"), ProductName::parse(&item.name));
    let quantity = fields.check(
        || format!("{prefix}quantity"),
        Quantity::parse(item.quantity),
    );
    let unit_price = fields.check(
        || format!("{prefix}unit_price_cents"),
        UnitPrice::parse(item.unit_price_cents),
    );
    Some(NewLine {
        sku: sku?,
        name: name?,
        quantity: quantity?,
        unit_price: unit_price?,
    })
}

fn parse_address(fields: &mut Fields, a: &AddressRequest) -> Option<ShippingAddress> {
    let path = |f: &str| format!("shipping_address.{f}");
    let name = fields.check(|| path("name"), ShippingAddress::parse_name(&a.name));
    let street = fields.check(|| path("street"), ShippingAddress::parse_street(&a.street));
    let city = fields.check(|| path("city"), ShippingAddress::parse_city(&a.city));
    let postal_code = fields.check(
        || path("postal_code"),
        ShippingAddress::parse_postal_code(&a.postal_code),
    );
    let country = fields.check(
        || path("country"),
        ShippingAddress::parse_country(&a.country),
    );
    Some(ShippingAddress {
        name: name?,
        street: street?,
        city: city?,
        postal_code: postal_code?,
        country: country?,
    })
}

/// `POST /orders`: 201 with `Location`, `ETag` and `X-Consistency-Token`.
#[utoipa::path(post, path = "/orders", tag = "orders", summary = "Place an order", request_body(content = PlaceOrderRequest, content_type = "application/json"), params(("Idempotency-Key" = Option<String>, Header, description = "Retrying with the same key and request returns the first response."), ("If-Match" = Option<String>, Header, description = "The ETag (version) the aggregate must be at."), ("traceparent" = Option<String>, Header, description = "W3C trace context; its trace id becomes the events' correlation id."), ("X-Request-Id" = Option<String>, Header, description = "Echoed; becomes the events' causation id.")), responses((status = 201, description = "Placed", body = OrderAccepted, headers(("Location" = String, description = "/orders/{order_id}"), ("ETag" = String, description = "\"1\""), ("X-Consistency-Token" = String, description = "Send it to the query service to read this write."))), (status = 409, description = "The same Idempotency-Key is still running", body = platform::openapi::ProblemSchema, content_type = "application/problem+json")))]
pub async fn place(
    State(state): State<AppState>,
    input: CommandInput,
) -> Result<Response, Problem> {
    let command = PlaceOrder::try_from(input.json::<PlaceOrderRequest>()?).map_err(invalid)?;
    let answer = Answer::Created {
        id_field: "order_id",
        collection: "/orders",
    };
    Ok(run(&state, input, Command::PlaceOrder(command), answer).await)
}

/// `POST /orders/{id}/items`: adds a line, or raises the quantity of the line with that SKU.
#[utoipa::path(post, path = "/orders/{id}/items", tag = "orders", summary = "Add a line, or more units of a SKU", request_body(content = ItemRequest, content_type = "application/json"), params(("Idempotency-Key" = Option<String>, Header, description = "Retrying with the same key and request returns the first response."), ("If-Match" = Option<String>, Header, description = "The ETag (version) the aggregate must be at."), ("traceparent" = Option<String>, Header, description = "W3C trace context; its trace id becomes the events' correlation id."), ("X-Request-Id" = Option<String>, Header, description = "Echoed; becomes the events' causation id."), ("id" = String, Path, description = "Order id (UUID)")), responses((status = 200, description = "Accepted", body = OrderAccepted, headers(("ETag" = String, description = "\"<version>\""), ("X-Consistency-Token" = String, description = "Send it to the query service to read this write."))), (status = 404, description = "No such order", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 409, description = "A rule forbids it (`rule`, `current_status`), or the same Idempotency-Key is still running", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 412, description = "If-Match names another version (`current_version`)", body = platform::openapi::ProblemSchema, content_type = "application/problem+json")))]
pub async fn add_item(
    State(state): State<AppState>,
    Path(id): Path<String>,
    input: CommandInput,
) -> Result<Response, Problem> {
    let id = OrderId(path_id(&id, AggregateType::Order)?);
    let item: ItemRequest = input.json()?;
    let mut fields = Fields::default();
    let line = parse_line(&mut fields, "", &item);
    let line = fields.finish(line).map_err(invalid)?;
    Ok(run(&state, input, Command::AddOrderItem(id, line), CHANGED).await)
}

/// `DELETE /orders/{id}/items/{sku}`: removes the line with that SKU.
#[utoipa::path(delete, path = "/orders/{id}/items/{sku}", tag = "orders", summary = "Remove a line", params(("Idempotency-Key" = Option<String>, Header, description = "Retrying with the same key and request returns the first response."), ("If-Match" = Option<String>, Header, description = "The ETag (version) the aggregate must be at."), ("traceparent" = Option<String>, Header, description = "W3C trace context; its trace id becomes the events' correlation id."), ("X-Request-Id" = Option<String>, Header, description = "Echoed; becomes the events' causation id."), ("id" = String, Path, description = "Order id (UUID)"), ("sku" = String, Path, description = "The line's SKU")), responses((status = 200, description = "Accepted", body = OrderAccepted, headers(("ETag" = String, description = "\"<version>\""), ("X-Consistency-Token" = String, description = "Send it to the query service to read this write."))), (status = 404, description = "No such order", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 409, description = "A rule forbids it (`rule`, `current_status`), or the same Idempotency-Key is still running", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 412, description = "If-Match names another version (`current_version`)", body = platform::openapi::ProblemSchema, content_type = "application/problem+json")))]
pub async fn remove_item(
    State(state): State<AppState>,
    Path((id, sku)): Path<(String, String)>,
    input: CommandInput,
) -> Result<Response, Problem> {
    let id = OrderId(path_id(&id, AggregateType::Order)?);
    let mut fields = Fields::default();
    let sku = fields.check(|| "sku".into(), Sku::parse(&sku));
    let sku = fields.finish(sku).map_err(invalid)?;
    Ok(run(&state, input, Command::RemoveOrderItem(id, sku), CHANGED).await)
}

/// `POST /orders/{id}/confirm`.
#[utoipa::path(post, path = "/orders/{id}/confirm", tag = "orders", summary = "Confirm a pending order", params(("Idempotency-Key" = Option<String>, Header, description = "Retrying with the same key and request returns the first response."), ("If-Match" = Option<String>, Header, description = "The ETag (version) the aggregate must be at."), ("traceparent" = Option<String>, Header, description = "W3C trace context; its trace id becomes the events' correlation id."), ("X-Request-Id" = Option<String>, Header, description = "Echoed; becomes the events' causation id."), ("id" = String, Path, description = "Order id (UUID)")), responses((status = 200, description = "Accepted", body = OrderAccepted, headers(("ETag" = String, description = "\"<version>\""), ("X-Consistency-Token" = String, description = "Send it to the query service to read this write."))), (status = 404, description = "No such order", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 409, description = "A rule forbids it (`rule`, `current_status`), or the same Idempotency-Key is still running", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 412, description = "If-Match names another version (`current_version`)", body = platform::openapi::ProblemSchema, content_type = "application/problem+json")))]
pub async fn confirm(
    State(state): State<AppState>,
    Path(id): Path<String>,
    input: CommandInput,
) -> Result<Response, Problem> {
    let id = OrderId(path_id(&id, AggregateType::Order)?);
    Ok(run(&state, input, Command::ConfirmOrder(id), CHANGED).await)
}

/// `POST /orders/{id}/ship` with `{carrier, tracking_number}`.
#[utoipa::path(post, path = "/orders/{id}/ship", tag = "orders", summary = "Ship a confirmed order", request_body(content = ShipRequest, content_type = "application/json"), params(("Idempotency-Key" = Option<String>, Header, description = "Retrying with the same key and request returns the first response."), ("If-Match" = Option<String>, Header, description = "The ETag (version) the aggregate must be at."), ("traceparent" = Option<String>, Header, description = "W3C trace context; its trace id becomes the events' correlation id."), ("X-Request-Id" = Option<String>, Header, description = "Echoed; becomes the events' causation id."), ("id" = String, Path, description = "Order id (UUID)")), responses((status = 200, description = "Accepted", body = OrderAccepted, headers(("ETag" = String, description = "\"<version>\""), ("X-Consistency-Token" = String, description = "Send it to the query service to read this write."))), (status = 404, description = "No such order", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 409, description = "A rule forbids it (`rule`, `current_status`), or the same Idempotency-Key is still running", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 412, description = "If-Match names another version (`current_version`)", body = platform::openapi::ProblemSchema, content_type = "application/problem+json")))]
pub async fn ship(
    State(state): State<AppState>,
    Path(id): Path<String>,
    input: CommandInput,
) -> Result<Response, Problem> {
    let id = OrderId(path_id(&id, AggregateType::Order)?);
    let request: ShipRequest = input.json()?;
    let mut fields = Fields::default();
    let carrier = fields.check(|| "carrier".into(), Text::parse(&request.carrier, 100));
    let tracking_number = fields.check(
        || "tracking_number".into(),
        Text::parse(&request.tracking_number, 100),
    );
    let shipment = carrier
        .zip(tracking_number)
        .map(|(carrier, tracking_number)| Shipment {
            carrier,
            tracking_number,
        });
    let shipment = fields.finish(shipment).map_err(invalid)?;
    Ok(run(&state, input, Command::ShipOrder(id, shipment), CHANGED).await)
}

/// `POST /orders/{id}/deliver`.
#[utoipa::path(post, path = "/orders/{id}/deliver", tag = "orders", summary = "Mark a shipped order delivered", params(("Idempotency-Key" = Option<String>, Header, description = "Retrying with the same key and request returns the first response."), ("If-Match" = Option<String>, Header, description = "The ETag (version) the aggregate must be at."), ("traceparent" = Option<String>, Header, description = "W3C trace context; its trace id becomes the events' correlation id."), ("X-Request-Id" = Option<String>, Header, description = "Echoed; becomes the events' causation id."), ("id" = String, Path, description = "Order id (UUID)")), responses((status = 200, description = "Accepted", body = OrderAccepted, headers(("ETag" = String, description = "\"<version>\""), ("X-Consistency-Token" = String, description = "Send it to the query service to read this write."))), (status = 404, description = "No such order", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 409, description = "A rule forbids it (`rule`, `current_status`), or the same Idempotency-Key is still running", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 412, description = "If-Match names another version (`current_version`)", body = platform::openapi::ProblemSchema, content_type = "application/problem+json")))]
pub async fn deliver(
    State(state): State<AppState>,
    Path(id): Path<String>,
    input: CommandInput,
) -> Result<Response, Problem> {
    let id = OrderId(path_id(&id, AggregateType::Order)?);
    Ok(run(&state, input, Command::DeliverOrder(id), CHANGED).await)
}

/// `POST /orders/{id}/cancel` with `{reason}`.
#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "orders", summary = "Cancel a pending or confirmed order", request_body(content = CancelRequest, content_type = "application/json"), params(("Idempotency-Key" = Option<String>, Header, description = "Retrying with the same key and request returns the first response."), ("If-Match" = Option<String>, Header, description = "The ETag (version) the aggregate must be at."), ("traceparent" = Option<String>, Header, description = "W3C trace context; its trace id becomes the events' correlation id."), ("X-Request-Id" = Option<String>, Header, description = "Echoed; becomes the events' causation id."), ("id" = String, Path, description = "Order id (UUID)")), responses((status = 200, description = "Accepted", body = OrderAccepted, headers(("ETag" = String, description = "\"<version>\""), ("X-Consistency-Token" = String, description = "Send it to the query service to read this write."))), (status = 404, description = "No such order", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 409, description = "A rule forbids it (`rule`, `current_status`), or the same Idempotency-Key is still running", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 412, description = "If-Match names another version (`current_version`)", body = platform::openapi::ProblemSchema, content_type = "application/problem+json")))]
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    input: CommandInput,
) -> Result<Response, Problem> {
    let id = OrderId(path_id(&id, AggregateType::Order)?);
    let request: CancelRequest = input.json()?;
    let mut fields = Fields::default();
    let reason = fields.check(|| "reason".into(), Text::parse(&request.reason, 500));
    let reason = fields.finish(reason).map_err(invalid)?;
    Ok(run(&state, input, Command::CancelOrder(id, reason), CHANGED).await)
}

//! Order commands: request bodies, their parsing into domain commands, and the handlers.

use axum::extract::{Path, State};
use axum::response::Response;
use platform::openapi::ProblemSchema;
use platform::problem::{FieldErrors, Problem};
use serde::Deserialize;
use shared_events::AggregateType;

use super::body::Body;
use super::docs::{
    BodyRefused, CommandHeaders, HeadersRefused, OrderChanged, OrderPath, OrderRefused, SkuPath,
    fields,
};
use super::request::{Answer, CommandInput, OrderAccepted, run};
use super::{AppState, path_id};
use crate::commands::Command;
use crate::domain::order::{
    Lines, LinesError, NewLine, PlaceOrder, Shipment, parse_cancellation_reason,
};
use crate::domain::values::{
    Currency, CustomerId, Invalid, OrderId, ProductName, Quantity, ShippingAddress, Sku, Text,
    UnitPrice,
};

/// Currency of orders placed without one.
const DEFAULT_CURRENCY: &str = "EUR";
const CHANGED: Answer = Answer::Changed(AggregateType::Order);

/// Body of `POST /orders`. Fields are read loosely (strings, wide integers) so that every
/// mistake is reported by field with a readable message instead of a serde error.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    /// A registered customer.
    #[schema(format = Uuid)]
    customer_id: String,
    /// ISO 4217 code in active use (case-insensitive); default `EUR`.
    #[serde(default)]
    #[schema(schema_with = fields::currency)]
    currency: Option<String>,
    /// At most 100 lines, each SKU once.
    #[serde(default)]
    #[schema(schema_with = fields::lines)]
    items: Vec<ItemRequest>,
    #[serde(default)]
    shipping_address: Option<AddressRequest>,
}

/// One line: in `POST /orders` items, and the body of `POST /orders/{id}/items`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemRequest {
    /// 1–64 of `A–Z a–z 0–9 . _ -`.
    #[schema(schema_with = fields::sku)]
    sku: String,
    /// 1–200 characters, not blank, no control characters (surrounding space is trimmed).
    #[schema(schema_with = fields::product_name)]
    name: String,
    /// 1–10 000.
    #[serde(deserialize_with = "integer")]
    #[schema(schema_with = fields::quantity)]
    quantity: i64,
    /// Price of one unit in minor units, 0–10¹⁰.
    #[serde(deserialize_with = "integer")]
    #[schema(schema_with = fields::unit_price)]
    unit_price_cents: i64,
}

/// An integer field, also written as an integral number with a fraction or an exponent (`2.0`,
/// `1e3`): JSON has one number type, and JSON Schema's `integer` includes those.
fn integer<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    struct Integer;
    impl serde::de::Visitor<'_> for Integer {
        type Value = i64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer")
        }

        fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<i64, E> {
            Ok(value)
        }

        fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<i64, E> {
            i64::try_from(value)
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(value), &self))
        }

        fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<i64, E> {
            // i64::MAX as f64 rounds up to 2⁶³, the first value that does not fit.
            if value.fract() == 0.0 && value >= i64::MIN as f64 && value < i64::MAX as f64 {
                Ok(value as i64)
            } else {
                Err(E::invalid_value(serde::de::Unexpected::Float(value), &self))
            }
        }
    }
    deserializer.deserialize_any(Integer)
}

/// A shipping address in a request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressRequest {
    /// Recipient, 1–200 characters, not blank, no control characters (surrounding space is
    /// trimmed).
    #[schema(schema_with = fields::recipient)]
    name: String,
    /// Street lines separated by newlines, 1–500 characters; each line non-blank, no other control
    /// characters.
    #[schema(schema_with = fields::street)]
    street: String,
    /// 1–100 characters, not blank, no control characters (surrounding space is trimmed).
    #[schema(schema_with = fields::city)]
    city: String,
    /// 1–20 characters, not blank, no control characters (surrounding space is trimmed).
    #[schema(schema_with = fields::postal_code)]
    postal_code: String,
    /// ISO 3166-1 alpha-2.
    #[schema(pattern = "^[A-Za-z]{2}$", example = "DE")]
    country: String,
}

/// Body of `POST /orders/{id}/ship`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipRequest {
    /// 1–100 characters, not blank, no control characters (surrounding space is trimmed).
    #[schema(schema_with = fields::shipment_text)]
    carrier: String,
    /// 1–100 characters, not blank, no control characters (surrounding space is trimmed).
    #[schema(schema_with = fields::shipment_text)]
    tracking_number: String,
}

/// Body of `POST /orders/{id}/cancel`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// 1–500 characters, not blank, no control characters (surrounding space is trimmed).
    #[schema(schema_with = fields::reason)]
    reason: String,
}

impl Body for PlaceOrderRequest {
    type Value = PlaceOrder;

    fn parse(self, fields: &mut FieldErrors) -> Option<PlaceOrder> {
        let request = self;
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
            .map(|(i, item)| parse_line(fields, &format!("items[{i}]."), item))
            .collect();
        let lines = lines
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .and_then(|lines| {
                Lines::new(lines)
                    .map_err(|error| match error {
                        LinesError::TooMany(Invalid(m)) => fields.refuse("items", m),
                        LinesError::DuplicateSku(i, Invalid(m)) => {
                            fields.refuse(format!("items[{i}].sku"), m)
                        }
                    })
                    .ok()
            });
        let shipping_address = match &request.shipping_address {
            None => Some(None),
            Some(address) => parse_address(fields, address).map(Some),
        };
        Some(PlaceOrder {
            customer_id: customer_id?,
            currency: currency?,
            lines: lines?,
            shipping_address: shipping_address?,
        })
    }
}

impl Body for ItemRequest {
    type Value = NewLine;

    fn parse(self, fields: &mut FieldErrors) -> Option<NewLine> {
        parse_line(fields, "", &self)
    }
}

impl Body for ShipRequest {
    type Value = Shipment;

    fn parse(self, fields: &mut FieldErrors) -> Option<Shipment> {
        let carrier = fields.check(|| "carrier".into(), Shipment::parse_carrier(&self.carrier));
        let tracking_number = fields.check(
            || "tracking_number".into(),
            Shipment::parse_tracking_number(&self.tracking_number),
        );
        Some(Shipment {
            carrier: carrier?,
            tracking_number: tracking_number?,
        })
    }
}

impl Body for CancelRequest {
    type Value = Text;

    fn parse(self, fields: &mut FieldErrors) -> Option<Text> {
        fields.check(|| "reason".into(), parse_cancellation_reason(&self.reason))
    }
}

fn parse_line(fields: &mut FieldErrors, prefix: &str, item: &ItemRequest) -> Option<NewLine> {
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

fn parse_address(fields: &mut FieldErrors, a: &AddressRequest) -> Option<ShippingAddress> {
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
#[utoipa::path(
    post,
    path = "/orders",
    tag = "orders",
    summary = "Place an order",
    request_body(content = PlaceOrderRequest, content_type = "application/json"),
    params(CommandHeaders),
    responses(
        (
            status = 201,
            description = "Placed",
            body = OrderAccepted,
            headers(
                ("Location" = String, description = "/orders/{order_id}"),
                ("ETag" = String, description = "\"1\""),
                ("X-Consistency-Token" = String, description = "Send it to the query service to read this write.")
            )
        ),
        (
            status = 409,
            description = "The same Idempotency-Key is still running",
            body = ProblemSchema,
            content_type = "application/problem+json"
        ),
        BodyRefused,
    )
)]
pub async fn place(
    State(state): State<AppState>,
    input: CommandInput,
) -> Result<Response, Problem> {
    let command = input.parse::<PlaceOrderRequest>()?;
    let answer = Answer::Created(AggregateType::Order);
    Ok(run(&state, input, Command::PlaceOrder(command), answer).await)
}

/// `POST /orders/{id}/items`: adds a line, or raises the quantity of the line with that SKU.
#[utoipa::path(
    post,
    path = "/orders/{id}/items",
    tag = "orders",
    summary = "Add a line, or more units of a SKU",
    request_body(content = ItemRequest, content_type = "application/json"),
    params(CommandHeaders, OrderPath),
    responses(OrderChanged, OrderRefused, BodyRefused)
)]
pub async fn add_item(
    State(state): State<AppState>,
    Path(id): Path<String>,
    input: CommandInput,
) -> Result<Response, Problem> {
    let id = OrderId(path_id(&id, AggregateType::Order)?);
    let line = input.parse::<ItemRequest>()?;
    Ok(run(&state, input, Command::AddOrderItem(id, line), CHANGED).await)
}

/// `DELETE /orders/{id}/items/{sku}`: removes the line with that SKU.
#[utoipa::path(
    delete,
    path = "/orders/{id}/items/{sku}",
    tag = "orders",
    summary = "Remove a line",
    params(CommandHeaders, OrderPath, SkuPath),
    responses(OrderChanged, OrderRefused, HeadersRefused)
)]
pub async fn remove_item(
    State(state): State<AppState>,
    Path((id, sku)): Path<(String, String)>,
    input: CommandInput,
) -> Result<Response, Problem> {
    let id = OrderId(path_id(&id, AggregateType::Order)?);
    let mut fields = FieldErrors::default();
    let sku = fields.check(|| "sku".into(), Sku::parse(&sku));
    let sku = fields.finish(sku)?;
    Ok(run(&state, input, Command::RemoveOrderItem(id, sku), CHANGED).await)
}

/// `POST /orders/{id}/confirm`.
#[utoipa::path(
    post,
    path = "/orders/{id}/confirm",
    tag = "orders",
    summary = "Confirm a pending order",
    params(CommandHeaders, OrderPath),
    responses(OrderChanged, OrderRefused, HeadersRefused)
)]
pub async fn confirm(
    State(state): State<AppState>,
    Path(id): Path<String>,
    input: CommandInput,
) -> Result<Response, Problem> {
    let id = OrderId(path_id(&id, AggregateType::Order)?);
    Ok(run(&state, input, Command::ConfirmOrder(id), CHANGED).await)
}

/// `POST /orders/{id}/ship` with `{carrier, tracking_number}`.
#[utoipa::path(
    post,
    path = "/orders/{id}/ship",
    tag = "orders",
    summary = "Ship a confirmed order",
    request_body(content = ShipRequest, content_type = "application/json"),
    params(CommandHeaders, OrderPath),
    responses(OrderChanged, OrderRefused, BodyRefused)
)]
pub async fn ship(
    State(state): State<AppState>,
    Path(id): Path<String>,
    input: CommandInput,
) -> Result<Response, Problem> {
    let id = OrderId(path_id(&id, AggregateType::Order)?);
    let shipment = input.parse::<ShipRequest>()?;
    Ok(run(&state, input, Command::ShipOrder(id, shipment), CHANGED).await)
}

/// `POST /orders/{id}/deliver`.
#[utoipa::path(
    post,
    path = "/orders/{id}/deliver",
    tag = "orders",
    summary = "Mark a shipped order delivered",
    params(CommandHeaders, OrderPath),
    responses(OrderChanged, OrderRefused, HeadersRefused)
)]
pub async fn deliver(
    State(state): State<AppState>,
    Path(id): Path<String>,
    input: CommandInput,
) -> Result<Response, Problem> {
    let id = OrderId(path_id(&id, AggregateType::Order)?);
    Ok(run(&state, input, Command::DeliverOrder(id), CHANGED).await)
}

/// `POST /orders/{id}/cancel` with `{reason}`.
#[utoipa::path(
    post,
    path = "/orders/{id}/cancel",
    tag = "orders",
    summary = "Cancel a pending or confirmed order",
    request_body(content = CancelRequest, content_type = "application/json"),
    params(CommandHeaders, OrderPath),
    responses(OrderChanged, OrderRefused, BodyRefused)
)]
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    input: CommandInput,
) -> Result<Response, Problem> {
    let id = OrderId(path_id(&id, AggregateType::Order)?);
    let reason = input.parse::<CancelRequest>()?;
    Ok(run(&state, input, Command::CancelOrder(id, reason), CHANGED).await)
}

#[cfg(test)]
mod tests {
    use super::ItemRequest;

    fn quantity(json: &str) -> Result<i64, serde_json::Error> {
        let body =
            format!(r#"{{"sku": "A", "name": "A", "quantity": {json}, "unit_price_cents": 1}}"#);
        serde_json::from_str::<ItemRequest>(&body).map(|item| item.quantity)
    }

    #[test]
    fn integers_may_be_written_with_a_zero_fraction_or_an_exponent() {
        assert_eq!(quantity("2").unwrap(), 2);
        assert_eq!(quantity("2.0").unwrap(), 2);
        assert_eq!(quantity("1e3").unwrap(), 1000);
        assert_eq!(quantity("-4.0").unwrap(), -4);
        for bad in ["2.5", "1e30", "18446744073709551615", "\"2\"", "null"] {
            assert!(quantity(bad).is_err(), "{bad}");
        }
    }
}

//! Order commands: the request bodies, their parsing into domain commands, and the handlers.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::http::Json;
use platform::problem::{FieldError, Problem};
use serde::Deserialize;
use shared_events::ConsistencyToken;

use super::AppState;
use crate::commands::{Accepted, CommandContext, CommandError};
use crate::domain::order::{Lines, LinesError, NewLine, PlaceOrder};
use crate::domain::values::{
    Currency, CustomerId, Invalid, ProductName, Quantity, ShippingAddress, Sku, UnitPrice,
};

/// `X-Consistency-Token`: hand it to the query service to read your own write.
pub const CONSISTENCY_TOKEN: HeaderName = HeaderName::from_static("x-consistency-token");

/// Currency of orders placed without one.
const DEFAULT_CURRENCY: &str = "EUR";

/// Body of `POST /orders`. Fields are read loosely (strings, wide integers) so that every
/// mistake is reported by field with a readable message instead of a serde error.
#[derive(Debug, Deserialize)]
pub struct PlaceOrderRequest {
    customer_id: String,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    items: Vec<ItemRequest>,
    #[serde(default)]
    shipping_address: Option<AddressRequest>,
}

/// One line of an order request.
#[derive(Debug, Deserialize)]
pub struct ItemRequest {
    sku: String,
    name: String,
    quantity: i64,
    unit_price_cents: i64,
}

/// A shipping address in a request.
#[derive(Debug, Deserialize)]
pub struct AddressRequest {
    name: String,
    street: String,
    city: String,
    postal_code: String,
    country: String,
}

/// Collects field errors while parsing, so one response lists every invalid field.
#[derive(Default)]
struct Fields(Vec<FieldError>);

impl Fields {
    fn check<T>(
        &mut self,
        field: impl FnOnce() -> String,
        parsed: Result<T, Invalid>,
    ) -> Option<T> {
        parsed
            .map_err(|Invalid(message)| self.0.push(FieldError::new(field(), message)))
            .ok()
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, Vec<FieldError>> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(self.0),
        }
    }
}

impl TryFrom<PlaceOrderRequest> for PlaceOrder {
    type Error = Vec<FieldError>;

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
            .map(|(i, item)| parse_line(&mut fields, &format!("items[{i}]"), item))
            .collect();
        let lines = lines
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .and_then(|lines| {
                Lines::new(lines)
                    .map_err(|error| match error {
                        LinesError::TooMany(Invalid(m)) => {
                            fields.0.push(FieldError::new("items", m))
                        }
                        LinesError::DuplicateSku(i, Invalid(m)) => {
                            fields.0.push(FieldError::new(format!("items[{i}].sku"), m));
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

fn parse_line(fields: &mut Fields, path: &str, item: &ItemRequest) -> Option<NewLine> {
    let sku = fields.check(|| format!("{path}.sku"), Sku::parse(&item.sku));
    let name = fields.check(|| format!("{path}.name"), ProductName::parse(&item.name));
    let quantity = fields.check(
        || format!("{path}.quantity"),
        Quantity::parse(item.quantity),
    );
    let unit_price = fields.check(
        || format!("{path}.unit_price_cents"),
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
pub async fn place_order(
    State(state): State<AppState>,
    ctx: CommandContext,
    Json(request): Json<PlaceOrderRequest>,
) -> Result<Response, Response> {
    let command = PlaceOrder::try_from(request)
        .map_err(|errors| Problem::validation(errors).into_response())?;
    let accepted = state
        .commands
        .place_order(command, &ctx)
        .await
        .map_err(CommandError::into_response)?;
    let location = format!("/orders/{}", accepted.aggregate_id);
    Ok(accepted_response(
        StatusCode::CREATED,
        "order_id",
        accepted,
        Some(&location),
    ))
}

/// The answer to an accepted command: `{"<id_field>": id, "version": n}`, `ETag: "n"` and the
/// consistency token; `Location` for creations.
fn accepted_response(
    status: StatusCode,
    id_field: &str,
    accepted: Accepted,
    location: Option<&str>,
) -> Response {
    let body = serde_json::json!({ id_field: accepted.aggregate_id, "version": accepted.version });
    let token = ConsistencyToken {
        aggregate_id: accepted.aggregate_id,
        version: accepted.version,
    };
    let mut headers = HeaderMap::new();
    let etag = format!("\"{}\"", accepted.version);
    for (name, value) in [(header::ETAG, etag), (CONSISTENCY_TOKEN, token.to_string())] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    (status, headers, axum::Json(body)).into_response()
}

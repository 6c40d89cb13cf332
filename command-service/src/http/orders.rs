//! Order commands: request bodies, their parsing into domain commands, and the handlers.

use axum::extract::{Path, State};
use axum::response::Response;
use platform::problem::Problem;
use serde::Deserialize;
use shared_events::AggregateType;

use super::fields::Fields;
use super::request::{Answer, CommandInput, run};
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

/// One line: in `POST /orders` items, and the body of `POST /orders/{id}/items`.
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

/// Body of `POST /orders/{id}/ship`.
#[derive(Debug, Deserialize)]
pub struct ShipRequest {
    carrier: String,
    tracking_number: String,
}

/// Body of `POST /orders/{id}/cancel`.
#[derive(Debug, Deserialize)]
pub struct CancelRequest {
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
pub async fn confirm(
    State(state): State<AppState>,
    Path(id): Path<String>,
    input: CommandInput,
) -> Result<Response, Problem> {
    let id = OrderId(path_id(&id, AggregateType::Order)?);
    Ok(run(&state, input, Command::ConfirmOrder(id), CHANGED).await)
}

/// `POST /orders/{id}/ship` with `{carrier, tracking_number}`.
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
pub async fn deliver(
    State(state): State<AppState>,
    Path(id): Path<String>,
    input: CommandInput,
) -> Result<Response, Problem> {
    let id = OrderId(path_id(&id, AggregateType::Order)?);
    Ok(run(&state, input, Command::DeliverOrder(id), CHANGED).await)
}

/// `POST /orders/{id}/cancel` with `{reason}`.
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

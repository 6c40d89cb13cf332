//! Events emitted by the order aggregate.
//!
//! Each event carries everything a consumer needs to update its own view without calling back
//! into the command service: the customer (the partition key), and for every event that changes
//! money or lines the order's new totals and currency, so a sales report never needs an earlier
//! event to interpret a later one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where an order is in its lifecycle: the one vocabulary of the write model, the events, the
/// views and the query parameters. Serialized (JSON, and stored as `text`) in lower case:
/// `pending`, `confirmed`, `shipped`, `delivered`, `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(
    feature = "sqlx",
    derive(sqlx::Type),
    sqlx(type_name = "text", rename_all = "lowercase")
)]
pub enum OrderStatus {
    /// Placed; lines may still change.
    Pending,
    /// Accepted for fulfilment; lines are fixed.
    Confirmed,
    /// Handed to a carrier.
    Shipped,
    /// Received by the customer.
    Delivered,
    /// Cancelled before shipping.
    Cancelled,
}

impl OrderStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Pending,
        OrderStatus::Confirmed,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    /// The status as serialized and stored: `pending`, `confirmed`, …
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    /// Reads a status written by [`OrderStatus::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of an order: a quantity of one SKU at one unit price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderLine {
    /// Stock keeping unit, unique within the order (1–64 characters).
    pub sku: String,
    /// Product name as shown to the customer when the line was added (1–200 characters).
    pub name: String,
    /// Number of units, 1–10 000.
    pub quantity: u32,
    /// Price of one unit in minor units of the order's currency (cents), ≥ 0.
    pub unit_price_cents: i64,
}

impl OrderLine {
    /// `quantity × unit_price_cents`.
    pub fn line_total_cents(&self) -> i64 {
        i64::from(self.quantity) * self.unit_price_cents
    }
}

/// A postal address to ship an order to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShippingAddress {
    /// Recipient's name.
    pub name: String,
    /// Street and house number, possibly several lines joined by newlines.
    pub street: String,
    /// City or town.
    pub city: String,
    /// Postal code as written in the country.
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code, upper case (e.g. `"DE"`).
    pub country: String,
}

/// `OrderPlaced` v1: a customer placed a new order; it is `pending`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderPlaced {
    /// The new order's id.
    pub order_id: Uuid,
    /// The customer who placed it; also the event's partition key.
    pub customer_id: Uuid,
    /// ISO 4217 currency code of every price in the order (e.g. `"EUR"`).
    pub currency: String,
    /// The order's lines, in the order given; SKUs are unique.
    pub items: Vec<OrderLine>,
    /// Sum of the lines' quantities.
    pub item_count: u64,
    /// Sum of the lines' totals, in minor units of `currency`.
    pub total_cents: i64,
    /// Where to ship the order, if the customer gave an address when placing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<ShippingAddress>,
    /// When the order was placed (UTC).
    pub placed_at: DateTime<Utc>,
}

/// `OrderItemAdded` v1: a line was added to a pending order, or the quantity of an existing line
/// was raised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderItemAdded {
    /// The order.
    pub order_id: Uuid,
    /// Its customer.
    pub customer_id: Uuid,
    /// The line after the change (its `quantity` is the line's new total quantity).
    pub line: OrderLine,
    /// Units added by this event.
    pub quantity_added: u32,
    /// The order's item count after the change.
    pub item_count: u64,
    /// The order's total after the change, minor units.
    pub total_cents: i64,
    /// ISO 4217 code of the order.
    pub currency: String,
}

/// `OrderItemRemoved` v1: a line was removed from a pending order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderItemRemoved {
    /// The order.
    pub order_id: Uuid,
    /// Its customer.
    pub customer_id: Uuid,
    /// The removed line as it was.
    pub line: OrderLine,
    /// The order's item count after the change.
    pub item_count: u64,
    /// The order's total after the change, minor units.
    pub total_cents: i64,
    /// ISO 4217 code of the order.
    pub currency: String,
}

/// `OrderConfirmed` v1: a pending, non-empty order was confirmed; its lines are now fixed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderConfirmed {
    /// The order.
    pub order_id: Uuid,
    /// Its customer.
    pub customer_id: Uuid,
    /// Item count of the confirmed order.
    pub item_count: u64,
    /// Total of the confirmed order, minor units.
    pub total_cents: i64,
    /// ISO 4217 code of the order.
    pub currency: String,
}

/// `OrderShipped` v1: a confirmed order was handed to a carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderShipped {
    /// The order.
    pub order_id: Uuid,
    /// Its customer.
    pub customer_id: Uuid,
    /// Carrier name (1–100 characters).
    pub carrier: String,
    /// The carrier's tracking number (1–100 characters).
    pub tracking_number: String,
}

/// `OrderDelivered` v1: a shipped order reached the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderDelivered {
    /// The order.
    pub order_id: Uuid,
    /// Its customer.
    pub customer_id: Uuid,
}

/// `OrderCancelled` v1: a pending or confirmed order was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderCancelled {
    /// The order.
    pub order_id: Uuid,
    /// Its customer.
    pub customer_id: Uuid,
    /// Why, as given (1–500 characters).
    pub reason: String,
    /// The status it had before: `pending` or `confirmed`.
    // A string in the v1 schema, as published since v1; a schema that narrows it to the enum
    // would be a new schema version for every consumer to take up, for no new information.
    #[schema(value_type = String)]
    pub previous_status: OrderStatus,
    /// Item count of the cancelled order.
    pub item_count: u64,
    /// Total of the cancelled order, minor units.
    pub total_cents: i64,
    /// ISO 4217 code of the order.
    pub currency: String,
}

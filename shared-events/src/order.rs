//! Events emitted by the order aggregate.
//!
//! Each event carries everything a consumer needs to update its own view without calling back
//! into the command service (e.g. [`OrderPlaced`] carries every line and the totals).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One line of an order: a quantity of one SKU at one unit price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

//! Events for tests, written once: the query service's unit tests and the end-to-end tests
//! build their scripted event logs from these (feature `test-fixtures`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::customer::CustomerRegistered;
use crate::order::{OrderCancelled, OrderConfirmed, OrderLine, OrderPlaced, OrderStatus};
use crate::{DomainEvent, EventEnvelope};

/// A line of `quantity` × `sku` at `unit_price_cents`, named "Product {sku}".
pub fn line(sku: &str, quantity: u32, unit_price_cents: i64) -> OrderLine {
    OrderLine {
        sku: sku.into(),
        name: format!("Product {sku}"),
        quantity,
        unit_price_cents,
    }
}

/// `customer` registered as `name`, with the address `{name}@example.com`.
pub fn registered(customer: Uuid, name: &str) -> DomainEvent {
    DomainEvent::CustomerRegistered(CustomerRegistered {
        customer_id: customer,
        name: name.into(),
        email: format!("{name}@example.com"),
    })
}

/// `order` of `customer` placed at `placed_at` with `lines` in `currency`, totals summed.
pub fn placed(
    order: Uuid,
    customer: Uuid,
    currency: &str,
    lines: Vec<OrderLine>,
    placed_at: DateTime<Utc>,
) -> DomainEvent {
    DomainEvent::OrderPlaced(OrderPlaced {
        order_id: order,
        customer_id: customer,
        currency: currency.into(),
        item_count: lines.iter().map(|l| u64::from(l.quantity)).sum(),
        total_cents: lines.iter().map(OrderLine::line_total_cents).sum(),
        items: lines,
        shipping_address: None,
        placed_at,
    })
}

/// A euro `order` of `customer` confirmed with `items` items worth `total` cents.
pub fn confirmed(order: Uuid, customer: Uuid, items: u64, total: i64) -> DomainEvent {
    DomainEvent::OrderConfirmed(OrderConfirmed {
        order_id: order,
        customer_id: customer,
        item_count: items,
        total_cents: total,
        currency: "EUR".into(),
    })
}

/// A euro `order` of `customer` cancelled from `previous`, with `items` items worth `total`.
pub fn cancelled(
    order: Uuid,
    customer: Uuid,
    previous: OrderStatus,
    items: u64,
    total: i64,
) -> DomainEvent {
    DomainEvent::OrderCancelled(OrderCancelled {
        order_id: order,
        customer_id: customer,
        reason: "changed mind".into(),
        previous_status: previous,
        item_count: items,
        total_cents: total,
        currency: "EUR".into(),
    })
}

/// An event log written by hand: numbers each aggregate's versions as the command side does.
#[derive(Debug, Default)]
pub struct Script {
    versions: HashMap<Uuid, i64>,
}

impl Script {
    /// The envelope of `event` as the next version of its aggregate, at `occurred_at`.
    pub fn next(&mut self, event: DomainEvent, occurred_at: DateTime<Utc>) -> EventEnvelope {
        let version = self.versions.entry(event.aggregate_id()).or_default();
        *version += 1;
        EventEnvelope::new(&event, *version, occurred_at)
    }
}

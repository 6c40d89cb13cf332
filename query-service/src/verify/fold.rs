//! The fold: every event of the log applied, in version order, to what the views must then
//! hold. Pure: no I/O and no clock, so its rules are tested example by example without a
//! database. It reads nothing: the event log is read in [`super`], the views in [`super::compare`].

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use shared_events::order::{OrderLine, OrderPlaced, OrderStatus, ShippingAddress};
use shared_events::{AggregateType, DomainEvent, EventEnvelope};
use uuid::Uuid;

use super::{BrokenEvent, EXAMPLES};

/// What the views must hold, folded from the event log. Pure: no I/O, no clock.
#[derive(Debug, Default)]
pub(super) struct Expected {
    /// Events folded, refused included.
    pub(super) events: u64,
    /// Events from a newer producer.
    pub(super) skipped: u64,
    pub(super) broken: u64,
    pub(super) broken_examples: Vec<BrokenEvent>,
    pub(super) orders: HashMap<Uuid, ExpectedOrder>,
    /// What the customers' own events say.
    pub(super) customers: HashMap<Uuid, ExpectedCustomer>,
    /// By UTC day and currency.
    pub(super) daily_sales: BTreeMap<(NaiveDate, String), DaySales>,
    /// The highest applicable version of every aggregate.
    pub(super) versions: HashMap<Uuid, (AggregateType, i64)>,
}

/// An order as its events describe it: the fields of the order detail document. `item_count`
/// and `total_cents` are what the last event that changed the lines said; the lifecycle times
/// are when the events happened, `placed_at` is `OrderPlaced`'s own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ExpectedOrder {
    pub(super) customer_id: Uuid,
    pub(super) status: OrderStatus,
    currency: String,
    /// In the order they were first added.
    lines: Vec<OrderLine>,
    item_count: u64,
    total_cents: i64,
    shipping_address: Option<ShippingAddress>,
    carrier: Option<String>,
    tracking_number: Option<String>,
    cancellation_reason: Option<String>,
    pub(super) version: i64,
    placed_at: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
    shipped_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

/// A customer as their own events describe them; `version` is that of the last of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ExpectedCustomer {
    name: Option<String>,
    email: Option<String>,
    version: i64,
}

/// A customer profile: the customer's facts (version 0 when only their orders are known) and
/// figures over their orders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ExpectedProfile {
    pub(super) name: Option<String>,
    email: Option<String>,
    pub(super) version: i64,
    order_count: i64,
    /// Pending, confirmed or shipped.
    open_orders: i64,
    /// Totals of confirmed, shipped and delivered orders, by currency.
    lifetime_value: BTreeMap<String, i64>,
    /// Newest `placed_at`, to the microsecond as the database keeps it.
    last_order_at: Option<DateTime<Utc>>,
}

/// One day and currency of the sales report (see [`crate::projections::daily_sales`] for what
/// each figure means).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub(super) struct DaySales {
    orders_placed: i64,
    orders_confirmed: i64,
    orders_cancelled: i64,
    gross_cents: i64,
    cancelled_cents: i64,
    items_sold: i64,
}

impl DaySales {
    fn add(&mut self, other: DaySales) {
        self.orders_placed += other.orders_placed;
        self.orders_confirmed += other.orders_confirmed;
        self.orders_cancelled += other.orders_cancelled;
        self.gross_cents += other.gross_cents;
        self.cancelled_cents += other.cancelled_cents;
        self.items_sold += other.items_sold;
    }

    pub(super) fn fields(&self) -> [(&'static str, Value); 6] {
        [
            ("orders_placed", json!(self.orders_placed)),
            ("orders_confirmed", json!(self.orders_confirmed)),
            ("orders_cancelled", json!(self.orders_cancelled)),
            ("gross_cents", json!(self.gross_cents)),
            ("cancelled_cents", json!(self.cancelled_cents)),
            ("items_sold", json!(self.items_sold)),
        ]
    }
}

impl Expected {
    /// Folds the next event of the log. Like the projector, it applies only the next version of
    /// an aggregate, skips the effects of events from a newer producer (counting their version)
    /// and refuses what cannot be decoded.
    pub(super) fn apply(&mut self, envelope: &EventEnvelope) {
        self.events += 1;
        let (id, version) = (envelope.aggregate_id, envelope.aggregate_version);
        let current = self.versions.get(&id).map_or(0, |(_, v)| *v);
        if version != current + 1 {
            let reason = format!("version {version} does not follow version {current}");
            return self.refuse(envelope.event_id, id, version, reason);
        }
        let event = match DomainEvent::from_envelope(envelope) {
            Ok(event) => Some(event),
            Err(error) if error.is_from_newer_producer() => None,
            Err(error) => return self.refuse(envelope.event_id, id, version, error.to_string()),
        };
        self.versions.insert(id, (envelope.aggregate_type, version));
        let Some(event) = event else {
            self.skipped += 1;
            return;
        };
        let at = envelope.occurred_at;
        self.add_sales(at, &event);
        match &event {
            DomainEvent::CustomerRegistered(e) => {
                let customer = self.customers.entry(e.customer_id).or_default();
                (customer.name, customer.email) = (Some(e.name.clone()), Some(e.email.clone()));
                customer.version = version;
            }
            DomainEvent::CustomerRenamed(e) => {
                let customer = self.customers.entry(e.customer_id).or_default();
                (customer.name, customer.version) = (Some(e.name.clone()), version);
            }
            DomainEvent::CustomerEmailChanged(e) => {
                let customer = self.customers.entry(e.customer_id).or_default();
                (customer.email, customer.version) = (Some(e.email.clone()), version);
            }
            DomainEvent::OrderPlaced(e) => {
                self.orders
                    .insert(e.order_id, ExpectedOrder::placed(e, version, at));
            }
            other => {
                if let Some(order) = self.orders.get_mut(&other.aggregate_id()) {
                    order.apply(other, version, at);
                }
            }
        }
    }

    pub(super) fn refuse(
        &mut self,
        event_id: Uuid,
        aggregate_id: Uuid,
        aggregate_version: i64,
        reason: String,
    ) {
        self.broken += 1;
        if self.broken_examples.len() < EXAMPLES {
            self.broken_examples.push(BrokenEvent {
                event_id,
                aggregate_id,
                aggregate_version,
                reason,
            });
        }
    }

    /// A sale happens at confirmation (on the UTC day the event occurred); cancelling a
    /// confirmed order refunds it that day; every placement and cancellation is counted.
    fn add_sales(&mut self, at: DateTime<Utc>, event: &DomainEvent) {
        let items = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let (currency, sales) = match event {
            DomainEvent::OrderPlaced(e) => (
                &e.currency,
                DaySales {
                    orders_placed: 1,
                    ..DaySales::default()
                },
            ),
            DomainEvent::OrderConfirmed(e) => (
                &e.currency,
                DaySales {
                    orders_confirmed: 1,
                    gross_cents: e.total_cents,
                    items_sold: items(e.item_count),
                    ..DaySales::default()
                },
            ),
            DomainEvent::OrderCancelled(e) => {
                let refund = e.previous_status == OrderStatus::Confirmed;
                (
                    &e.currency,
                    DaySales {
                        orders_cancelled: 1,
                        cancelled_cents: if refund { e.total_cents } else { 0 },
                        items_sold: if refund { -items(e.item_count) } else { 0 },
                        ..DaySales::default()
                    },
                )
            }
            _ => return,
        };
        self.daily_sales
            .entry((at.date_naive(), currency.clone()))
            .or_default()
            .add(sales);
    }

    /// Every customer profile: each customer with events of their own or with orders.
    pub(super) fn profiles(&self) -> HashMap<Uuid, ExpectedProfile> {
        let mut profiles: HashMap<Uuid, ExpectedProfile> = self
            .customers
            .iter()
            .map(|(id, c)| {
                let profile = ExpectedProfile {
                    name: c.name.clone(),
                    email: c.email.clone(),
                    version: c.version,
                    ..ExpectedProfile::default()
                };
                (*id, profile)
            })
            .collect();
        for order in self.orders.values() {
            let profile = profiles.entry(order.customer_id).or_default();
            profile.order_count += 1;
            if matches!(
                order.status,
                OrderStatus::Pending | OrderStatus::Confirmed | OrderStatus::Shipped
            ) {
                profile.open_orders += 1;
            }
            if matches!(
                order.status,
                OrderStatus::Confirmed | OrderStatus::Shipped | OrderStatus::Delivered
            ) {
                *profile
                    .lifetime_value
                    .entry(order.currency.clone())
                    .or_default() += order.total_cents;
            }
            profile.last_order_at = profile.last_order_at.max(Some(micros(order.placed_at)));
        }
        profiles
    }
}

/// The instant as a `timestamptz` column keeps it.
fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

impl ExpectedProfile {
    pub(super) fn fields(&self) -> [(&'static str, Value); 7] {
        let value: Vec<Value> = self
            .lifetime_value
            .iter()
            .map(|(currency, amount)| json!({ "currency": currency, "amount_cents": amount }))
            .collect();
        [
            ("name", json!(self.name)),
            ("email", json!(self.email)),
            ("version", json!(self.version)),
            ("order_count", json!(self.order_count)),
            ("open_orders", json!(self.open_orders)),
            ("lifetime_value", Value::Array(value)),
            ("last_order_at", json!(self.last_order_at)),
        ]
    }
}

impl ExpectedOrder {
    fn placed(e: &OrderPlaced, version: i64, at: DateTime<Utc>) -> ExpectedOrder {
        ExpectedOrder {
            customer_id: e.customer_id,
            status: OrderStatus::Pending,
            currency: e.currency.clone(),
            lines: e.items.clone(),
            item_count: e.item_count,
            total_cents: e.total_cents,
            shipping_address: e.shipping_address.clone(),
            carrier: None,
            tracking_number: None,
            cancellation_reason: None,
            version,
            placed_at: e.placed_at,
            confirmed_at: None,
            shipped_at: None,
            delivered_at: None,
            cancelled_at: None,
            updated_at: at,
        }
    }

    fn apply(&mut self, event: &DomainEvent, version: i64, at: DateTime<Utc>) {
        match event {
            DomainEvent::OrderItemAdded(e) => {
                match self.lines.iter().position(|l| l.sku == e.line.sku) {
                    Some(i) => self.lines[i] = e.line.clone(),
                    None => self.lines.push(e.line.clone()),
                }
                (self.item_count, self.total_cents) = (e.item_count, e.total_cents);
            }
            DomainEvent::OrderItemRemoved(e) => {
                self.lines.retain(|l| l.sku != e.line.sku);
                (self.item_count, self.total_cents) = (e.item_count, e.total_cents);
            }
            DomainEvent::OrderConfirmed(_) => {
                (self.status, self.confirmed_at) = (OrderStatus::Confirmed, Some(at))
            }
            DomainEvent::OrderShipped(e) => {
                (self.status, self.shipped_at) = (OrderStatus::Shipped, Some(at));
                self.carrier = Some(e.carrier.clone());
                self.tracking_number = Some(e.tracking_number.clone());
            }
            DomainEvent::OrderDelivered(_) => {
                (self.status, self.delivered_at) = (OrderStatus::Delivered, Some(at))
            }
            DomainEvent::OrderCancelled(e) => {
                (self.status, self.cancelled_at) = (OrderStatus::Cancelled, Some(at));
                self.cancellation_reason = Some(e.reason.clone());
            }
            _ => return,
        }
        (self.version, self.updated_at) = (version, at);
    }

    /// The row's columns, in the order of [`OrderRow::columns`](super::compare::OrderRow::columns).
    pub(super) fn columns(
        &self,
        customer: Option<&ExpectedCustomer>,
    ) -> [(&'static str, Value); 12] {
        [
            ("customer_id", json!(self.customer_id)),
            (
                "customer_name",
                json!(customer.and_then(|c| c.name.as_ref())),
            ),
            (
                "customer_email",
                json!(customer.and_then(|c| c.email.as_ref())),
            ),
            ("customer_version", json!(customer.map_or(0, |c| c.version))),
            ("status", json!(self.status)),
            ("currency", json!(self.currency)),
            ("item_count", json!(self.item_count)),
            ("total_cents", json!(self.total_cents)),
            ("placed_at", json!(micros(self.placed_at))),
            ("confirmed_at", json!(self.confirmed_at.map(micros))),
            ("updated_at", json!(micros(self.updated_at))),
            ("version", json!(self.version)),
        ]
    }

    /// The fields of the served document, named `body.<field>`.
    pub(super) fn body(
        &self,
        id: Uuid,
        customer: Option<&ExpectedCustomer>,
    ) -> [(&'static str, Value); 20] {
        let items: Vec<Value> = self
            .lines
            .iter()
            .map(|l| {
                json!({ "sku": l.sku, "name": l.name, "quantity": l.quantity,
                        "unit_price_cents": l.unit_price_cents, "line_total_cents": l.line_total_cents() })
            })
            .collect();
        [
            ("body.order_id", json!(id)),
            ("body.customer_id", json!(self.customer_id)),
            (
                "body.customer_name",
                json!(customer.and_then(|c| c.name.as_ref())),
            ),
            (
                "body.customer_email",
                json!(customer.and_then(|c| c.email.as_ref())),
            ),
            ("body.status", json!(self.status)),
            ("body.currency", json!(self.currency)),
            ("body.items", Value::Array(items)),
            ("body.item_count", json!(self.item_count)),
            ("body.total_cents", json!(self.total_cents)),
            ("body.shipping_address", json!(self.shipping_address)),
            ("body.carrier", json!(self.carrier)),
            ("body.tracking_number", json!(self.tracking_number)),
            ("body.cancellation_reason", json!(self.cancellation_reason)),
            ("body.version", json!(self.version)),
            ("body.created_at", json!(self.placed_at)),
            ("body.confirmed_at", json!(self.confirmed_at)),
            ("body.shipped_at", json!(self.shipped_at)),
            ("body.delivered_at", json!(self.delivered_at)),
            ("body.cancelled_at", json!(self.cancelled_at)),
            ("body.updated_at", json!(self.updated_at)),
        ]
    }
}

//! What the order aggregate decides: each command either yields the events of its change or
//! names the rule it breaks. Pure functions of the current state and the command.

use chrono::{DateTime, Utc};
use shared_events::DomainEvent;
use shared_events::order::{
    self as events, OrderCancelled, OrderConfirmed, OrderDelivered, OrderItemAdded,
    OrderItemRemoved, OrderLine, OrderPlaced, OrderShipped,
};

use super::{Lines, NewLine, Order, OrderStatus, PlaceOrder};
use crate::domain::values::{Invalid, OrderId, Quantity, Sku, Text};

/// A command that the order's current state does not allow. Nothing changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderRuleViolation {
    /// Lines can be added or removed only while the order is pending.
    #[error("lines can only change while the order is pending; it is {0}")]
    ItemsFixed(OrderStatus),
    /// An order must have at least one line to be confirmed.
    #[error("an order without lines cannot be confirmed")]
    EmptyOrder,
    /// The lifecycle does not allow this step from the current status.
    #[error("cannot {action} an order that is {status}")]
    Transition {
        /// What was attempted: `confirm`, `ship`, `deliver`, `cancel`.
        action: &'static str,
        /// The current status.
        status: OrderStatus,
    },
    /// A new line would exceed [`Lines::MAX`].
    #[error("an order has at most {} lines", Lines::MAX)]
    TooManyLines,
    /// Raising a line's quantity would exceed [`Quantity::MAX`].
    #[error(
        "line {sku} would have {would_be} units; at most {} are allowed",
        Quantity::MAX
    )]
    QuantityLimit {
        /// The line.
        sku: String,
        /// The quantity it would reach.
        would_be: u64,
    },
    /// The SKU is already on the order at another unit price.
    #[error("line {sku} is priced at {existing_cents}; add it at that price or remove it first")]
    PriceMismatch {
        /// The line.
        sku: String,
        /// Its current unit price, minor units.
        existing_cents: i64,
    },
    /// No line with this SKU.
    #[error("the order has no line with SKU {0}")]
    NoSuchLine(String),
}

impl OrderRuleViolation {
    /// A stable, machine-readable name of the rule.
    pub fn rule(&self) -> &'static str {
        match self {
            OrderRuleViolation::ItemsFixed(_) => "items-change-only-while-pending",
            OrderRuleViolation::EmptyOrder => "cannot-confirm-empty-order",
            OrderRuleViolation::Transition { .. } => "lifecycle",
            OrderRuleViolation::TooManyLines => "max-lines",
            OrderRuleViolation::QuantityLimit { .. } => "max-quantity",
            OrderRuleViolation::PriceMismatch { .. } => "one-price-per-sku",
            OrderRuleViolation::NoSuchLine(_) => "line-not-found",
        }
    }
}

/// "Ship it with this carrier under this tracking number."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipment {
    /// Carrier name, 1–100 characters.
    pub carrier: Text,
    /// Tracking number, 1–100 characters.
    pub tracking_number: Text,
}

impl Shipment {
    /// Most characters of a carrier's name and of a tracking number.
    pub const MAX_CHARS: usize = 100;

    /// Parses a carrier's name.
    pub fn parse_carrier(raw: &str) -> Result<Text, Invalid> {
        Text::parse(raw, Self::MAX_CHARS)
    }

    /// Parses a tracking number.
    pub fn parse_tracking_number(raw: &str) -> Result<Text, Invalid> {
        Text::parse(raw, Self::MAX_CHARS)
    }
}

/// Most characters of the reason given for cancelling an order.
pub const MAX_REASON_CHARS: usize = 500;

/// Parses the reason given for cancelling an order.
pub fn parse_cancellation_reason(raw: &str) -> Result<Text, Invalid> {
    Text::parse(raw, MAX_REASON_CHARS)
}

impl Order {
    /// Decides the events of placing a new order. Placing has no rule that can fail once the
    /// command is valid.
    pub fn place(id: OrderId, command: &PlaceOrder, now: DateTime<Utc>) -> Vec<DomainEvent> {
        let items: Vec<OrderLine> = command.lines.0.iter().map(NewLine::to_event_line).collect();
        vec![DomainEvent::OrderPlaced(OrderPlaced {
            order_id: id.0,
            customer_id: command.customer_id.0,
            currency: command.currency.code().to_owned(),
            item_count: items.iter().map(|l| u64::from(l.quantity)).sum(),
            total_cents: items.iter().map(OrderLine::line_total_cents).sum(),
            items,
            shipping_address: command
                .shipping_address
                .as_ref()
                .map(|a| events::ShippingAddress {
                    name: a.name.clone(),
                    street: a.street.clone(),
                    city: a.city.clone(),
                    postal_code: a.postal_code.clone(),
                    country: a.country.clone(),
                }),
            placed_at: now,
        })]
    }

    /// Decides adding `line`: a new line, or more units of an existing line at the same price.
    pub fn add_item(&self, line: &NewLine) -> Result<Vec<DomainEvent>, OrderRuleViolation> {
        self.require_pending()?;
        let added = line.to_event_line();
        let resulting = match self.lines.iter().find(|l| l.sku == added.sku) {
            Some(existing) if existing.unit_price_cents != added.unit_price_cents => {
                return Err(OrderRuleViolation::PriceMismatch {
                    sku: added.sku,
                    existing_cents: existing.unit_price_cents,
                });
            }
            Some(existing) => {
                let would_be = u64::from(existing.quantity) + u64::from(added.quantity);
                let quantity = u32::try_from(would_be)
                    .ok()
                    .filter(|q| *q <= Quantity::MAX)
                    .ok_or(OrderRuleViolation::QuantityLimit {
                        sku: added.sku.clone(),
                        would_be,
                    })?;
                OrderLine {
                    quantity,
                    ..existing.clone()
                }
            }
            None if self.lines.len() >= Lines::MAX => return Err(OrderRuleViolation::TooManyLines),
            None => added.clone(),
        };
        let item_count = self.item_count() + u64::from(added.quantity);
        let total_cents = self.total_cents() + added.line_total_cents();
        Ok(vec![DomainEvent::OrderItemAdded(OrderItemAdded {
            order_id: self.id.0,
            customer_id: self.customer_id.0,
            line: resulting,
            quantity_added: added.quantity,
            item_count,
            total_cents,
            currency: self.currency.clone(),
        })])
    }

    /// Decides removing the line of `sku`.
    pub fn remove_item(&self, sku: &Sku) -> Result<Vec<DomainEvent>, OrderRuleViolation> {
        self.require_pending()?;
        let line = self
            .lines
            .iter()
            .find(|l| l.sku == sku.as_str())
            .ok_or_else(|| OrderRuleViolation::NoSuchLine(sku.as_str().to_owned()))?;
        Ok(vec![DomainEvent::OrderItemRemoved(OrderItemRemoved {
            order_id: self.id.0,
            customer_id: self.customer_id.0,
            line: line.clone(),
            item_count: self.item_count() - u64::from(line.quantity),
            total_cents: self.total_cents() - line.line_total_cents(),
            currency: self.currency.clone(),
        })])
    }

    /// Decides confirming: only a pending order with at least one line.
    pub fn confirm(&self) -> Result<Vec<DomainEvent>, OrderRuleViolation> {
        self.require(OrderStatus::Pending, "confirm")?;
        if self.lines.is_empty() {
            return Err(OrderRuleViolation::EmptyOrder);
        }
        Ok(vec![DomainEvent::OrderConfirmed(OrderConfirmed {
            order_id: self.id.0,
            customer_id: self.customer_id.0,
            item_count: self.item_count(),
            total_cents: self.total_cents(),
            currency: self.currency.clone(),
        })])
    }

    /// Decides shipping: only a confirmed order.
    pub fn ship(&self, shipment: &Shipment) -> Result<Vec<DomainEvent>, OrderRuleViolation> {
        self.require(OrderStatus::Confirmed, "ship")?;
        Ok(vec![DomainEvent::OrderShipped(OrderShipped {
            order_id: self.id.0,
            customer_id: self.customer_id.0,
            carrier: shipment.carrier.as_str().to_owned(),
            tracking_number: shipment.tracking_number.as_str().to_owned(),
        })])
    }

    /// Decides delivering: only a shipped order.
    pub fn deliver(&self) -> Result<Vec<DomainEvent>, OrderRuleViolation> {
        self.require(OrderStatus::Shipped, "deliver")?;
        Ok(vec![DomainEvent::OrderDelivered(OrderDelivered {
            order_id: self.id.0,
            customer_id: self.customer_id.0,
        })])
    }

    /// Decides cancelling: only a pending or confirmed order.
    pub fn cancel(&self, reason: &Text) -> Result<Vec<DomainEvent>, OrderRuleViolation> {
        if !matches!(self.status, OrderStatus::Pending | OrderStatus::Confirmed) {
            return Err(OrderRuleViolation::Transition {
                action: "cancel",
                status: self.status,
            });
        }
        Ok(vec![DomainEvent::OrderCancelled(OrderCancelled {
            order_id: self.id.0,
            customer_id: self.customer_id.0,
            reason: reason.as_str().to_owned(),
            previous_status: self.status,
            item_count: self.item_count(),
            total_cents: self.total_cents(),
            currency: self.currency.clone(),
        })])
    }

    fn require_pending(&self) -> Result<(), OrderRuleViolation> {
        match self.status {
            OrderStatus::Pending => Ok(()),
            other => Err(OrderRuleViolation::ItemsFixed(other)),
        }
    }

    fn require(&self, status: OrderStatus, action: &'static str) -> Result<(), OrderRuleViolation> {
        if self.status == status {
            Ok(())
        } else {
            Err(OrderRuleViolation::Transition {
                action,
                status: self.status,
            })
        }
    }
}

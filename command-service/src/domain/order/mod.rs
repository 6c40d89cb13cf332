//! The order aggregate: its state, the commands it accepts and the events they produce.
//!
//! Commands decide (`place`, …) and return events; state only ever changes by applying events
//! ([`Order::apply_all`]), so the stored state is by construction what replaying the event log gives.

mod decide;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use shared_events::DomainEvent;
pub use shared_events::order::OrderStatus;
use shared_events::order::{self as events, OrderLine};

use super::values::{
    Currency, CustomerId, Invalid, OrderId, ProductName, Quantity, ShippingAddress, Sku, UnitPrice,
};

pub use decide::{MAX_REASON_CHARS, OrderRuleViolation, Shipment, parse_cancellation_reason};

/// One line of a command, already valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLine {
    /// What is ordered.
    pub sku: Sku,
    /// Its name as shown to the customer.
    pub name: ProductName,
    /// How many.
    pub quantity: Quantity,
    /// Price of one unit.
    pub unit_price: UnitPrice,
}

impl NewLine {
    fn to_event_line(&self) -> OrderLine {
        OrderLine {
            sku: self.sku.as_str().to_owned(),
            name: self.name.as_str().to_owned(),
            quantity: self.quantity.get(),
            unit_price_cents: self.unit_price.cents(),
        }
    }
}

/// The lines of an order: at most [`Lines::MAX`], each SKU once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lines(Vec<NewLine>);

/// Why a list of lines was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinesError {
    /// More than [`Lines::MAX`] lines.
    TooMany(Invalid),
    /// The SKU of the line at this index appeared on an earlier line.
    DuplicateSku(usize, Invalid),
}

impl Lines {
    /// Most lines one order may have.
    pub const MAX: usize = 100;

    /// Checks the count and that SKUs are unique.
    pub fn new(lines: Vec<NewLine>) -> Result<Self, LinesError> {
        if lines.len() > Self::MAX {
            return Err(LinesError::TooMany(Invalid(format!(
                "must have at most {} lines",
                Self::MAX
            ))));
        }
        for (index, line) in lines.iter().enumerate() {
            if lines[..index].iter().any(|earlier| earlier.sku == line.sku) {
                return Err(LinesError::DuplicateSku(
                    index,
                    Invalid("appears on an earlier line; give each SKU once".into()),
                ));
            }
        }
        Ok(Lines(lines))
    }
}

/// "Place an order for this customer with these lines."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceOrder {
    /// Who orders.
    pub customer_id: CustomerId,
    /// Currency of every price.
    pub currency: Currency,
    /// What is ordered; may be empty (lines can be added while pending).
    pub lines: Lines,
    /// Where to ship, if known yet.
    pub shipping_address: Option<ShippingAddress>,
}

/// The current state of one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Its id.
    pub id: OrderId,
    /// Who placed it.
    pub customer_id: CustomerId,
    /// Lifecycle position.
    pub status: OrderStatus,
    /// ISO 4217 code of every price.
    pub currency: String,
    /// Lines in the order they were added.
    pub lines: Vec<OrderLine>,
    /// Where to ship, if known.
    pub shipping_address: Option<events::ShippingAddress>,
    /// Carrier and tracking number once shipped.
    pub shipment: Option<(String, String)>,
    /// Why it was cancelled, once cancelled.
    pub cancellation_reason: Option<String>,
    /// Number of events applied; the version the next event gets is `version + 1`.
    pub version: i64,
    /// When it was placed.
    pub placed_at: DateTime<Utc>,
}

impl Order {
    /// The state after `events`, starting from `state` (`None` before the order exists).
    /// Events of other aggregates, and events that cannot follow `state`, leave it unchanged;
    /// the deciding functions never produce such sequences.
    pub fn apply_all<'a>(
        mut state: Option<Order>,
        events: impl IntoIterator<Item = &'a DomainEvent>,
    ) -> Option<Order> {
        for event in events {
            state = match state {
                None => Order::created_by(event),
                Some(order) => Some(order.apply(event)),
            };
        }
        state
    }

    fn created_by(event: &DomainEvent) -> Option<Order> {
        let DomainEvent::OrderPlaced(placed) = event else {
            return None;
        };
        Some(Order {
            id: OrderId(placed.order_id),
            customer_id: CustomerId(placed.customer_id),
            status: OrderStatus::Pending,
            currency: placed.currency.clone(),
            lines: placed.items.clone(),
            shipping_address: placed.shipping_address.clone(),
            shipment: None,
            cancellation_reason: None,
            version: 1,
            placed_at: placed.placed_at,
        })
    }

    fn apply(mut self, event: &DomainEvent) -> Order {
        if event.aggregate_id() != self.id.0 {
            return self;
        }
        match event {
            DomainEvent::OrderItemAdded(e) => {
                match self.lines.iter_mut().find(|l| l.sku == e.line.sku) {
                    Some(line) => *line = e.line.clone(),
                    None => self.lines.push(e.line.clone()),
                }
            }
            DomainEvent::OrderItemRemoved(e) => self.lines.retain(|l| l.sku != e.line.sku),
            DomainEvent::OrderConfirmed(_) => self.status = OrderStatus::Confirmed,
            DomainEvent::OrderShipped(e) => {
                self.status = OrderStatus::Shipped;
                self.shipment = Some((e.carrier.clone(), e.tracking_number.clone()));
            }
            DomainEvent::OrderDelivered(_) => self.status = OrderStatus::Delivered,
            DomainEvent::OrderCancelled(e) => {
                self.status = OrderStatus::Cancelled;
                self.cancellation_reason = Some(e.reason.clone());
            }
            _ => return self,
        }
        self.version += 1;
        self
    }

    /// Sum of the lines' quantities.
    pub fn item_count(&self) -> u64 {
        self.lines.iter().map(|l| u64::from(l.quantity)).sum()
    }

    /// Sum of the lines' totals in minor units.
    pub fn total_cents(&self) -> i64 {
        self.lines.iter().map(OrderLine::line_total_cents).sum()
    }
}

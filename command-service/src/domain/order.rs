//! The order aggregate: its state, the commands it accepts and the events they produce.
//!
//! Commands decide (`place`, …) and return events; state only ever changes by applying events
//! ([`Order::apply`]), so the stored state is by construction what replaying the event log gives.

use chrono::{DateTime, Utc};
use shared_events::DomainEvent;
use shared_events::order::{self as events, OrderLine, OrderPlaced};

use super::values::{
    Currency, CustomerId, Invalid, OrderId, ProductName, Quantity, ShippingAddress, Sku, UnitPrice,
};

/// Where an order is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// The status as stored and shown: `pending`, `confirmed`, …
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
        }
    }
}

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
    /// Number of events applied; the version the next event gets is `version + 1`.
    pub version: i64,
    /// When it was placed.
    pub placed_at: DateTime<Utc>,
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

    /// The state after `events`, starting from `state` (`None` before the order exists).
    /// Events that are not about orders, or that cannot follow `state`, are ignored; the
    /// deciding functions never produce such sequences.
    pub fn apply_all<'a>(
        mut state: Option<Order>,
        events: impl IntoIterator<Item = &'a DomainEvent>,
    ) -> Option<Order> {
        for event in events {
            state = Order::apply(state, event);
        }
        state
    }

    fn apply(state: Option<Order>, event: &DomainEvent) -> Option<Order> {
        match (state, event) {
            (None, DomainEvent::OrderPlaced(placed)) => Some(Order {
                id: OrderId(placed.order_id),
                customer_id: CustomerId(placed.customer_id),
                status: OrderStatus::Pending,
                currency: placed.currency.clone(),
                lines: placed.items.clone(),
                shipping_address: placed.shipping_address.clone(),
                version: 1,
                placed_at: placed.placed_at,
            }),
            (state, _) => state,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn line(sku: &str, quantity: i64, price: i64) -> NewLine {
        NewLine {
            sku: Sku::parse(sku).unwrap(),
            name: ProductName::parse("Widget").unwrap(),
            quantity: Quantity::parse(quantity).unwrap(),
            unit_price: UnitPrice::parse(price).unwrap(),
        }
    }

    #[test]
    fn placing_emits_lines_and_totals_and_yields_a_pending_order() {
        let command = PlaceOrder {
            customer_id: CustomerId(Uuid::now_v7()),
            currency: Currency::parse("EUR").unwrap(),
            lines: Lines::new(vec![line("A-1", 2, 1250), line("B-2", 1, 99)]).unwrap(),
            shipping_address: None,
        };
        let id = OrderId(Uuid::now_v7());
        let events = Order::place(id, &command, Utc::now());
        let [DomainEvent::OrderPlaced(placed)] = events.as_slice() else {
            panic!("expected one OrderPlaced, got {events:?}");
        };
        assert_eq!((placed.item_count, placed.total_cents), (3, 2599));

        let order = Order::apply_all(None, &events).unwrap();
        assert_eq!(order.status, OrderStatus::Pending);
        assert_eq!(order.version, 1);
        assert_eq!((order.item_count(), order.total_cents()), (3, 2599));
    }

    #[test]
    fn lines_are_unique_and_bounded() {
        let duplicate = Lines::new(vec![line("A-1", 1, 1), line("B", 1, 1), line("A-1", 2, 1)]);
        assert!(matches!(duplicate, Err(LinesError::DuplicateSku(2, _))));
        let many = (0..=Lines::MAX)
            .map(|i| line(&format!("S{i}"), 1, 1))
            .collect();
        assert!(matches!(Lines::new(many), Err(LinesError::TooMany(_))));
        let most = (0..Lines::MAX)
            .map(|i| line(&format!("S{i}"), 1, 1))
            .collect();
        assert!(Lines::new(most).is_ok());
    }
}

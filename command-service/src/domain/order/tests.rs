//! Rules of the order aggregate, example by example, and as properties over random command
//! sequences.

use super::*;
use crate::domain::values::Text;
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

fn placed(lines: Vec<NewLine>) -> Order {
    let command = PlaceOrder {
        customer_id: CustomerId(Uuid::now_v7()),
        currency: Currency::parse("EUR").unwrap(),
        lines: Lines::new(lines).unwrap(),
        shipping_address: None,
    };
    Order::apply_all(
        None,
        &Order::place(OrderId(Uuid::now_v7()), &command, Utc::now()),
    )
    .unwrap()
}

fn after(order: &Order, events: Result<Vec<DomainEvent>, OrderRuleViolation>) -> Order {
    Order::apply_all(Some(order.clone()), &events.unwrap()).unwrap()
}

fn text(s: &str) -> Text {
    Text::parse(s, 100).unwrap()
}

#[test]
fn the_lifecycle_runs_pending_confirmed_shipped_delivered() {
    let order = placed(vec![line("A", 1, 100)]);
    let shipment = Shipment {
        carrier: text("DHL"),
        tracking_number: text("123"),
    };
    assert_eq!(order.ship(&shipment).unwrap_err().rule(), "lifecycle");
    let confirmed = after(&order, order.confirm());
    assert_eq!(
        (confirmed.status, confirmed.version),
        (OrderStatus::Confirmed, 2)
    );
    assert_eq!(
        confirmed.add_item(&line("B", 1, 1)).unwrap_err().rule(),
        "items-change-only-while-pending"
    );
    assert_eq!(confirmed.deliver().unwrap_err().rule(), "lifecycle");
    let shipped = after(&confirmed, confirmed.ship(&shipment));
    assert_eq!(shipped.shipment, Some(("DHL".into(), "123".into())));
    assert_eq!(
        shipped.cancel(&text("too late")).unwrap_err(),
        OrderRuleViolation::Transition {
            action: "cancel",
            status: OrderStatus::Shipped
        }
    );
    let delivered = after(&shipped, shipped.deliver());
    assert_eq!(
        (delivered.status, delivered.version),
        (OrderStatus::Delivered, 4)
    );
}

#[test]
fn empty_orders_cannot_be_confirmed_but_can_be_cancelled() {
    let order = placed(vec![]);
    assert_eq!(order.confirm(), Err(OrderRuleViolation::EmptyOrder));
    let cancelled = after(&order, order.cancel(&text("changed my mind")));
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(
        cancelled.cancel(&text("again")).unwrap_err().rule(),
        "lifecycle"
    );
}

#[test]
fn adding_an_existing_sku_raises_its_quantity_at_the_same_price() {
    let order = placed(vec![line("A", 9_000, 100)]);
    let raised = after(&order, order.add_item(&line("A", 1_000, 100)));
    assert_eq!(raised.lines.len(), 1);
    assert_eq!(raised.lines[0].quantity, 10_000);
    assert_eq!(raised.total_cents(), 1_000_000);
    assert_eq!(
        raised.add_item(&line("A", 1, 100)).unwrap_err().rule(),
        "max-quantity"
    );
    assert_eq!(
        raised.add_item(&line("A", 1, 99)).unwrap_err().rule(),
        "one-price-per-sku"
    );
    let removed = after(&raised, raised.remove_item(&Sku::parse("A").unwrap()));
    assert!(removed.lines.is_empty());
    assert_eq!(
        removed
            .remove_item(&Sku::parse("A").unwrap())
            .unwrap_err()
            .rule(),
        "line-not-found"
    );
}

#[test]
fn an_order_has_at_most_a_hundred_lines() {
    let order = placed(
        (0..Lines::MAX)
            .map(|i| line(&format!("S{i}"), 1, 1))
            .collect(),
    );
    assert_eq!(
        order.add_item(&line("ONE-MORE", 1, 1)),
        Err(OrderRuleViolation::TooManyLines)
    );
    assert!(
        order.add_item(&line("S7", 1, 1)).is_ok(),
        "raising an existing line is not a new line"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        Add { sku: u8, quantity: i64, price: i64 },
        Remove { sku: u8 },
        Confirm,
        Ship,
        Deliver,
        Cancel,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0..6u8, 1..=6_000i64, prop_oneof![Just(100i64), Just(250)])
                .prop_map(|(sku, quantity, price)| Step::Add { sku, quantity, price }),
            2 => (0..6u8).prop_map(|sku| Step::Remove { sku }),
            1 => Just(Step::Confirm),
            1 => Just(Step::Ship),
            1 => Just(Step::Deliver),
            1 => Just(Step::Cancel),
        ]
    }

    fn decide(order: &Order, step: &Step) -> Result<Vec<DomainEvent>, OrderRuleViolation> {
        match step {
            Step::Add {
                sku,
                quantity,
                price,
            } => order.add_item(&line(&format!("S{sku}"), *quantity, *price)),
            Step::Remove { sku } => order.remove_item(&Sku::parse(&format!("S{sku}")).unwrap()),
            Step::Confirm => order.confirm(),
            Step::Ship => order.ship(&Shipment {
                carrier: text("UPS"),
                tracking_number: text("1Z"),
            }),
            Step::Deliver => order.deliver(),
            Step::Cancel => order.cancel(&text("no longer needed")),
        }
    }

    fn reported_totals(event: &DomainEvent) -> Option<(u64, i64)> {
        match event {
            DomainEvent::OrderItemAdded(e) => Some((e.item_count, e.total_cents)),
            DomainEvent::OrderItemRemoved(e) => Some((e.item_count, e.total_cents)),
            DomainEvent::OrderConfirmed(e) => Some((e.item_count, e.total_cents)),
            DomainEvent::OrderCancelled(e) => Some((e.item_count, e.total_cents)),
            _ => None,
        }
    }

    proptest! {
        #[test]
        fn random_commands_keep_the_invariants_and_the_events_rebuild_the_state(
            steps in prop::collection::vec(step(), 0..60)
        ) {
            let command = PlaceOrder {
                customer_id: CustomerId(Uuid::now_v7()),
                currency: Currency::parse("EUR").unwrap(),
                lines: Lines::new(vec![line("S0", 1, 100)]).unwrap(),
                shipping_address: None,
            };
            let mut history = Order::place(OrderId(Uuid::now_v7()), &command, Utc::now());
            let mut order = Order::apply_all(None, &history).unwrap();
            for step in &steps {
                let before = order.clone();
                match decide(&order, step) {
                    Ok(events) => {
                        prop_assert!(!events.is_empty());
                        order = Order::apply_all(Some(order), &events).unwrap();
                        if let Some((count, total)) = events.last().and_then(reported_totals) {
                            prop_assert_eq!((count, total), (order.item_count(), order.total_cents()));
                        }
                        history.extend(events);
                    }
                    Err(_) => prop_assert_eq!(&order, &before),
                }
                prop_assert_eq!(order.version, history.len() as i64);
                prop_assert!(order.lines.len() <= Lines::MAX);
                prop_assert!(order.lines.iter().all(|l| (1..=Quantity::MAX).contains(&l.quantity)));
                let mut skus: Vec<_> = order.lines.iter().map(|l| &l.sku).collect();
                skus.sort();
                skus.dedup();
                prop_assert_eq!(skus.len(), order.lines.len());
                if before.status != OrderStatus::Pending {
                    prop_assert_eq!(&order.lines, &before.lines, "lines changed after pending");
                }
                if matches!(before.status, OrderStatus::Delivered | OrderStatus::Cancelled) {
                    prop_assert_eq!(&order, &before, "a finished order changed");
                }
                if order.status == OrderStatus::Confirmed && before.status == OrderStatus::Pending {
                    prop_assert!(!order.lines.is_empty());
                }
            }
            prop_assert_eq!(Order::apply_all(None, &history), Some(order));
        }
    }
}

//! The fold, example by example: an order's document through its lifecycle, the customer
//! profiles, the daily sales, and which versions of an aggregate apply.

use super::*;
use chrono::TimeZone;
use shared_events::customer::{CustomerEmailChanged, CustomerRenamed};
use shared_events::fixtures::{self, Script, cancelled, confirmed, line, registered};
use shared_events::order::{
    OrderDelivered, OrderItemAdded, OrderItemRemoved, OrderShipped, OrderStatus,
};

fn day(d: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, hour, 59, 0).unwrap()
}

fn envelope(event: &DomainEvent, version: i64, at: DateTime<Utc>) -> EventEnvelope {
    EventEnvelope::new(event, version, at)
}

/// An event log written by hand, folded as it is written.
#[derive(Default)]
struct Log {
    script: Script,
    expected: Expected,
}

impl Log {
    fn at(&mut self, at: DateTime<Utc>, event: DomainEvent) -> &mut Self {
        self.expected.apply(&self.script.next(event, at));
        self
    }
}

/// `order` placed on the first day at 08:59 and some nanoseconds (stored to the microsecond).
fn placed(order: Uuid, customer: Uuid, currency: &str, lines: Vec<OrderLine>) -> DomainEvent {
    let at = day(1, 8) + chrono::Duration::nanoseconds(123_456_789);
    fixtures::placed(order, customer, currency, lines, at)
}

fn field<'a>(fields: &'a [(&'static str, Value)], name: &str) -> &'a Value {
    &fields.iter().find(|(f, _)| *f == name).unwrap().1
}

#[test]
fn an_order_document_follows_its_lifecycle_and_shows_its_customers_current_name() {
    let (customer, order) = (Uuid::now_v7(), Uuid::now_v7());
    let mut log = Log::default();
    log.at(day(1, 7), registered(customer, "ada"))
        .at(
            day(1, 8),
            placed(
                order,
                customer,
                "EUR",
                vec![line("A", 2, 1000), line("B", 1, 500)],
            ),
        )
        .at(
            day(1, 9),
            DomainEvent::OrderItemAdded(OrderItemAdded {
                order_id: order,
                customer_id: customer,
                line: line("A", 3, 1000),
                quantity_added: 1,
                item_count: 4,
                total_cents: 3500,
                currency: "EUR".into(),
            }),
        )
        .at(
            day(1, 10),
            DomainEvent::OrderItemAdded(OrderItemAdded {
                order_id: order,
                customer_id: customer,
                line: line("C", 1, 1),
                quantity_added: 1,
                item_count: 5,
                total_cents: 3501,
                currency: "EUR".into(),
            }),
        )
        .at(
            day(1, 11),
            DomainEvent::OrderItemRemoved(OrderItemRemoved {
                order_id: order,
                customer_id: customer,
                line: line("B", 1, 500),
                item_count: 4,
                total_cents: 3001,
                currency: "EUR".into(),
            }),
        )
        .at(day(2, 8), confirmed(order, customer, 4, 3001))
        .at(
            day(3, 8),
            DomainEvent::OrderShipped(OrderShipped {
                order_id: order,
                customer_id: customer,
                carrier: "UPS".into(),
                tracking_number: "1Z".into(),
            }),
        )
        .at(
            day(4, 8),
            DomainEvent::CustomerRenamed(CustomerRenamed {
                customer_id: customer,
                name: "Ada King".into(),
            }),
        )
        .at(
            day(5, 8),
            DomainEvent::OrderDelivered(OrderDelivered {
                order_id: order,
                customer_id: customer,
            }),
        );

    let expected = &log.expected;
    assert_eq!(
        (expected.events, expected.broken, expected.skipped),
        (9, 0, 0)
    );
    let view = &expected.orders[&order];
    assert_eq!(
        view.lines,
        [line("A", 3, 1000), line("C", 1, 1)],
        "replaced in place, appended, removed"
    );
    assert_eq!(
        (view.status, view.version, view.item_count, view.total_cents),
        (OrderStatus::Delivered, 7, 4, 3001)
    );
    assert_eq!(
        (
            view.confirmed_at,
            view.shipped_at,
            view.delivered_at,
            view.cancelled_at
        ),
        (Some(day(2, 8)), Some(day(3, 8)), Some(day(5, 8)), None)
    );
    assert_eq!(view.updated_at, day(5, 8));

    let customer_facts = expected.customers.get(&customer);
    let body = view.body(order, customer_facts);
    assert_eq!(field(&body, "body.customer_name"), "Ada King");
    assert_eq!(field(&body, "body.customer_email"), "ada@example.com");
    assert_eq!(field(&body, "body.carrier"), "UPS");
    assert_eq!(field(&body, "body.items")[0]["line_total_cents"], 3000);
    assert_eq!(
        field(&body, "body.created_at"),
        &json!(view.placed_at),
        "the document keeps nanoseconds"
    );
    let columns = view.columns(customer_facts);
    assert_eq!(field(&columns, "customer_version"), 2);
    assert_eq!(
        field(&columns, "placed_at"),
        &json!(day(1, 8) + chrono::Duration::microseconds(123_456))
    );
    assert_eq!(expected.versions[&order], (AggregateType::Order, 7));
    assert_eq!(expected.versions[&customer], (AggregateType::Customer, 2));
}

#[test]
fn profiles_count_every_order_and_value_only_sales_that_stand() {
    let (ada, bob, cy) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let [delivered, refunded, pending, usd] = [(); 4].map(|()| Uuid::now_v7());
    let mut log = Log::default();
    log.at(day(1, 7), registered(ada, "ada"))
        .at(
            day(1, 8),
            placed(delivered, ada, "EUR", vec![line("A", 1, 1000)]),
        )
        .at(day(1, 9), confirmed(delivered, ada, 1, 1000))
        .at(
            day(1, 9),
            DomainEvent::OrderShipped(OrderShipped {
                order_id: delivered,
                customer_id: ada,
                carrier: "DHL".into(),
                tracking_number: "1".into(),
            }),
        )
        .at(
            day(1, 9),
            DomainEvent::OrderDelivered(OrderDelivered {
                order_id: delivered,
                customer_id: ada,
            }),
        )
        .at(
            day(1, 8),
            placed(refunded, ada, "EUR", vec![line("A", 2, 1000)]),
        )
        .at(day(1, 9), confirmed(refunded, ada, 2, 2000))
        .at(
            day(1, 9),
            cancelled(refunded, ada, OrderStatus::Confirmed, 2, 2000),
        )
        .at(
            day(1, 8),
            placed(pending, ada, "EUR", vec![line("A", 1, 300)]),
        )
        .at(day(1, 8), placed(usd, ada, "USD", vec![line("A", 1, 700)]))
        .at(day(1, 9), confirmed(usd, ada, 1, 700))
        // Bob's orders are known before (without) his registration; Cy has no orders.
        .at(
            day(1, 8),
            placed(Uuid::now_v7(), bob, "EUR", vec![line("A", 1, 1)]),
        )
        .at(day(1, 7), registered(cy, "cy"))
        .at(
            day(1, 8),
            DomainEvent::CustomerEmailChanged(CustomerEmailChanged {
                customer_id: cy,
                email: "cy@example.org".into(),
            }),
        );

    let profiles = log.expected.profiles();
    assert_eq!(profiles.len(), 3);
    let ada = &profiles[&ada];
    assert_eq!((ada.order_count, ada.open_orders, ada.version), (4, 2, 1));
    assert_eq!(
        ada.lifetime_value,
        BTreeMap::from([("EUR".into(), 1000), ("USD".into(), 700)])
    );
    assert_eq!(
        field(&ada.fields(), "lifetime_value"),
        &json!([{ "currency": "EUR", "amount_cents": 1000 }, { "currency": "USD", "amount_cents": 700 }])
    );
    assert_eq!(
        ada.last_order_at,
        Some(day(1, 8) + chrono::Duration::microseconds(123_456))
    );
    let bob = &profiles[&bob];
    assert_eq!(
        (
            bob.name.as_deref(),
            bob.version,
            bob.order_count,
            bob.open_orders
        ),
        (None, 0, 1, 1)
    );
    let cy = &profiles[&cy];
    assert_eq!(
        (cy.email.as_deref(), cy.version, cy.order_count),
        (Some("cy@example.org"), 2, 0)
    );
    assert_eq!(field(&cy.fields(), "lifetime_value"), &json!([]));
}

#[test]
fn daily_sales_count_on_the_day_each_event_happened_and_refunds_only_confirmed_orders() {
    let customer = Uuid::now_v7();
    let (sold, refunded, dropped) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let mut log = Log::default();
    log.at(
        day(1, 23),
        placed(sold, customer, "EUR", vec![line("A", 3, 1000)]),
    )
    .at(day(2, 0), confirmed(sold, customer, 3, 3000))
    .at(
        day(1, 23),
        placed(refunded, customer, "EUR", vec![line("A", 2, 1000)]),
    )
    .at(day(2, 1), confirmed(refunded, customer, 2, 2000))
    .at(
        day(3, 1),
        cancelled(refunded, customer, OrderStatus::Confirmed, 2, 2000),
    )
    .at(
        day(3, 2),
        placed(dropped, customer, "EUR", vec![line("A", 1, 1000)]),
    )
    .at(
        day(3, 3),
        cancelled(dropped, customer, OrderStatus::Pending, 1, 1000),
    );
    let sales = |d: u32| log.expected.daily_sales[&(day(d, 0).date_naive(), "EUR".to_owned())];
    assert_eq!(
        sales(1),
        DaySales {
            orders_placed: 2,
            ..DaySales::default()
        }
    );
    assert_eq!(
        sales(2),
        DaySales {
            orders_confirmed: 2,
            gross_cents: 5000,
            items_sold: 5,
            ..DaySales::default()
        }
    );
    assert_eq!(
        sales(3),
        DaySales {
            orders_placed: 1,
            orders_cancelled: 2,
            cancelled_cents: 2000,
            items_sold: -2,
            ..DaySales::default()
        }
    );
    assert_eq!(log.expected.daily_sales.len(), 3);
}

#[test]
fn only_the_next_version_applies_and_newer_producers_events_count_without_effect() {
    let customer = Uuid::now_v7();
    let mut expected = Expected::default();
    let first = registered(customer, "ada");
    expected.apply(&envelope(&first, 1, day(1, 1)));
    let mut unknown = envelope(&first, 2, day(1, 2));
    unknown.event_type = "CustomerTeleported".into();
    expected.apply(&unknown);
    let renamed = DomainEvent::CustomerRenamed(CustomerRenamed {
        customer_id: customer,
        name: "Ada King".into(),
    });
    expected.apply(&envelope(&renamed, 3, day(1, 3)));
    assert_eq!((expected.skipped, expected.broken), (1, 0));
    assert_eq!(
        expected.customers[&customer].name.as_deref(),
        Some("Ada King")
    );
    assert_eq!(expected.customers[&customer].version, 3);

    // A gap, and a malformed event that blocks the versions after it, as in the projector.
    expected.apply(&envelope(&renamed, 5, day(1, 5)));
    let mut malformed = envelope(&renamed, 4, day(1, 4));
    malformed.data = json!({ "customer_id": customer });
    expected.apply(&malformed);
    expected.apply(&envelope(&renamed, 5, day(1, 5)));
    assert_eq!((expected.events, expected.broken), (6, 3));
    assert_eq!(
        expected.broken_examples[0].reason,
        "version 5 does not follow version 3"
    );
    assert!(
        expected.broken_examples[1]
            .reason
            .contains("missing field `name`")
    );
    assert_eq!(expected.versions[&customer].1, 3);
}

//! Events of one aggregate that arrive out of version order, or with a version this build
//! cannot read, never stop the aggregate's later events.

use chrono::Utc;
use e2e::{Script, TestApp, problem, wait_for};
use serde_json::{Value, json};
use shared_events::DomainEvent;
use shared_events::order::{OrderConfirmed, OrderItemAdded, OrderLine, OrderPlaced};
use uuid::Uuid;

fn placed(order: Uuid, customer: Uuid) -> DomainEvent {
    DomainEvent::OrderPlaced(OrderPlaced {
        order_id: order,
        customer_id: customer,
        currency: "EUR".into(),
        items: vec![OrderLine {
            sku: "A".into(),
            name: "A".into(),
            quantity: 1,
            unit_price_cents: 500,
        }],
        item_count: 1,
        total_cents: 500,
        shipping_address: None,
        placed_at: Utc::now(),
    })
}

fn added(order: Uuid, customer: Uuid) -> DomainEvent {
    DomainEvent::OrderItemAdded(OrderItemAdded {
        order_id: order,
        customer_id: customer,
        line: OrderLine {
            sku: "B".into(),
            name: "B".into(),
            quantity: 2,
            unit_price_cents: 100,
        },
        quantity_added: 2,
        item_count: 3,
        total_cents: 700,
        currency: "EUR".into(),
    })
}

fn confirmed(order: Uuid, customer: Uuid) -> DomainEvent {
    DomainEvent::OrderConfirmed(OrderConfirmed {
        order_id: order,
        customer_id: customer,
        item_count: 3,
        total_cents: 700,
        currency: "EUR".into(),
    })
}

async fn view_at(app: &TestApp, order: Uuid, version: i64) -> Value {
    wait_for(&format!("order {order} at version {version}"), || async {
        let view: Value = app
            .query(&format!("/orders/{order}"))
            .await
            .json()
            .await
            .ok()?;
        (view["version"] == version).then_some(view)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_version_that_arrives_first_waits_and_then_follows() {
    let app = TestApp::spawn().await;
    let (order, customer) = (Uuid::now_v7(), Uuid::now_v7());
    let mut script = Script::default();
    let (v1, v2, v3) = (
        script.next(placed(order, customer), Utc::now()),
        script.next(added(order, customer), Utc::now()),
        script.next(confirmed(order, customer), Utc::now()),
    );
    app.publish(&[v1, v3, v2]).await;

    let view = view_at(&app, order, 3).await;
    assert_eq!(
        (view["status"].as_str(), view["total_cents"].as_i64()),
        (Some("confirmed"), Some(700))
    );
    let retried = app.query_json("/admin/dead-letters?status=retried").await;
    assert_eq!(
        retried["items"].as_array().unwrap().len(),
        1,
        "version 3 waited, then followed"
    );
    assert_eq!(
        app.query_json("/admin/dead-letters?status=waiting").await["items"],
        json!([])
    );
    assert_eq!(
        app.query_json("/admin/dead-letters?status=parked").await["items"],
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_from_a_newer_producer_is_skipped_without_stopping_the_ones_after_it() {
    let app = TestApp::spawn().await;
    let (order, customer) = (Uuid::now_v7(), Uuid::now_v7());
    let mut script = Script::default();
    let v1 = script.next(placed(order, customer), Utc::now());
    let mut v2 = script.next(added(order, customer), Utc::now());
    v2.schema_version = 7;
    let v3 = script.next(confirmed(order, customer), Utc::now());
    app.publish(&[v1, v2, v3]).await;

    let view = view_at(&app, order, 3).await;
    assert_eq!(view["status"], "confirmed");
    assert_eq!(
        view["items"].as_array().unwrap().len(),
        1,
        "the skipped version's effect is not there"
    );
    assert_eq!(
        app.query_json("/admin/dead-letters").await["items"],
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discarding_a_parked_event_lets_the_waiting_ones_follow() {
    let app = TestApp::spawn().await;
    let (order, customer) = (Uuid::now_v7(), Uuid::now_v7());
    let mut script = Script::default();
    let v1 = script.next(placed(order, customer), Utc::now());
    let mut v2 = script.next(added(order, customer), Utc::now());
    v2.data.as_object_mut().unwrap().remove("line");
    let v3 = script.next(confirmed(order, customer), Utc::now());
    app.publish(&[v1, v2, v3]).await;

    let parked = wait_for("the broken version 2 parked", || async {
        let list = app.query_json("/admin/dead-letters?status=parked").await;
        list["items"].as_array()?.first().cloned()
    })
    .await;
    assert_eq!(parked["aggregate_version"], 2);
    let waiting = wait_for("version 3 waiting", || async {
        let list = app.query_json("/admin/dead-letters?status=waiting").await;
        list["items"].as_array()?.first().cloned()
    })
    .await;
    assert_eq!(waiting["aggregate_version"], 3);

    let id = parked["id"].as_i64().unwrap();
    let discarded = app
        .http
        .post(format!("{}/admin/dead-letters/{id}/discard", app.query.url))
        .send()
        .await
        .unwrap();
    assert_eq!(discarded.status(), 200);
    let view = view_at(&app, order, 3).await;
    assert_eq!(view["status"], "confirmed");
    problem(
        app.http
            .post(format!("{}/admin/dead-letters/{id}/discard", app.query.url))
            .send()
            .await
            .unwrap(),
        409,
    )
    .await;
}

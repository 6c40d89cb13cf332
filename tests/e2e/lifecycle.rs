//! The order lifecycle through the API: every command, every rule, and the audit trail that
//! rebuilds the stored state.

use command_service::domain::order::Order;
use command_service::domain::values::OrderId;
use e2e::{TestApp, created_id, problem};
use serde_json::{Value, json};
use shared_events::{DomainEvent, EventEnvelope};

async fn ok(response: reqwest::Response, version: i64) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], version, "{body}");
}

fn item(sku: &str, quantity: i64, price: i64) -> Value {
    json!({ "sku": sku, "name": format!("Product {sku}"), "quantity": quantity, "unit_price_cents": price })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_goes_from_pending_to_delivered_and_its_events_rebuild_it() {
    let app = TestApp::spawn().await;
    let customer = app.register_customer().await;
    let placed = app
        .post("/orders", &json!({
            "customer_id": customer, "currency": "usd", "items": [item("A", 1, 1000)],
            "shipping_address": { "name": "Ada", "street": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "us" }
        }))
        .await;
    let order = created_id(placed, "order_id").await;
    let path = |action: &str| format!("/orders/{order}/{action}");

    ok(app.post(&path("items"), &item("B", 2, 250)).await, 2).await;
    ok(app.post(&path("items"), &item("A", 3, 1000)).await, 3).await;
    ok(app.post(&path("items"), &item("C", 1, 1)).await, 4).await;
    let removed = app
        .http
        .delete(format!("{}/orders/{order}/items/C", app.command.url))
        .send()
        .await
        .unwrap();
    ok(removed, 5).await;
    ok(app.post(&path("confirm"), &json!({})).await, 6).await;
    // Confirmed, not shipped yet: the shipping dashboard says where to, as the detail does.
    app.wait_until_views_caught_up().await;
    let awaiting = app.query_json("/dashboards/shipping").await;
    let detail = app.query_json(&format!("/orders/{order}")).await;
    assert_eq!(awaiting["items"][0]["order_id"], order.to_string());
    assert_eq!(detail["shipping_address"]["city"], "Springfield");
    assert_eq!(
        awaiting["items"][0]["shipping_address"],
        detail["shipping_address"]
    );
    ok(
        app.post(
            &path("ship"),
            &json!({ "carrier": "UPS", "tracking_number": "1Z999" }),
        )
        .await,
        7,
    )
    .await;
    ok(app.post(&path("deliver"), &json!({})).await, 8).await;

    let history: Value = app
        .http
        .get(format!("{}/orders/{order}/events", app.command.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let envelopes: Vec<EventEnvelope> = serde_json::from_value(history["events"].clone()).unwrap();
    let types: Vec<&str> = envelopes.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "OrderPlaced",
            "OrderItemAdded",
            "OrderItemAdded",
            "OrderItemAdded",
            "OrderItemRemoved",
            "OrderConfirmed",
            "OrderShipped",
            "OrderDelivered"
        ]
    );
    assert!(
        envelopes
            .iter()
            .zip(1..)
            .all(|(e, v)| e.aggregate_version == v && e.partition_key == customer.to_string())
    );
    assert_eq!(
        envelopes[5].data["total_cents"], 4500,
        "confirmed: 4 × 1000 + 2 × 250"
    );

    let events: Vec<DomainEvent> = envelopes
        .iter()
        .map(|e| DomainEvent::from_envelope(e).unwrap())
        .collect();
    let replayed = Order::apply_all(None, &events).unwrap();
    let mut tx = app.command_db.begin().await.unwrap();
    let stored = command_service::store::orders::load_for_update(&mut tx, OrderId(order))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored, replayed,
        "the stored state is what the event log replays to"
    );
    assert_eq!(
        (
            stored.item_count(),
            stored.total_cents(),
            stored.currency.as_str()
        ),
        (6, 4500, "USD")
    );

    let view = e2e::wait_for("the delivered order in the query service", || async {
        let view: Value = app.get_order(&order.to_string()).await.json().await.ok()?;
        (view["version"] == 8).then_some(view)
    })
    .await;
    assert_eq!(view["status"], "delivered");
    assert_eq!(view["carrier"], "UPS");
    assert_eq!(view["total_cents"], 4500);
    assert_eq!(view["items"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_that_break_a_rule_are_409s_naming_it_and_change_nothing() {
    let app = TestApp::spawn().await;
    let customer = app.register_customer().await;
    let empty = created_id(
        app.post("/orders", &json!({ "customer_id": customer, "items": [] }))
            .await,
        "order_id",
    )
    .await;

    let refused = problem(
        app.post(&format!("/orders/{empty}/confirm"), &json!({}))
            .await,
        409,
    )
    .await;
    assert_eq!(refused["type"], "/problems/rule-violation");
    assert_eq!(refused["rule"], "cannot-confirm-empty-order");
    assert_eq!(refused["current_status"], "pending");
    assert_eq!(refused["current_version"], 1);

    for action in ["ship", "deliver"] {
        let body = json!({ "carrier": "DHL", "tracking_number": "1" });
        let refused = problem(
            app.post(&format!("/orders/{empty}/{action}"), &body).await,
            409,
        )
        .await;
        assert_eq!(refused["rule"], "lifecycle", "{action}");
    }
    let missing = problem(
        app.http
            .delete(format!("{}/orders/{empty}/items/NOPE", app.command.url))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    assert_eq!(missing["rule"], "line-not-found");

    ok(
        app.post(&format!("/orders/{empty}/items"), &item("A", 9_999, 100))
            .await,
        2,
    )
    .await;
    let too_many = problem(
        app.post(&format!("/orders/{empty}/items"), &item("A", 2, 100))
            .await,
        409,
    )
    .await;
    assert_eq!(too_many["rule"], "max-quantity");
    let repriced = problem(
        app.post(&format!("/orders/{empty}/items"), &item("A", 1, 99))
            .await,
        409,
    )
    .await;
    assert_eq!(repriced["rule"], "one-price-per-sku");

    let cancelled = app
        .post(
            &format!("/orders/{empty}/cancel"),
            &json!({ "reason": "duplicate order" }),
        )
        .await;
    ok(cancelled, 3).await;
    let after_cancel = problem(
        app.post(&format!("/orders/{empty}/items"), &item("B", 1, 1))
            .await,
        409,
    )
    .await;
    assert_eq!(
        (
            after_cancel["rule"].as_str(),
            after_cancel["current_status"].as_str()
        ),
        (Some("items-change-only-while-pending"), Some("cancelled"))
    );
    let twice = problem(
        app.post(
            &format!("/orders/{empty}/cancel"),
            &json!({ "reason": "again" }),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(twice["rule"], "lifecycle");

    let hundred: Vec<Value> = (0..100).map(|i| item(&format!("S{i}"), 1, 1)).collect();
    let full = created_id(
        app.post(
            "/orders",
            &json!({ "customer_id": customer, "items": hundred }),
        )
        .await,
        "order_id",
    )
    .await;
    let refused = problem(
        app.post(&format!("/orders/{full}/items"), &item("ONE-MORE", 1, 1))
            .await,
        409,
    )
    .await;
    assert_eq!(refused["rule"], "max-lines");

    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM event_log WHERE event_type LIKE 'Order%'")
            .fetch_one(&app.command_db)
            .await
            .unwrap();
    assert_eq!(
        events, 4,
        "placed, added, cancelled, and the full order's placement; nothing for refusals"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_order_commands_are_field_level_422s() {
    let app = TestApp::spawn().await;
    let customer = app.register_customer().await;
    let order = app.place_order_for(customer).await;
    let invalid = problem(
        app.post(
            &format!("/orders/{order}/items"),
            &json!({ "sku": "a b", "name": "", "quantity": 10_001, "unit_price_cents": -5 }),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(
        e2e::problem_fields(&invalid),
        ["sku", "name", "quantity", "unit_price_cents"]
    );
    let ship = problem(
        app.post(
            &format!("/orders/{order}/ship"),
            &json!({ "carrier": "", "tracking_number": "x".repeat(101) }),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(e2e::problem_fields(&ship), ["carrier", "tracking_number"]);
    let cancel = problem(
        app.post(&format!("/orders/{order}/cancel"), &json!({}))
            .await,
        422,
    )
    .await;
    assert_eq!(e2e::problem_fields(&cancel), ["reason"]);
    let bad_sku = problem(
        app.http
            .delete(format!("{}/orders/{order}/items/a%20b", app.command.url))
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    assert_eq!(e2e::problem_fields(&bad_sku), ["sku"]);
    let unknown = uuid::Uuid::now_v7();
    problem(
        app.post(&format!("/orders/{unknown}/confirm"), &json!({}))
            .await,
        404,
    )
    .await;
    let history = problem(
        app.http
            .get(format!("{}/orders/{unknown}/events", app.command.url))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    assert_eq!(history["type"], "/problems/not-found");
    assert_eq!(
        app.command_rows("event_log").await,
        2,
        "the registration and the placement only"
    );
}

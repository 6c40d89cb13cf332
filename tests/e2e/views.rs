//! Every read model against a scripted sequence of events: duplicates, unknown events, and a
//! customer whose own events arrive after their orders'.

use chrono::{DateTime, TimeZone, Utc};
use e2e::{Script, TestApp, wait_for};
use serde_json::{Value, json};
use shared_events::customer::{CustomerRegistered, CustomerRenamed};
use shared_events::fixtures::{self, cancelled, confirmed, line};
use shared_events::order::{OrderDelivered, OrderItemAdded, OrderLine, OrderShipped, OrderStatus};
use shared_events::{DomainEvent, EventEnvelope};
use uuid::Uuid;

fn day(d: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, hour, 0, 0).unwrap()
}

fn placed(order: Uuid, customer: Uuid, lines: Vec<OrderLine>, at: DateTime<Utc>) -> DomainEvent {
    fixtures::placed(order, customer, "EUR", lines, at)
}

/// Each item of a list page says what the order's detail document says, in the same text
/// (PostgreSQL writes the lists' JSON, the service's serializer the detail's).
async fn assert_items_match_their_details(app: &TestApp, page: &Value) {
    for item in page["items"].as_array().unwrap() {
        let detail = app
            .query_json(&format!("/orders/{}", item["order_id"].as_str().unwrap()))
            .await;
        let mut expected = json!({ "placed_at": detail["created_at"] });
        for field in [
            "order_id",
            "customer_id",
            "customer_name",
            "status",
            "currency",
            "item_count",
            "total_cents",
            "updated_at",
            "version",
        ] {
            expected[field] = detail[field].clone();
        }
        assert_eq!(item, &expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_view_follows_a_scripted_history_with_duplicates_and_late_customer_events() {
    let app = TestApp::spawn().await;
    let customer = Uuid::now_v7();
    let (delivered, refunded, dropped, waiting) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let mut script = Script::default();
    let mut events: Vec<EventEnvelope> = vec![
        // The orders' events come before the customer's own registration.
        script.next(
            placed(delivered, customer, vec![line("A", 2, 1000)], day(1, 9)),
            day(1, 9),
        ),
        script.next(
            DomainEvent::OrderItemAdded(OrderItemAdded {
                order_id: delivered,
                customer_id: customer,
                line: line("B", 1, 500),
                quantity_added: 1,
                item_count: 3,
                total_cents: 2500,
                currency: "EUR".into(),
            }),
            day(1, 10),
        ),
        script.next(confirmed(delivered, customer, 3, 2500), day(1, 11)),
        script.next(
            DomainEvent::OrderShipped(OrderShipped {
                order_id: delivered,
                customer_id: customer,
                carrier: "DHL".into(),
                tracking_number: "JD1".into(),
            }),
            day(2, 8),
        ),
        script.next(
            DomainEvent::OrderDelivered(OrderDelivered {
                order_id: delivered,
                customer_id: customer,
            }),
            day(3, 8),
        ),
        script.next(
            placed(refunded, customer, vec![line("C", 4, 250)], day(1, 12)),
            day(1, 12),
        ),
        script.next(confirmed(refunded, customer, 4, 1000), day(1, 13)),
        script.next(
            cancelled(refunded, customer, OrderStatus::Confirmed, 4, 1000),
            day(2, 9),
        ),
        script.next(
            placed(dropped, customer, vec![line("D", 1, 9900)], day(2, 10)),
            day(2, 10),
        ),
        script.next(
            cancelled(dropped, customer, OrderStatus::Pending, 1, 9900),
            day(2, 11),
        ),
        script.next(
            placed(waiting, customer, vec![line("E", 1, 700)], day(2, 12)),
            day(2, 12),
        ),
        script.next(confirmed(waiting, customer, 1, 700), day(2, 13)),
        script.next(
            DomainEvent::CustomerRegistered(CustomerRegistered {
                customer_id: customer,
                name: "Ada".into(),
                email: "ada@example.com".into(),
            }),
            day(3, 9),
        ),
        script.next(
            DomainEvent::CustomerRenamed(CustomerRenamed {
                customer_id: customer,
                name: "Ada King".into(),
            }),
            day(3, 10),
        ),
    ];
    // The relay published some of them twice; a newer producer added events this build does
    // not know.
    let (first, fifth, last) = (events[0].clone(), events[4].clone(), events[13].clone());
    events.extend([first, fifth, last]);
    let mut unknown = events[0].clone();
    unknown.event_type = "OrderTeleported".into();
    unknown.aggregate_version = 99;
    let mut newer = events[0].clone();
    newer.schema_version = 2;
    newer.aggregate_version = 98;
    events.extend([unknown, newer]);
    app.publish(&events).await;

    let profile = wait_for("the customer's profile with their new name", || async {
        let response = app.query(&format!("/customers/{customer}")).await;
        let profile: Value = response.json().await.ok()?;
        (profile["name"] == "Ada King").then_some(profile)
    })
    .await;
    assert_eq!(profile["email"], "ada@example.com");
    assert_eq!(profile["version"], 2);
    assert_eq!(profile["order_count"], 4);
    assert_eq!(
        profile["open_orders"], 1,
        "only the confirmed one waiting for shipment"
    );
    assert_eq!(
        profile["lifetime_value"],
        json!([{ "currency": "EUR", "amount_cents": 3200 }]),
        "delivered 2500 + confirmed 700"
    );
    assert_eq!(profile["last_order_at"], "2026-11-02T12:00:00Z");

    let detail = app.query_json(&format!("/orders/{delivered}")).await;
    assert_eq!(
        (detail["status"].as_str(), detail["version"].as_i64()),
        (Some("delivered"), Some(5))
    );
    assert_eq!(
        detail["customer_name"], "Ada King",
        "copied in although the customer's events came last"
    );
    assert_eq!(detail["customer_email"], "ada@example.com");
    assert_eq!(
        (
            detail["item_count"].as_i64(),
            detail["total_cents"].as_i64()
        ),
        (Some(3), Some(2500))
    );
    assert_eq!(detail["confirmed_at"], "2026-11-01T11:00:00Z");
    assert_eq!(detail["delivered_at"], "2026-11-03T08:00:00Z");
    assert_eq!(detail["tracking_number"], "JD1");

    let orders = app
        .query_json(&format!("/customers/{customer}/orders"))
        .await;
    let ids: Vec<&str> = orders["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [waiting, dropped, refunded, delivered].map(|id| id.to_string()),
        "newest first"
    );
    assert!(
        orders["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["customer_name"] == "Ada King")
    );
    assert_items_match_their_details(&app, &orders).await;
    let cancelled_only = app
        .query_json(&format!("/customers/{customer}/orders?status=cancelled"))
        .await;
    assert_eq!(cancelled_only["items"].as_array().unwrap().len(), 2);

    let search = app
        .query_json(&format!(
            "/orders?customer_id={customer}&placed_after=2026-11-02T00:00:00Z&status=cancelled"
        ))
        .await;
    let found: Vec<&str> = search["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(found, [dropped.to_string()]);

    let shipping = app.query_json("/dashboards/shipping").await;
    let awaiting = shipping["items"].as_array().unwrap();
    assert_eq!(awaiting.len(), 1);
    assert_eq!(awaiting[0]["order_id"], waiting.to_string());
    assert!(awaiting[0]["age_seconds"].as_i64().unwrap() > 0);
    assert_eq!(awaiting[0]["customer_name"], "Ada King");
    // Placed, then confirmed: the version a Ship's If-Match must carry.
    assert_eq!(awaiting[0]["version"], 2);
    let detail = app.query_json(&format!("/orders/{waiting}")).await;
    for field in [
        "confirmed_at",
        "shipping_address",
        "currency",
        "total_cents",
    ] {
        assert_eq!(awaiting[0][field], detail[field], "{field}");
    }

    let sales = app
        .query_json("/reports/daily-sales?from=2026-11-01&to=2026-11-03")
        .await;
    let days = sales["days"].as_array().unwrap();
    let on = |date: &str| {
        days.iter()
            .find(|d| d["date"] == date)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        on("2026-11-01"),
        json!({
            "date": "2026-11-01", "currency": "EUR", "orders_placed": 2, "orders_confirmed": 2, "orders_cancelled": 0,
            "gross_cents": 3500, "cancelled_cents": 0, "net_cents": 3500, "items_sold": 7
        })
    );
    assert_eq!(
        on("2026-11-02"),
        json!({
            "date": "2026-11-02", "currency": "EUR", "orders_placed": 2, "orders_confirmed": 1, "orders_cancelled": 2,
            "gross_cents": 700, "cancelled_cents": 1000, "net_cents": -300, "items_sold": -3
        })
    );
    assert_eq!(on("2026-11-03"), Value::Null, "deliveries are not sales");

    let parked = app.query_json("/admin/dead-letters?status=parked").await;
    assert_eq!(
        parked["items"],
        json!([]),
        "unknown and newer events are skipped, not parked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_are_stable_while_orders_are_inserted() {
    let app = TestApp::spawn().await;
    let customer = app.register_customer().await;
    let mut placed = Vec::new();
    for _ in 0..25 {
        placed.push(app.place_order_for(customer).await);
    }
    wait_for("25 orders in the customer's list", || async {
        let page = app
            .query_json(&format!("/customers/{customer}/orders?limit=100"))
            .await;
        (page["items"].as_array()?.len() == 25).then_some(())
    })
    .await;

    // A full last page says so: no cursor to an empty page.
    let all = app
        .query_json(&format!("/customers/{customer}/orders?limit=25"))
        .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 25);
    assert_eq!(all["next_cursor"], Value::Null, "{all}");
    // Times the command service took from its clock, with their microseconds.
    assert_items_match_their_details(&app, &all).await;
    let but_one = app
        .query_json(&format!("/customers/{customer}/orders?limit=24"))
        .await;
    assert!(but_one["next_cursor"].is_string(), "{but_one}");

    let first = app
        .query_json(&format!("/customers/{customer}/orders?limit=10"))
        .await;
    let mut seen: Vec<String> = ids(&first);
    let mut cursor = first["next_cursor"].as_str().unwrap().to_owned();
    // New orders arrive between pages; they are newer than everything already listed.
    for _ in 0..5 {
        app.place_order_for(customer).await;
    }
    loop {
        let page = app
            .query_json(&format!(
                "/customers/{customer}/orders?limit=10&cursor={cursor}"
            ))
            .await;
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    let expected: Vec<String> = placed.iter().rev().map(Uuid::to_string).collect();
    assert_eq!(
        seen, expected,
        "every order once, newest first, none of the later ones"
    );

    let bad = app
        .query(&format!(
            "/customers/{customer}/orders?limit=0&cursor=nonsense&status=lost"
        ))
        .await;
    assert_eq!(bad.status(), 422);
    let problem: Value = bad.json().await.unwrap();
    assert_eq!(e2e::problem_fields(&problem), ["status", "limit", "cursor"]);
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_recover_when_the_database_drops_their_connections() {
    let app = TestApp::spawn().await;
    let customer = app.register_customer().await;
    let order = app.place_order_for(customer).await;
    app.wait_for_order(order).await;

    // PostgreSQL ends every other session of the read database, as a restart does.
    let ended: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&app.query_db)
    .await
    .unwrap();
    assert!(
        !ended.is_empty(),
        "the query service had connections to end"
    );

    // A read on a connection that broke while in use may fail once, as a 503 to retry; never
    // a 500, and the pool replaces what broke.
    let seen = std::sync::Mutex::new(Vec::new());
    wait_for("reads to answer again", || async {
        let status = app.get_order(&order.to_string()).await.status().as_u16();
        seen.lock().unwrap().push(status);
        (status == 200).then_some(())
    })
    .await;
    let mut statuses = seen.into_inner().unwrap();
    for _ in 0..40 {
        statuses.push(app.get_order(&order.to_string()).await.status().as_u16());
    }
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().rev().take(40).all(|s| *s == 200),
        "{statuses:?}"
    );
}

//! Poison messages: parked with a readable error while the stream keeps flowing, listed,
//! retried after a fix, discarded.

use chrono::Utc;
use e2e::{Script, TestApp, problem, wait_for};
use serde_json::{Value, json};
use shared_events::DomainEvent;
use shared_events::order::{OrderItemAdded, OrderLine, OrderPlaced};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_is_parked_the_stream_flows_and_a_corrected_event_is_applied_on_retry() {
    let app = TestApp::spawn().await;
    let customer = app.register_customer().await;
    let key = customer.to_string();

    // Garbage, JSON that is no envelope, a known event with missing fields…
    app.produce(&key, b"\x00\xffnot json at all").await;
    app.produce(&key, br#"{"hello": "world"}"#).await;
    let mut script = Script::default();
    let mut missing = script.next(
        DomainEvent::OrderPlaced(placed(Uuid::now_v7(), customer, "EUR")),
        Utc::now(),
    );
    missing.data.as_object_mut().unwrap().remove("items");
    // …and an order the views refuse (its currency breaks their constraint), plus its next
    // version, which must wait for it.
    let refused_order = Uuid::now_v7();
    let refused = script.next(
        DomainEvent::OrderPlaced(placed(refused_order, customer, "EURO")),
        Utc::now(),
    );
    let follow_up = script.next(
        DomainEvent::OrderItemAdded(OrderItemAdded {
            order_id: refused_order,
            customer_id: customer,
            line: OrderLine {
                sku: "B".into(),
                name: "B".into(),
                quantity: 1,
                unit_price_cents: 100,
            },
            quantity_added: 1,
            item_count: 2,
            total_cents: 600,
            currency: "EUR".into(),
        }),
        Utc::now(),
    );
    app.publish(&[missing, refused.clone(), follow_up]).await;

    // The stream flows past all of it.
    let healthy = app.place_order_for(customer).await;
    app.wait_for_order(healthy).await;

    let parked = wait_for("four parked letters", || async {
        let list = app.query_json("/admin/dead-letters?status=parked").await;
        (list["items"].as_array()?.len() == 4).then_some(list)
    })
    .await;
    let waiting = app.query_json("/admin/dead-letters?status=waiting").await;
    let items = parked["items"].as_array().unwrap();
    let error = |i: usize| items[i]["error"].as_str().unwrap().to_owned();
    assert!(error(0).starts_with("malformed event"), "{}", error(0));
    assert!(
        error(1).contains("missing field `event_id`"),
        "{}",
        error(1)
    );
    assert!(error(2).contains("missing field `items`"), "{}", error(2));
    assert!(
        error(3).contains("order_detail_currency_check")
            || error(3).contains("violates check constraint"),
        "{}",
        error(3)
    );
    // The database's message once, not again as the cause sqlx already quoted.
    assert_eq!(error(3).matches("violates").count(), 1, "{}", error(3));

    assert_eq!(items[3]["aggregate_id"], refused_order.to_string());
    assert_eq!(
        items[2]["aggregate_version"], 1,
        "a malformed event is parked with what its envelope says"
    );
    let waiting = waiting["items"].as_array().unwrap();
    assert_eq!(waiting.len(), 1);
    assert!(
        waiting[0]["error"]
            .as_str()
            .unwrap()
            .contains("waiting for an earlier version"),
        "{}",
        waiting[0]
    );
    assert_eq!(items[1]["payload"], json!({ "hello": "world" }));

    // Retrying unchanged still fails, and says why.
    let refused_id = items[3]["id"].as_i64().unwrap();
    let again = problem(
        app.http
            .post(format!(
                "{}/admin/dead-letters/{refused_id}/retry",
                app.query.url
            ))
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    assert_eq!(again["type"], "/problems/dead-letter-still-failing");
    // The follow-up cannot jump the queue.
    let follow_id = waiting[0]["id"].as_i64().unwrap();
    let waiting = problem(
        app.http
            .post(format!(
                "{}/admin/dead-letters/{follow_id}/retry",
                app.query.url
            ))
            .send()
            .await
            .unwrap(),
        409,
    )
    .await;
    assert_eq!(waiting["needed_version"], 1);

    // The fix: the operator supplies the corrected event; the waiting follow-up comes along.
    let mut corrected = refused.clone();
    corrected.data["currency"] = json!("EUR");
    let retried: Value = app
        .http
        .post(format!(
            "{}/admin/dead-letters/{refused_id}/retry",
            app.query.url
        ))
        .header("content-type", "application/json")
        .body(corrected.to_vec())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        retried,
        json!({ "id": refused_id, "outcome": "applied", "applied_versions": [1, 2] })
    );
    let view = app.query_json(&format!("/orders/{refused_order}")).await;
    assert_eq!(
        (view["version"].as_i64(), view["total_cents"].as_i64()),
        (Some(2), Some(600))
    );

    let garbage_id = items[0]["id"].as_i64().unwrap();
    let discarded: Value = app
        .http
        .post(format!(
            "{}/admin/dead-letters/{garbage_id}/discard",
            app.query.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discarded["outcome"], "discarded");
    problem(
        app.http
            .post(format!(
                "{}/admin/dead-letters/{garbage_id}/retry",
                app.query.url
            ))
            .send()
            .await
            .unwrap(),
        409,
    )
    .await;
    problem(
        app.http
            .post(format!("{}/admin/dead-letters/424242/retry", app.query.url))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;

    let remaining = app.query_json("/admin/dead-letters?status=parked").await;
    assert_eq!(remaining["items"].as_array().unwrap().len(), 2);
    let status = app.query_json("/admin/projections").await;
    assert_eq!(status["parked_dead_letters"], 2);

    assert_eq!(
        app.query_json("/admin/dead-letters?status=waiting").await["items"],
        json!([])
    );

    // The dead-letter topic got every parked message too.
    let dead_letter_topic = format!("{}.dead-letters", app.topic);
    assert_eq!(app.read_topic_named(&dead_letter_topic, 4).await.len(), 4);

    // Rebuilds meet the poison again and keep what the operator decided, under the same ids:
    // the corrected order stays, the discarded message stays discarded, rebuild after rebuild.
    let letters = || async {
        let mut all = Vec::new();
        for status in ["parked", "waiting", "retried", "discarded"] {
            let page = app
                .query_json(&format!("/admin/dead-letters?status={status}"))
                .await;
            for letter in page["items"].as_array().unwrap() {
                all.push((
                    letter["id"].as_i64().unwrap(),
                    status,
                    letter["payload"].clone(),
                ));
            }
        }
        all.sort_by_key(|(id, ..)| *id);
        all
    };
    let decided = letters().await;
    let statuses: Vec<&str> = decided.iter().map(|(_, status, _)| *status).collect();
    assert_eq!(
        statuses,
        ["discarded", "parked", "parked", "retried", "retried"],
        "{decided:?}"
    );
    for _ in 0..2 {
        query_service::startup::rebuild_views(
            app.query_config(&app.group),
            tokio_util::sync::CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(letters().await, decided);
        let view = app.query_json(&format!("/orders/{refused_order}")).await;
        assert_eq!(
            (view["version"].as_i64(), view["total_cents"].as_i64()),
            (Some(2), Some(600))
        );
    }
    // A letter parked from now on is numbered after them.
    app.produce(&key, b"more garbage").await;
    let parked = wait_for("the new letter", || async {
        let list = app.query_json("/admin/dead-letters?status=parked").await;
        (list["items"].as_array()?.len() == 3).then_some(list)
    })
    .await;
    let newest = parked["items"].as_array().unwrap().last().unwrap()["id"]
        .as_i64()
        .unwrap();
    assert!(newest > decided.last().unwrap().0, "{parked}");
}

fn placed(order: Uuid, customer: Uuid, currency: &str) -> OrderPlaced {
    OrderPlaced {
        order_id: order,
        customer_id: customer,
        currency: currency.into(),
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
    }
}

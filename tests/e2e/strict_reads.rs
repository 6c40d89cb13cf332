//! Strict reads from the write model: the command service answers an aggregate's current state
//! at once (no waiting for the views), with an `ETag` that a command's `If-Match` takes; a
//! customer sees only their own.

use e2e::{TestApp, client_as, created_id, order_body, problem, token};
use serde_json::{Value, json};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_model_answers_the_current_state_with_an_etag_for_if_match() {
    let app = TestApp::spawn().await;
    let (customer, shopper) = app.register_customer_with_token().await;
    let command = |path: String| format!("{}{path}", app.command.url);
    let placed = shopper
        .post(command("/orders".into()))
        .json(&order_body(customer))
        .send()
        .await
        .unwrap();
    let order = created_id(placed, "order_id").await;
    let line = json!({ "sku": "C-3", "name": "Cable", "quantity": 1, "unit_price_cents": 199 });
    let added = shopper
        .post(command(format!("/orders/{order}/items")))
        .json(&line)
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 200);

    let read = shopper
        .get(command(format!("/orders/{order}")))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(read.headers()["etag"], "\"2\"");
    assert_eq!(read.headers()["cache-control"], "no-store");
    let etag = read.headers()["etag"].clone();
    let state: Value = read.json().await.unwrap();
    assert_eq!(state["version"], 2);
    assert_eq!(state["status"], "pending");
    assert_eq!(state["customer_id"], customer.to_string());
    assert_eq!(state["items"].as_array().unwrap().len(), 3);

    let confirmed = shopper
        .post(command(format!("/orders/{order}/confirm")))
        .header("if-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        confirmed.status(),
        200,
        "the ETag of a strict read is an If-Match"
    );
    let stale = shopper
        .post(command(format!("/orders/{order}/cancel")))
        .header("if-match", etag)
        .json(&json!({ "reason": "changed my mind" }))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(stale, 412).await["current_version"], 3);

    let me = shopper
        .get(command(format!("/customers/{customer}")))
        .send()
        .await
        .unwrap();
    assert_eq!(me.headers()["etag"], "\"1\"");
    let me: Value = me.json().await.unwrap();
    assert_eq!(
        (me["customer_id"].as_str(), me["version"].as_i64()),
        (Some(customer.to_string().as_str()), Some(1))
    );

    // Someone else's order and customer answer as ids nobody has.
    let stranger = client_as(&token("customer", &Uuid::now_v7().to_string()));
    for path in [format!("/orders/{order}"), format!("/customers/{customer}")] {
        let response = stranger.get(command(path)).send().await.unwrap();
        problem(response, 404).await;
    }
    let unknown = app
        .http
        .get(command(format!("/orders/{}", Uuid::now_v7())))
        .send()
        .await
        .unwrap();
    problem(unknown, 404).await;
}

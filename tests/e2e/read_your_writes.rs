//! Read-your-writes: the consistency token of a command makes a query wait for it, on any
//! replica, bounded.

use e2e::{TestApp, problem};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_consumes_nothing_still_waits_for_the_write_and_answers_it() {
    let app = TestApp::spawn().await;
    // A replica whose consumer reads another (empty) topic: it learns of changes only through
    // PostgreSQL notifications from the replica that applies them.
    let mut config = app.query_config("bystanders");
    config.kafka.topic = format!("{}-elsewhere", app.topic);
    platform::kafka::ensure_topic(&config.kafka, &config.kafka.topic, 1, 1)
        .await
        .unwrap();
    let bystander = app.spawn_query_service_with(config).await;

    let customer = app.register_customer().await;
    for _ in 0..5 {
        let placed = app.place_order(&e2e::order_body(customer)).await;
        let token = placed.headers()["x-consistency-token"]
            .to_str()
            .unwrap()
            .to_owned();
        let order: Value = placed.json().await.unwrap();
        let read = app
            .http
            .get(format!(
                "{}/orders/{}",
                bystander.url,
                order["order_id"].as_str().unwrap()
            ))
            .header("x-consistency-token", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), 200, "the wait covers the write");
        let view: Value = read.json().await.unwrap();
        assert_eq!(view["version"], 1);
    }

    let renamed = app
        .post(
            &format!("/customers/{customer}/rename"),
            &json!({ "name": "Ada Byron" }),
        )
        .await;
    let token = renamed.headers()["x-consistency-token"]
        .to_str()
        .unwrap()
        .to_owned();
    let profile: Value = app
        .http
        .get(format!("{}/customers/{customer}", bystander.url))
        .header("x-consistency-token", token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (profile["name"].as_str(), profile["version"].as_i64()),
        (Some("Ada Byron"), Some(2))
    );
    let by_version = app
        .http
        .get(format!(
            "{}/customers/{customer}?min_version=2",
            bystander.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(by_version.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_never_arrives_is_a_503_with_retry_after_and_bad_tokens_are_400s() {
    let app = TestApp::spawn().await;
    let customer = app.register_customer().await;
    let order = app.place_order_for(customer).await;
    app.wait_for_order(order).await;

    let future = shared_events::ConsistencyToken {
        aggregate_id: order,
        version: 99,
    };
    let behind = app
        .http
        .get(format!("{}/orders/{order}", app.query.url))
        .header("x-consistency-token", future.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(behind.headers()["retry-after"], "1");
    assert_eq!(
        problem(behind, 503).await["type"],
        "/problems/not-yet-consistent"
    );
    problem(
        app.query(&format!("/orders/{order}?min_version=2")).await,
        503,
    )
    .await;
    problem(
        app.query(&format!("/orders/{order}?min_version=zero"))
            .await,
        422,
    )
    .await;

    let malformed = app
        .http
        .get(format!("{}/orders/{order}", app.query.url))
        .header("x-consistency-token", "ct1.nope")
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(malformed, 400).await["type"],
        "/problems/malformed-consistency-token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_tells_a_customer_nothing_about_another_customers_order() {
    let app = TestApp::spawn().await;
    let mut config = app.query_config(&format!("{}-short", app.group));
    config.consistency_wait = std::time::Duration::from_millis(300);
    let query = app.spawn_query_service_with(config).await;
    let bob = app.register_customer().await;
    let theirs = app.place_order_for(bob).await;
    app.wait_for_order(theirs).await;
    let alice = uuid::Uuid::now_v7();
    let alice_http = e2e::client_as(&e2e::token("customer", &alice.to_string()));
    let nobodys = uuid::Uuid::now_v7();

    // The same answer for the order that exists and for the id that names nothing.
    let mut answers = Vec::new();
    for order in [theirs, nobodys] {
        let get = |path: String| alice_http.get(path).send();
        let plain = get(format!("{}/orders/{order}", query.url)).await.unwrap();
        let waited = get(format!("{}/orders/{order}?min_version=1", query.url))
            .await
            .unwrap();
        let token = alice_http
            .get(format!("{}/customers/{alice}/orders", query.url))
            .header("x-consistency-token", format!("ct1.{}.1", order.simple()))
            .send()
            .await
            .unwrap();
        let trail = get(format!(
            "{}/orders/{order}/events?after_version=1",
            app.command.url
        ))
        .await
        .unwrap();
        let mut seen = Vec::new();
        for (response, status) in [(plain, 404), (waited, 503), (token, 503), (trail, 404)] {
            let body = problem(response, status).await;
            // A detail may name the id asked for; everything else must be equal.
            let detail = body["detail"].as_str().unwrap_or_default();
            seen.push((
                body["type"].clone(),
                detail.replace(&order.to_string(), "<id>"),
            ));
        }
        answers.push(seen);
    }
    assert_eq!(answers[0], answers[1]);
}

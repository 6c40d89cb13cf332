//! Every way a frontend can get `POST /orders` wrong is a clear 4xx problem and writes nothing.

use e2e::{TestApp, order_body, problem, problem_fields as fields};
use serde_json::json;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_orders_get_problems_naming_the_field_and_change_nothing() {
    let app = TestApp::spawn().await;
    let post_raw = |body: &'static str, content_type: &'static str| {
        app.http
            .post(format!("{}/orders", app.command.url))
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    let malformed = problem(
        post_raw("{\"customer_id\": ", "application/json")
            .await
            .unwrap(),
        400,
    )
    .await;
    assert_eq!(malformed["type"], "/problems/malformed-json");

    let not_json = problem(
        post_raw("customer_id=1", "application/x-www-form-urlencoded")
            .await
            .unwrap(),
        415,
    )
    .await;
    assert_eq!(not_json["type"], "/problems/unsupported-media-type");

    let missing = problem(app.place_order(&json!({ "items": [] })).await, 422).await;
    assert_eq!(fields(&missing), ["customer_id"]);
    assert!(
        missing["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("missing field"),
        "{missing}"
    );

    let customer_id = Uuid::now_v7();
    let mut zero = order_body(customer_id);
    zero["items"][0]["quantity"] = json!(0);
    zero["items"][1]["quantity"] = json!(-3);
    let zero = problem(app.place_order(&zero).await, 422).await;
    assert_eq!(zero["type"], "/problems/validation");
    assert_eq!(fields(&zero), ["items[0].quantity", "items[1].quantity"]);

    let mut bad_id = order_body(customer_id);
    bad_id["customer_id"] = json!("customer-7");
    let bad_id = problem(app.place_order(&bad_id).await, 422).await;
    assert_eq!(fields(&bad_id), ["customer_id"]);
    assert_eq!(bad_id["errors"][0]["message"], "must be a UUID");

    let mut wrong_type = order_body(customer_id);
    wrong_type["items"][1]["unit_price_cents"] = json!("12.50");
    let wrong_type = problem(app.place_order(&wrong_type).await, 422).await;
    assert_eq!(fields(&wrong_type), ["items[1].unit_price_cents"]);

    let mut huge = order_body(customer_id);
    huge["items"][0]["quantity"] = json!(1e300);
    let huge = problem(app.place_order(&huge).await, 422).await;
    assert_eq!(fields(&huge), ["items[0].quantity"]);

    let mut many = order_body(customer_id);
    many["currency"] = json!("EURO");
    many["items"][1]["sku"] = json!("A-1");
    many["items"][0]["unit_price_cents"] = json!(-1);
    let many = problem(app.place_order(&many).await, 422).await;
    assert_eq!(fields(&many), ["currency", "items[0].unit_price_cents"]);

    let unknown_customer = problem(app.place_order(&order_body(Uuid::now_v7())).await, 422).await;
    assert_eq!(fields(&unknown_customer), ["customer_id"]);

    let oversized = "x".repeat(70 * 1024);
    let too_big = app
        .http
        .post(format!("{}/orders", app.command.url))
        .header("content-type", "application/json")
        .body(format!("{{\"customer_id\": \"{oversized}\"}}"))
        .send()
        .await
        .unwrap();
    problem(too_big, 413).await;

    assert_eq!(app.command_rows("orders").await, 0);
    assert_eq!(app.command_rows("order_items").await, 0);
    assert_eq!(app.command_rows("event_log").await, 0);
    assert_eq!(app.command_rows("outbox").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_methods_and_orders_are_problems_too() {
    let app = TestApp::spawn().await;

    let unknown_path = app
        .http
        .get(format!("{}/nope", app.command.url))
        .send()
        .await
        .unwrap();
    problem(unknown_path, 404).await;

    let wrong_method = app
        .http
        .delete(format!("{}/orders", app.command.url))
        .send()
        .await
        .unwrap();
    problem(wrong_method, 405).await;

    let unknown_order = problem(app.get_order(&Uuid::now_v7().to_string()).await, 404).await;
    assert_eq!(unknown_order["type"], "/problems/not-found");
    problem(app.get_order("not-a-uuid").await, 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_preconditions_and_keys_are_refused_not_ignored() {
    let app = TestApp::spawn().await;
    let customer = app.register_customer().await;
    let send = |name: &'static str, value: &'static [u8]| {
        app.http
            .post(format!("{}/customers/{customer}/rename", app.command.url))
            .header(
                name,
                reqwest::header::HeaderValue::from_bytes(value).unwrap(),
            )
            .json(&json!({ "name": "Someone" }))
            .send()
    };
    let if_match = problem(send("if-match", b"\"1\"\xe9").await.unwrap(), 400).await;
    assert_eq!(if_match["type"], "/problems/malformed-if-match");
    let key = problem(send("idempotency-key", b"key-\xff").await.unwrap(), 400).await;
    assert_eq!(key["type"], "/problems/malformed-idempotency-key");
    assert_eq!(
        app.command_rows("event_log").await,
        1,
        "only the registration"
    );

    for path in [
        "/reports/daily-sales?from=-5000-01-01&to=-5000-01-02",
        "/orders?placed_after=-5000-01-01T00:00:00Z",
        "/dashboards/shipping?cursor=k1.-8000000000000000000.0190a3c6f2c47c4a8f3a2b1c0d9e8f7a",
    ] {
        problem(app.query(path).await, 422).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_and_parameters_are_refused_by_name_not_ignored() {
    let app = TestApp::spawn().await;
    let customer = app.register_customer().await;

    // A misspelt field would otherwise place an order in the default currency.
    let mut typo = order_body(customer);
    typo["curency"] = json!("USD");
    let refused = problem(app.place_order(&typo).await, 422).await;
    assert_eq!(fields(&refused), ["curency"]);
    let mut nested = order_body(customer);
    nested["shipping_address"] = json!({ "nmae": "Ada", "street": "1 Main St", "city": "London",
        "postal_code": "N1", "country": "GB" });
    let refused = problem(app.place_order(&nested).await, 422).await;
    assert_eq!(fields(&refused), ["shipping_address.nmae"]);
    let mut in_a_line = order_body(customer);
    in_a_line["items"][1]["discount"] = json!(5);
    let refused = problem(app.place_order(&in_a_line).await, 422).await;
    assert_eq!(fields(&refused), ["items[1].discount"]);
    assert_eq!(app.command_rows("orders").await, 0);

    // A misspelt filter would otherwise list every order.
    let refused = problem(app.query("/orders?stauts=cancelled").await, 422).await;
    assert_eq!(fields(&refused), ["stauts"]);
    let order = app.place_order_for(customer).await;
    let history = app
        .http
        .get(format!(
            "{}/orders/{order}/events?after_versoin=1",
            app.command.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(fields(&problem(history, 422).await), ["after_versoin"]);
    let health = app
        .http
        .get(format!("{}/healthz?verbose=1", app.command.url))
        .send()
        .await
        .unwrap();
    assert_eq!(fields(&problem(health, 422).await), ["verbose"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_an_operation_does_not_have_is_405_whatever_its_query() {
    let app = TestApp::spawn().await;
    let trace = app
        .http
        .request(
            reqwest::Method::TRACE,
            format!(
                "{}/orders/{}/events?after_version=0",
                app.command.url,
                Uuid::now_v7()
            ),
        )
        .send()
        .await
        .unwrap();
    problem(trace, 405).await;
}

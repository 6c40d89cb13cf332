//! `Idempotency-Key`: retries replay the first response, other requests with the key are refused,
//! and keys expire.

use command_service::commands::{
    Command, CommandContext, CommandError, CommandRequest, Commands, IdempotencyKey,
};
use command_service::domain::values::OrderId;
use command_service::relay::CommitSignal;
use e2e::{TestApp, order_body, problem};
use platform::auth::Caller;
use platform::db::connections::Connections;
use serde_json::json;

async fn post_with_key(
    app: &TestApp,
    path: &str,
    key: &str,
    body: &serde_json::Value,
) -> reqwest::Response {
    app.http
        .post(format!("{}{path}", app.command.url))
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_the_same_key_and_body_replays_the_first_response_byte_for_byte() {
    let app = TestApp::spawn().await;
    let customer = app.register_customer().await;
    let body = order_body(customer);

    let first = post_with_key(&app, "/orders", "retry-1", &body).await;
    let retry = post_with_key(&app, "/orders", "retry-1", &body).await;

    assert_eq!(first.status(), 201);
    assert_eq!(retry.status(), first.status());
    for header in ["location", "etag", "x-consistency-token", "content-type"] {
        assert_eq!(retry.headers()[header], first.headers()[header], "{header}");
    }
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert!(!first.headers().contains_key("idempotent-replayed"));
    assert_eq!(retry.bytes().await.unwrap(), first.bytes().await.unwrap());
    assert_eq!(app.command_rows("orders").await, 1, "the command ran once");

    let other = post_with_key(&app, "/orders", "retry-2", &body).await;
    assert_eq!(other.status(), 201, "another key is another order");
    assert_eq!(app.command_rows("orders").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_with_another_request_is_a_422() {
    let app = TestApp::spawn().await;
    let customer = app.register_customer().await;
    assert_eq!(
        post_with_key(&app, "/orders", "k", &order_body(customer))
            .await
            .status(),
        201
    );
    let mut changed = order_body(customer);
    changed["items"][0]["quantity"] = json!(5);
    let refused = problem(post_with_key(&app, "/orders", "k", &changed).await, 422).await;
    assert_eq!(refused["type"], "/problems/idempotency-key-reused");
    let elsewhere = post_with_key(
        &app,
        &format!("/customers/{customer}/rename"),
        "k",
        &json!({ "name": "X" }),
    )
    .await;
    problem(elsewhere, 422).await;
    assert_eq!(app.command_rows("orders").await, 1);
    let malformed = app
        .http
        .post(format!("{}/orders", app.command.url))
        .header("idempotency-key", "")
        .json(&order_body(customer))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(malformed, 400).await["type"],
        "/problems/malformed-idempotency-key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_while_the_first_request_runs_is_a_409() {
    let app = TestApp::spawn().await;
    let customer = app.register_customer().await;
    // Hold the key's lock as the first request's transaction does while it runs (an admin's
    // key is stored in the admin's scope).
    let mut first = app.command_db.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7305))")
        .bind("admin/in-flight")
        .execute(&mut *first)
        .await
        .unwrap();

    let retry = post_with_key(&app, "/orders", "in-flight", &order_body(customer)).await;
    assert_eq!(retry.headers()["retry-after"], "1");
    assert_eq!(
        problem(retry, 409).await["type"],
        "/problems/idempotency-key-in-use"
    );
    first.rollback().await.unwrap();

    assert_eq!(
        post_with_key(&app, "/orders", "in-flight", &order_body(customer))
            .await
            .status(),
        201
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_key_runs_the_command_again() {
    let app = TestApp::spawn().await;
    let customer = app.register_customer().await;
    let body = order_body(customer);
    let first = post_with_key(&app, "/orders", "old", &body).await;
    assert_eq!(first.status(), 201);
    sqlx::query("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'")
        .execute(&app.command_db)
        .await
        .unwrap();

    let again = post_with_key(&app, "/orders", "old", &body).await;
    assert_eq!(again.status(), 201);
    assert!(!again.headers().contains_key("idempotent-replayed"));
    assert_ne!(again.headers()["location"], first.headers()["location"]);
    assert_eq!(app.command_rows("orders").await, 2);
    let replay = post_with_key(&app, "/orders", "old", &body).await;
    assert_eq!(
        replay.headers()["location"],
        again.headers()["location"],
        "the key now remembers the second order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_command_is_not_remembered() {
    let app = TestApp::spawn().await;
    let customer = app.register_customer().await;
    let order = app.place_order_for(customer).await;
    let path = format!("/orders/{order}/ship");
    let body = json!({ "carrier": "DHL", "tracking_number": "1" });
    problem(post_with_key(&app, &path, "ship-1", &body).await, 409).await;
    assert_eq!(app.command_rows("idempotency_keys").await, 0);
    assert_eq!(
        app.post(&format!("/orders/{order}/confirm"), &json!({}))
            .await
            .status(),
        200
    );
    assert_eq!(
        post_with_key(&app, &path, "ship-1", &body).await.status(),
        200,
        "the retry runs once the rule allows it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_command_releases_its_key_before_it_answers() {
    // Found by scripts/fuzz: a refused (or replayed) command left its transaction to be rolled
    // back when the pool took the connection back, after the answer; a retry sent at once was
    // told that the key was in use. The pool of commands hands a connection back as it is, so
    // a transaction it left open would hold the key until the connection's next use.
    let app = TestApp::spawn().await;
    let connections = Connections::connect(&app.command_db_settings())
        .await
        .unwrap();
    let commands = Commands::new(
        connections,
        CommitSignal::default(),
        std::time::Duration::from_secs(60),
    );
    let key = "refused-at-once";
    let request = CommandRequest {
        command: Command::ConfirmOrder(OrderId(uuid::Uuid::now_v7())),
        expected_versions: None,
        ctx: CommandContext {
            correlation_id: "c".into(),
            causation_id: "c".into(),
            traceparent: None,
            now: chrono::Utc::now(),
            caller: Caller::Admin,
        },
        idempotency: Some(IdempotencyKey {
            key: key.into(),
            fingerprint: b"POST /orders/x/confirm".to_vec(),
        }),
    };
    let refused = commands.execute(request, |_| unreachable!()).await;
    assert!(
        matches!(refused, Err(CommandError::NotFound { .. })),
        "{refused:?}"
    );
    let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 7305))")
        .bind(key)
        .fetch_one(&app.command_db)
        .await
        .unwrap();
    assert!(free, "the refused command still holds the key's lock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_key_never_meets_a_customers_key() {
    let app = TestApp::spawn().await;
    let (customer, shopper) = app.register_customer_with_token().await;
    let body = order_body(customer);
    let theirs = shopper
        .post(format!("{}/orders", app.command.url))
        .header("idempotency-key", "k1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), 201);

    // The customer's key as it is scoped inside: an admin sending it gets a fresh command.
    let admins = post_with_key(&app, "/orders", &format!("{customer}/k1"), &body).await;
    assert_eq!(admins.status(), 201);
    assert!(!admins.headers().contains_key("idempotent-replayed"));
    assert_eq!(app.command_rows("orders").await, 2);
}

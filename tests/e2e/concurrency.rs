//! Optimistic concurrency: `If-Match` preconditions, and races on one aggregate.

use e2e::{TestApp, problem};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_if_match_is_a_412_with_the_current_version() {
    let app = TestApp::spawn().await;
    let customer = app.register_customer().await;
    let rename = |version: &str| {
        app.http
            .post(format!("{}/customers/{customer}/rename", app.command.url))
            .header("if-match", version)
            .json(&json!({ "name": "Someone Else" }))
            .send()
    };

    assert_eq!(rename("\"1\"").await.unwrap().status(), 200);
    let stale = rename("\"1\"").await.unwrap();
    assert_eq!(stale.headers()["etag"], "\"2\"");
    let stale = problem(stale, 412).await;
    assert_eq!(stale["type"], "/problems/version-mismatch");
    assert_eq!(stale["current_version"], 2);
    assert_eq!(rename("\"2\"").await.unwrap().status(), 200);
    assert_eq!(rename("*").await.unwrap().status(), 200);
    let malformed = problem(rename("2").await.unwrap(), 400).await;
    assert_eq!(malformed["type"], "/problems/malformed-if-match");
    assert_eq!(app.command_rows("event_log").await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_many_parallel_commands_on_one_version_exactly_one_wins() {
    let app = TestApp::spawn().await;
    let customer = app.register_customer().await;
    let order = app.place_order_for(customer).await;

    let attempts = (0..16).map(|i| {
        app.http
            .post(format!("{}/orders/{order}/items", app.command.url))
            .header("if-match", "\"1\"")
            .json(&json!({ "sku": format!("RACE-{i}"), "name": "Racer", "quantity": 1, "unit_price_cents": 1 }))
            .send()
    });
    let responses = futures_join_all(attempts).await;
    let mut statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [vec![200], vec![412; 15]].concat());

    let versions: Vec<i64> = sqlx::query_scalar(
        "SELECT aggregate_version FROM event_log WHERE aggregate_id = $1 ORDER BY 1",
    )
    .bind(order)
    .fetch_all(&app.command_db)
    .await
    .unwrap();
    assert_eq!(versions, [1, 2]);
    let lines: i64 = sqlx::query_scalar("SELECT count(*) FROM order_items WHERE order_id = $1")
        .bind(order)
        .fetch_one(&app.command_db)
        .await
        .unwrap();
    assert_eq!(lines, 3, "the two placed lines and the winner's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_if_match_parallel_commands_all_apply_one_after_another() {
    let app = TestApp::spawn().await;
    let customer = app.register_customer().await;
    let order = app.place_order_for(customer).await;
    let attempts = (0..8).map(|_| {
        app.http
            .post(format!("{}/orders/{order}/items", app.command.url))
            .json(
                &json!({ "sku": "SAME", "name": "Counter", "quantity": 1, "unit_price_cents": 1 }),
            )
            .send()
    });
    let mut versions = Vec::new();
    for response in futures_join_all(attempts).await {
        assert_eq!(response.status(), 200);
        versions.push(
            response.json::<Value>().await.unwrap()["version"]
                .as_i64()
                .unwrap(),
        );
    }
    versions.sort_unstable();
    assert_eq!(
        versions,
        (2..=9).collect::<Vec<_>>(),
        "each got its own version"
    );
    let quantity: i32 =
        sqlx::query_scalar("SELECT quantity FROM order_items WHERE order_id = $1 AND sku = 'SAME'")
            .bind(order)
            .fetch_one(&app.command_db)
            .await
            .unwrap();
    assert_eq!(quantity, 8, "no lost update");
}

/// Runs the futures concurrently on the runtime and collects their results in order.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<reqwest::Response>
where
    F: std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut responses = Vec::with_capacity(handles.len());
    for handle in handles {
        responses.push(handle.await.unwrap().unwrap());
    }
    responses
}

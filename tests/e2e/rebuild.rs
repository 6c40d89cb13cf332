//! Rebuilding the views from the start of the topic while queries keep being served.

use e2e::{TestApp, wait_for};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Everything the views hold that a rebuild must reproduce exactly.
async fn snapshot(app: &TestApp) -> Value {
    let orders = app.order_views().await;
    let tables: sqlx::types::Json<Value> = sqlx::query_scalar(
        "SELECT jsonb_build_object(
             'profiles', (SELECT coalesce(jsonb_agg(jsonb_build_array(customer_id, name, email, version, order_count,
                                                                      open_orders, lifetime_value, last_order_at) ORDER BY customer_id), '[]')
                          FROM customer_profile),
             'sales', (SELECT coalesce(jsonb_agg(to_jsonb(s) ORDER BY day, currency), '[]') FROM daily_sales s))",
    )
    .fetch_one(&app.query_db)
    .await
    .unwrap();
    json!({ "orders": orders, "tables": tables.0 })
}

async fn populate(app: &TestApp) -> Vec<Uuid> {
    let customer = app.register_customer().await;
    let mut orders = Vec::new();
    for i in 0..8 {
        let order = app.place_order_for(customer).await;
        if i % 2 == 0 {
            assert_eq!(
                app.post(&format!("/orders/{order}/confirm"), &json!({}))
                    .await
                    .status(),
                200
            );
        }
        orders.push(order);
    }
    let last = *orders.last().unwrap();
    app.wait_for_order(last).await;
    wait_for("the confirmations in the views", || async {
        let profile = app.query_json(&format!("/customers/{customer}")).await;
        (profile["lifetime_value"][0]["amount_cents"] == 12000).then_some(())
    })
    .await;
    orders
}

async fn rebuild_status(app: &TestApp) -> Value {
    app.query_json("/admin/projections").await["rebuild"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_swaps_in_identical_views_while_queries_keep_answering() {
    let app = TestApp::spawn().await;
    let orders = populate(&app).await;
    let before = snapshot(&app).await;

    let stop = Arc::new(AtomicBool::new(false));
    let (reads, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let reader = {
        let (http, url, stop, reads, failures, orders) = (
            app.http.clone(),
            app.query.url.clone(),
            stop.clone(),
            reads.clone(),
            failures.clone(),
            orders.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                for order in &orders {
                    let status = http
                        .get(format!("{url}/orders/{order}"))
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    reads.fetch_add(1, Ordering::Relaxed);
                    if status != 200 {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };

    let started = app
        .http
        .post(format!("{}/admin/projections/rebuild", app.query.url))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let id = started.json::<Value>().await.unwrap()["rebuild_id"]
        .as_i64()
        .unwrap();
    let second = app
        .http
        .post(format!("{}/admin/projections/rebuild", app.query.url))
        .send()
        .await
        .unwrap();
    assert_eq!(e2e::problem(second, 409).await["rebuild_id"], id);

    let status = wait_for("the rebuild to swap", || async {
        let status = rebuild_status(&app).await;
        assert_ne!(status["status"], "failed", "{status}");
        (status["status"] == "swapped").then_some(status)
    })
    .await;
    assert_eq!(status["id"], id);
    stop.store(true, Ordering::Relaxed);
    reader.await.unwrap();
    assert!(reads.load(Ordering::Relaxed) > 0);
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "every read during the rebuild was a 200"
    );
    assert_eq!(
        snapshot(&app).await,
        before,
        "the rebuilt views are the same"
    );

    // The live projector goes on in the swapped-in views.
    let customer = app.register_customer().await;
    let after = app.place_order_for(customer).await;
    app.wait_for_order(after).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rebuild_command_does_the_same_without_http() {
    let app = TestApp::spawn().await;
    populate(&app).await;
    let before = snapshot(&app).await;
    query_service::startup::rebuild_views(app.query_config(&app.group), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(rebuild_status(&app).await["status"], "swapped");
    assert_eq!(snapshot(&app).await, before);
}

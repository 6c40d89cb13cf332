//! Two query-service replicas share the topic's partitions in one consumer group. One is
//! SIGKILLed while orders stream in: it leaves no word, so the broker hands its partitions to
//! the survivor only when its group session times out. The survivor then finishes the views,
//! with every event applied exactly once.

use std::time::Instant;

use e2e::{TestApp, wait_for};
use query_service::verify::verify;
use serde_json::{Value, json};

/// The test topic's partitions (the command service creates it with three).
const PARTITIONS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_survivor_takes_over_a_killed_replicas_partitions_and_finishes_the_views() {
    let app = TestApp::spawn().await;
    let doomed = app.spawn_query_process(&app.group).await;
    wait_for("both replicas to own partitions", || async {
        let survivor = app.partitions_of(&app.query.url).await?;
        let other = app.partitions_of(&doomed.url).await?;
        let both = !survivor.is_empty() && !other.is_empty();
        (both && survivor.len() + other.len() == PARTITIONS).then_some(())
    })
    .await;

    let mut customers = Vec::new();
    for _ in 0..6 {
        customers.push(app.register_customer().await);
    }
    let mut orders = Vec::new();
    let mut doomed = Some(doomed);
    let mut killed_at = None;
    for n in 0..48 {
        let order = app.place_order_for(customers[n % customers.len()]).await;
        let confirm = app
            .post(&format!("/orders/{order}/confirm"), &json!({}))
            .await;
        assert!(confirm.status().is_success(), "{}", confirm.status());
        orders.push(order);
        if n == 16 {
            doomed.take().expect("not killed yet").kill();
            killed_at = Some(Instant::now());
        }
    }

    wait_for("the survivor to own every partition", || async {
        let owned = app.partitions_of(&app.query.url).await?;
        (owned.len() == PARTITIONS).then_some(())
    })
    .await;
    let killed_at = killed_at.expect("killed mid-stream");
    eprintln!(
        "partitions moved to the survivor {:?} after the kill",
        killed_at.elapsed()
    );
    app.wait_until_views_caught_up().await;

    let report = verify(&app.command_db, &app.query_db, 0).await.unwrap();
    assert_eq!(report.problems(), 0, "{report:#?}");
    let views = app.order_views().await;
    assert_eq!(views.len(), orders.len());
    for (order, version, body) in views {
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (version, body["status"].as_str()),
            (2, Some("confirmed")),
            "{order}"
        );
    }
}

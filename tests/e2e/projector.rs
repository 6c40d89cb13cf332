//! The projector's exactly-once effect: duplicates and replays leave the views unchanged, views
//! that lose their last commits are caught up again, and lanes applying a backlog side by side
//! give the views a one-at-a-time fold gives.

use e2e::TestApp;
use serde_json::json;

/// Empties the views and their recorded offsets, as after restoring an empty read database.
async fn empty_the_views(app: &TestApp) {
    sqlx::query(
        "TRUNCATE order_detail, applied_versions, consumer_offsets, customer_profile, daily_sales",
    )
    .execute(&app.query_db)
    .await
    .unwrap();
}

/// Empties the views and restarts the query service in the same consumer group, whose committed
/// offsets on the broker are at the end of the topic.
async fn empty_the_views_and_restart(app: &mut TestApp) {
    empty_the_views(app).await;
    let group = app.group.clone();
    app.restart_query_service_in(&group).await;
}

/// The partitions the views recorded an applied message of.
async fn recorded_partitions(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM consumer_offsets WHERE next_offset > 0")
        .fetch_one(&app.query_db)
        .await
        .unwrap()
}

/// Today's orders placed and confirmed in the sales view.
async fn sales(app: &TestApp) -> (i64, i64) {
    sqlx::query_as(
        "SELECT coalesce(sum(orders_placed), 0)::bigint, coalesce(sum(orders_confirmed), 0)::bigint FROM daily_sales",
    )
    .fetch_one(&app.query_db)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_events_and_replayed_batches_leave_the_views_unchanged() {
    let mut app = TestApp::spawn().await;
    // One customer, so every event lands in one partition, in order: once a later order is
    // visible, everything before it in the partition has been consumed.
    let customer_id = app.register_customer().await;
    let mut orders = Vec::new();
    for _ in 0..3 {
        orders.push(app.place_order_for(customer_id).await);
    }
    for order in &orders {
        app.wait_for_order(*order).await;
    }
    let mut expected = app.order_views().await;
    assert_eq!(expected.len(), 3);

    // The relay crashed after the broker acknowledged but before it marked the events published:
    // it publishes all of them again.
    sqlx::query("INSERT INTO outbox (position) SELECT position FROM event_log")
        .execute(&app.command_db)
        .await
        .unwrap();
    app.notify_relay().await;
    app.wait_for_empty_outbox().await;
    let sentinel = app.place_order_for(customer_id).await;
    app.wait_for_order(sentinel).await;
    let views = app.order_views().await;
    expected.extend(views.iter().filter(|(id, _, _)| *id == sentinel).cloned());
    expected.sort();
    assert_eq!(views, expected, "duplicates changed a view");
    assert_eq!(
        app.read_topic(7).await.len(),
        7,
        "3 orders, 3 duplicates and the sentinel were published"
    );

    // A whole replay from the start of the topic by a new consumer group: the recorded offsets
    // make the projector skip every message it has applied.
    app.restart_query_service_in("replay-with-offsets").await;
    let sentinel = app.place_order_for(customer_id).await;
    app.wait_for_order(sentinel).await;
    let views = app.order_views().await;
    expected.extend(views.iter().filter(|(id, _, _)| *id == sentinel).cloned());
    expected.sort();
    assert_eq!(
        views, expected,
        "a replay with recorded offsets changed a view"
    );

    // The same replay after the recorded offsets were lost: the applied versions catch it.
    // (The running projector is idle: nothing new is published until the sentinel.)
    sqlx::query("DELETE FROM consumer_offsets")
        .execute(&app.query_db)
        .await
        .unwrap();
    app.restart_query_service_in("replay-without-offsets").await;
    let sentinel = app.place_order_for(customer_id).await;
    app.wait_for_order(sentinel).await;
    let views = app.order_views().await;
    expected.extend(views.iter().filter(|(id, _, _)| *id == sentinel).cloned());
    expected.sort();
    assert_eq!(views, expected, "a replay without offsets changed a view");
    assert!(views.iter().all(|(_, version, _)| *version == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_start_where_the_database_says_not_where_the_broker_does() {
    let mut app = TestApp::spawn().await;
    let customer = app.register_customer().await;
    let orders = [
        app.place_order_for(customer).await,
        app.place_order_for(customer).await,
    ];
    for order in orders {
        app.wait_for_order(order).await;
    }
    let before = app.order_views().await;

    // The views are reset (as after restoring an empty read database). The group's committed
    // offsets on the broker are at the end of the topic; the database has none.
    empty_the_views_and_restart(&mut app).await;
    for order in orders {
        app.wait_for_order(order).await;
    }
    assert_eq!(
        app.order_views().await,
        before,
        "replayed from the beginning into the same views"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_that_lose_their_last_commits_are_caught_up_by_the_running_projector() {
    let app = TestApp::spawn().await;
    let mut orders = 0;
    while orders < 6 || recorded_partitions(&app).await < 3 {
        let customer = app.register_customer().await;
        app.place_order_for(customer).await;
        orders += 1;
        app.wait_until_views_caught_up().await;
    }

    // PostgreSQL crashed and lost the projector's last commits (it does not wait for the disk):
    // here all of them. The views and their offsets are back where they stood, empty, while the
    // consumer goes on from where it read. One partition gets a new message, whose batch finds
    // the offsets below it; the other partitions stay quiet until their offsets are checked.
    empty_the_views(&app).await;
    let customer = app.register_customer().await;
    app.place_order_for(customer).await;
    app.wait_until_views_caught_up().await;

    let report = query_service::verify::verify(&app.command_db, &app.query_db, 0)
        .await
        .unwrap();
    assert!(report.passed, "{report}");
    assert_eq!(
        sales(&app).await,
        (orders + 1, 0),
        "each order counted once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lanes_applying_a_backlog_side_by_side_give_the_one_at_a_time_fold() {
    let mut app = TestApp::spawn().await;
    // Customers until every partition of the topic (3), and so both lanes of the test's query
    // service, holds some; every order is confirmed, so every batch adds to the one row of
    // today's sales that all lanes share.
    let mut orders = Vec::new();
    while orders.len() < 24 || recorded_partitions(&app).await < 3 {
        let customer = app.register_customer().await;
        for _ in 0..2 {
            orders.push(app.place_order_for(customer).await);
        }
        app.wait_until_views_caught_up().await;
    }
    for order in &orders {
        let confirmed = app
            .post(&format!("/orders/{order}/confirm"), &json!({}))
            .await;
        assert!(confirmed.status().is_success(), "{}", confirmed.status());
    }
    app.wait_until_views_caught_up().await;

    // The views are reset: the whole topic is a backlog on every partition, applied again by
    // the lanes side by side.
    empty_the_views_and_restart(&mut app).await;
    app.wait_until_views_caught_up().await;

    assert_eq!(
        recorded_partitions(&app).await,
        3,
        "the backlog spans every partition"
    );
    let report = query_service::verify::verify(&app.command_db, &app.query_db, 0)
        .await
        .unwrap();
    assert!(report.passed, "{report}");
    let count = orders.len() as i64;
    assert_eq!(sales(&app).await, (count, count), "each sale counted once");
}

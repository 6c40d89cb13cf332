//! The relay publishes every committed event, whatever order transactions commit in.

use command_service::store::event_log;
use e2e::{TestApp, VACUUM_EVERY, order_placed, wait_for};
use rdkafka::message::{Headers, Message};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_committed_in_reverse_position_order_are_both_published() {
    let app = TestApp::spawn().await;
    let customer_id = Uuid::now_v7();
    let (earlier, later) = (order_placed(customer_id), order_placed(customer_id));

    // The earlier transaction takes the lower position but stays open…
    let mut first = app.command_db.begin().await.unwrap();
    event_log::append(&mut first, std::slice::from_ref(&earlier), None)
        .await
        .unwrap();
    // …while a later one, with a higher position, commits and gets published.
    let mut second = app.command_db.begin().await.unwrap();
    event_log::append(&mut second, std::slice::from_ref(&later), None)
        .await
        .unwrap();
    second.commit().await.unwrap();
    app.notify_relay().await;
    app.wait_for_order(later.aggregate_id).await;
    assert_eq!(
        app.get_order(&earlier.aggregate_id.to_string())
            .await
            .status(),
        404
    );

    // A relay that tracked a high-water mark over positions would now skip the earlier event.
    first.commit().await.unwrap();
    app.notify_relay().await;
    app.wait_for_order(earlier.aggregate_id).await;

    let positions: Vec<(Uuid, i64)> =
        sqlx::query_as("SELECT aggregate_id, position FROM event_log ORDER BY position")
            .fetch_all(&app.command_db)
            .await
            .unwrap();
    assert_eq!(
        positions.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [earlier.aggregate_id, later.aggregate_id]
    );
    app.wait_for_empty_outbox().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_committed_without_a_notification_are_published_by_the_fallback_poll() {
    let app = TestApp::spawn().await;
    let lost = order_placed(Uuid::now_v7());
    let mut tx = app.command_db.begin().await.unwrap();
    event_log::append(&mut tx, std::slice::from_ref(&lost), None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // No NOTIFY, as when a replica crashes between its commit and its notification.
    app.wait_for_order(lost.aggregate_id).await;
    app.wait_for_empty_outbox().await;
}

/// Relay leader locks held in the write database (the relay's advisory lock key is 0x72656c6179).
async fn relay_leaders(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks
         WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND classid = 114 AND objid = 1701601657",
    )
    .fetch_one(&app.command_db)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_relay_leads_and_a_standby_takes_over_when_it_dies() {
    let mut app = TestApp::spawn().await;
    let standby = app.spawn_command_service().await;
    e2e::wait_for("one relay leader", || async {
        (relay_leaders(&app).await == 1).then_some(())
    })
    .await;
    let customer = app.register_customer().await;
    let before = app.place_order_for(customer).await;
    app.wait_for_order(before).await;
    assert_eq!(
        relay_leaders(&app).await,
        1,
        "two replicas, one active relay"
    );

    // The leader crashes; commands now go to the standby.
    let leader = std::mem::replace(&mut app.command, standby);
    leader.kill().await;
    let after = app.place_order_for(customer).await;
    app.wait_for_order(after).await;
    app.wait_for_empty_outbox().await;
    assert_eq!(relay_leaders(&app).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceparent_becomes_the_correlation_id_and_travels_as_a_kafka_header() {
    let app = TestApp::spawn().await;
    let customer = app.register_customer().await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = app
        .http
        .post(format!("{}/orders", app.command.url))
        .header("traceparent", traceparent)
        .header("x-request-id", "req-7")
        .json(&e2e::order_body(customer))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let messages = app.read_topic(2).await;
    let placed = &messages[1];
    let header = |name: &str| {
        placed
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == name))
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(header("traceparent").as_deref(), Some(traceparent));
    assert_eq!(
        header("correlation-id").as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    let envelope: shared_events::EventEnvelope =
        serde_json::from_slice(placed.payload().unwrap()).unwrap();
    assert_eq!(
        envelope.correlation_id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(envelope.causation_id.as_deref(), Some("req-7"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_vacuums_the_outbox_after_publishing_enough_events() {
    let app = TestApp::spawn().await;
    let vacuums = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'outbox'",
        )
        .fetch_one(&app.command_db)
        .await
        .unwrap()
    };
    assert_eq!(
        vacuums().await,
        0,
        "this server's autovacuum got there first"
    );
    let customer = app.register_customer().await;
    for _ in 0..VACUUM_EVERY {
        app.place_order_for(customer).await;
    }
    app.wait_for_empty_outbox().await;
    wait_for("a vacuum of the outbox", || async {
        // Statistics are a snapshot per transaction; a fresh query sees new counts.
        (vacuums().await > 0).then_some(())
    })
    .await;
}

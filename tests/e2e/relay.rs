//! The relay publishes every committed event, whatever order transactions commit in.

use command_service::store::event_log;
use e2e::{TestApp, order_placed};
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

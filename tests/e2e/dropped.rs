//! A client that goes away changes nothing halfway: a command runs to its commit or rollback
//! whatever happens to the connection it came on.

use e2e::{TestApp, order_body, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

/// Sends `request` (a whole HTTP/1.1 request) on a connection of its own and returns the
/// connection, still open.
async fn send(url: &str, request: &str) -> TcpStream {
    let mut stream = TcpStream::connect(url.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

/// Hangs up, and returns when the server noticed and closed its side: whatever it was doing for
/// the request has lost its listener.
async fn hang_up(mut stream: TcpStream) {
    stream.shutdown().await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_whose_client_hung_up_still_commits() {
    let app = TestApp::spawn().await;
    let customer = app.register_customer().await;
    let order = app.place_order_for(customer).await;

    // Hold the order's row, so the confirmation waits inside its transaction.
    let mut blocker = app.command_db.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM orders WHERE id = $1 FOR UPDATE")
        .bind(order)
        .execute(&mut *blocker)
        .await
        .unwrap();
    let token = e2e::token("admin", "e2e-admin");
    let confirm = format!(
        "POST /orders/{order}/confirm HTTP/1.1\r\nHost: e2e\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let connection = send(&app.command.url, &confirm).await;
    wait_for("the confirmation to wait for the order's lock", || async {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&app.command_db)
        .await
        .ok()?;
        (waiting > 0).then_some(())
    })
    .await;
    hang_up(connection).await;
    blocker.commit().await.unwrap();

    wait_for("the confirmation to commit", || async {
        let version: i64 = sqlx::query_scalar("SELECT version FROM orders WHERE id = $1")
            .bind(order)
            .fetch_one(&app.command_db)
            .await
            .ok()?;
        (version == 2).then_some(())
    })
    .await;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM event_log WHERE aggregate_id = $1")
        .bind(order)
        .fetch_one(&app.command_db)
        .await
        .unwrap();
    assert_eq!(events, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_dropped_at_random_points_leave_the_write_model_equal_to_the_event_log() {
    let app = TestApp::spawn().await;
    let service = app.spawn_command_process().await;
    let mut customers = Vec::new();
    for _ in 0..4 {
        customers.push(app.register_customer().await);
    }
    // A deterministic spread of hang-up points, from before the body is complete to well after
    // the command could have committed.
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut drops = Vec::new();
    for n in 0..200 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let body = order_body(customers[n % customers.len()]).to_string();
        let request = format!(
            "POST /orders HTTP/1.1\r\nHost: e2e\r\nContent-Type: application/json\r\n\
             Idempotency-Key: {}\r\nContent-Length: {}\r\n\r\n{body}",
            Uuid::now_v7(),
            body.len()
        );
        let cut = (seed % (request.len() as u64 + 200)) as usize;
        let pause = std::time::Duration::from_micros(seed % 20_000);
        let url = service.url.clone();
        drops.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(url.trim_start_matches("http://"))
                .await
                .unwrap();
            // Part of the request (or all of it), a pause, then gone.
            let sent = &request.as_bytes()[..cut.min(request.len())];
            stream.write_all(sent).await.unwrap();
            tokio::time::sleep(pause).await;
        }));
    }
    for dropped in drops {
        dropped.await.unwrap();
    }

    // Every command that started has ended: nothing of the service's is in a transaction.
    wait_for("the service's transactions to end", || async {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND xact_start IS NOT NULL",
        )
        .fetch_one(&app.command_db)
        .await
        .ok()?;
        (open == 0).then_some(())
    })
    .await;
    // Each aggregate's version in the write model is the number of its events, and each event
    // belongs to an aggregate there.
    let mismatched: i64 = sqlx::query_scalar(
        "WITH written AS (SELECT id, version FROM orders UNION ALL SELECT id, version FROM customers),
              logged AS (SELECT aggregate_id AS id, count(*) AS events, max(aggregate_version) AS last
                         FROM event_log GROUP BY aggregate_id)
         SELECT count(*) FROM written FULL JOIN logged USING (id)
         WHERE written.version IS DISTINCT FROM logged.last OR logged.events <> logged.last",
    )
    .fetch_one(&app.command_db)
    .await
    .unwrap();
    assert_eq!(mismatched, 0);
    let warnings: Vec<String> = service
        .log()
        .into_iter()
        .filter(|line| line.contains("transaction in progress"))
        .collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
}

//! Test harness: starts the real command and query services in-process on random ports, against
//! a fresh pair of databases on the real PostgreSQL server and a fresh topic on the real broker,
//! so tests can run in parallel without seeing each other.
//!
//! `DATABASE_URL` (any database on the server; default `postgres://postgres@127.0.0.1:5432/postgres`)
//! and `KAFKA_BROKERS` (default `127.0.0.1:9092`) say where the servers are; the README's test
//! command starts them. Logs appear only with `TEST_LOG=1`.

use std::future::Future;
use std::time::Duration;

mod app;
mod assertions;
mod fixtures;
mod tokens;

pub use app::{Running, ServiceProcess, TestApp, VACUUM_EVERY, binary};
pub use assertions::{created_id, problem, problem_fields};
pub use fixtures::{Script, order_body, order_placed};
pub use tokens::{
    JWT_AUDIENCE, JWT_ISSUER, JWT_SECRET, client_as, edge_settings, signed_token, token,
};

/// How long `wait_for` waits before failing the test.
pub const EVENTUALLY: Duration = Duration::from_secs(30);

/// Polls `check` every 20 ms until it returns `Some`, failing the test with `what` after
/// [`EVENTUALLY`].
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {EVENTUALLY:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

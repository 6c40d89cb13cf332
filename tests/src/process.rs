//! A query-service replica as a process of its own: the binary `scripts/test` builds
//! (`QUERY_SERVICE_BIN`), so a test can SIGKILL it. A killed replica closes nothing and sends no
//! goodbye, so the broker takes its partitions away only when its group session times out,
//! which an in-process service (whose consumer leaves the group when dropped) cannot show.

use std::process::{Child, Command, Stdio};

use crate::{TestApp, wait_for};

/// A running query-service process; killed when dropped.
#[derive(Debug)]
pub struct ReplicaProcess {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    child: Child,
}

impl ReplicaProcess {
    /// SIGKILL, and reap it.
    pub fn kill(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ReplicaProcess {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// The query-service binary: `QUERY_SERVICE_BIN`, else the debug build in the workspace's
/// target directory.
fn binary() -> String {
    std::env::var("QUERY_SERVICE_BIN").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/query-service").to_owned()
    })
}

impl TestApp {
    /// Starts a query-service process on this test's read database and topic, in consumer group
    /// `group` (authentication off: it is reached only by the test), and waits until it is ready.
    pub async fn spawn_query_process(&self, group: &str) -> ReplicaProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let output = || {
            if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            }
        };
        let child = Command::new(binary())
            .env_clear()
            .env(
                "DATABASE_URL",
                self.names
                    .server
                    .with_database(&self.names.query_db)
                    .expose(),
            )
            .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("KAFKA_BROKERS", &self.names.brokers)
            .env("KAFKA_TOPIC", &self.topic)
            .env("KAFKA_CONSUMER_GROUP", group)
            .env(
                "KAFKA_DEAD_LETTER_TOPIC",
                format!("{}.dead-letters", self.topic),
            )
            .env("AUTH_MODE", "disabled")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(output())
            .stderr(output())
            .spawn()
            .unwrap_or_else(|e| panic!("start {} (built by scripts/test): {e}", binary()));
        let replica = ReplicaProcess {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        let readyz = format!("{}/readyz", replica.url);
        wait_for(&format!("{readyz} to answer 200"), || async {
            let response = self.http.get(&readyz).send().await.ok()?;
            response.status().is_success().then_some(())
        })
        .await;
        replica
    }

    /// The partitions the query service at `url` consumes now (its `GET /admin/projections`).
    pub async fn partitions_of(&self, url: &str) -> Option<Vec<i64>> {
        let status: serde_json::Value = self
            .http
            .get(format!("{url}/admin/projections"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let partitions = status["partitions"].as_array()?;
        Some(
            partitions
                .iter()
                .filter(|p| p["assigned_here"] == true)
                .filter_map(|p| p["partition"].as_i64())
                .collect(),
        )
    }
}

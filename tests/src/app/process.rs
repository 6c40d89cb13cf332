//! The services as processes of their own: the binaries `scripts/test` builds, so a test can
//! SIGKILL one or read what it logs. A killed query service closes nothing and sends no goodbye,
//! so the broker takes its partitions away only when its group session times out, which an
//! in-process service (whose consumer leaves the group when dropped) cannot show.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use super::TestApp;
use crate::wait_for;

/// A running service process; killed when dropped.
#[derive(Debug)]
pub struct ServiceProcess {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl ServiceProcess {
    /// SIGKILL, and reap it.
    pub fn kill(mut self) {
        self.stop_now();
    }

    /// The lines it logged so far (JSON, one event each).
    pub fn log(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn stop_now(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// A service binary, `command-service` or `query-service`: `COMMAND_SERVICE_BIN` /
/// `QUERY_SERVICE_BIN` (set by `scripts/test`), else the debug build in the workspace's target
/// directory.
pub fn binary(service: &str) -> String {
    let variable = format!("{}_BIN", service.to_ascii_uppercase().replace('-', "_"));
    std::env::var(variable)
        .unwrap_or_else(|_| format!("{}/../target/debug/{service}", env!("CARGO_MANIFEST_DIR")))
}

impl TestApp {
    /// Starts a query-service process on this test's read database and topic, in consumer group
    /// `group`, and waits until it is ready.
    pub async fn spawn_query_process(&self, group: &str) -> ServiceProcess {
        let database = self.names.server.with_database(&self.names.query_db);
        let vars = [
            ("DATABASE_URL", database.expose().to_owned()),
            ("KAFKA_CONSUMER_GROUP", group.to_owned()),
            (
                "KAFKA_DEAD_LETTER_TOPIC",
                format!("{}.dead-letters", self.topic),
            ),
            ("RATE_LIMIT_PER_SECOND", "0".into()),
        ];
        self.spawn_process("query-service", &vars).await
    }

    /// Starts a command-service process on this test's write database and topic (no rate limit),
    /// and waits until it is ready.
    pub async fn spawn_command_process(&self) -> ServiceProcess {
        self.spawn_command_process_with(&[("RATE_LIMIT_PER_SECOND", "0".into())])
            .await
    }

    /// [`TestApp::spawn_command_process`] with `vars` and the service's own defaults otherwise.
    pub async fn spawn_command_process_with(&self, vars: &[(&str, String)]) -> ServiceProcess {
        let database = self.names.server.with_database(&self.names.command_db);
        let mut all = vec![("DATABASE_URL", database.expose().to_owned())];
        all.extend(vars.iter().cloned());
        self.spawn_process("command-service", &all).await
    }

    /// Starts `service` on a free port with this test's broker and topic and `vars`,
    /// authentication off (it is reached only by the test) and JSON logs kept in memory (and
    /// shown with `TEST_LOG`).
    async fn spawn_process(&self, service: &str, vars: &[(&str, String)]) -> ServiceProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new(binary(service))
            .env_clear()
            .envs(vars.iter().map(|(name, value)| (*name, value.as_str())))
            .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("KAFKA_BROKERS", &self.names.brokers)
            .env("KAFKA_TOPIC", &self.topic)
            .env("KAFKA_TOPIC_PARTITIONS", "3")
            .env("AUTH_MODE", "disabled")
            .env("LOG_FORMAT", "json")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {service} (built by scripts/test): {e}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped");
        let lines = log.clone();
        let show = std::env::var_os("TEST_LOG").is_some();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if show {
                    eprintln!("{line}");
                }
                lines
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(line);
            }
        });
        let process = ServiceProcess {
            url: format!("http://127.0.0.1:{port}"),
            child,
            log,
        };
        let readyz = format!("{}/readyz", process.url);
        wait_for(&format!("{readyz} to answer 200"), || async {
            let response = self.http.get(&readyz).send().await.ok()?;
            response.status().is_success().then_some(())
        })
        .await;
        process
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

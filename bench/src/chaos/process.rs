//! The processes a chaos run owns: service replicas and the broker, started, SIGKILLed and
//! started again as child processes, each appending to its own log file.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// Where everything is: read from the variables `scripts/chaos` sets.
#[derive(Debug, Clone)]
pub struct Env {
    /// The directory of the service binaries (`BIN`).
    pub bin: PathBuf,
    /// The write database (`COMMAND_DATABASE_URL`).
    pub command_db: String,
    /// The read database (`QUERY_DATABASE_URL`).
    pub query_db: String,
    /// The broker's bootstrap address (`KAFKA_BROKERS`).
    pub brokers: String,
    /// The event topic (`KAFKA_TOPIC`, default `order-events`).
    pub topic: String,
    /// A program that runs the broker in the foreground on its durable log directory
    /// (`CHAOS_BROKER_CMD`).
    pub broker_cmd: String,
    /// A shell command restarting PostgreSQL (`CHAOS_PG_RESTART`).
    pub pg_restart: String,
    /// Where the processes' logs go (`CHAOS_LOGS`).
    pub logs: PathBuf,
}

impl Env {
    /// Reads the variables; an error names the first one missing.
    pub fn from_env() -> anyhow::Result<Env> {
        let var = |name: &str| {
            std::env::var(name)
                .with_context(|| format!("{name} is required (scripts/chaos sets it)"))
        };
        Ok(Env {
            bin: var("BIN")?.into(),
            command_db: var("COMMAND_DATABASE_URL")?,
            query_db: var("QUERY_DATABASE_URL")?,
            brokers: var("KAFKA_BROKERS")?,
            topic: std::env::var("KAFKA_TOPIC").unwrap_or_else(|_| "order-events".into()),
            broker_cmd: var("CHAOS_BROKER_CMD")?,
            pg_restart: var("CHAOS_PG_RESTART")?,
            logs: var("CHAOS_LOGS")?.into(),
        })
    }
}

/// Partitions of the run's topic: two for each of the three query-service replicas.
pub const PARTITIONS: i32 = 6;

/// A child process the run starts, kills and starts again.
#[derive(Debug)]
pub struct Process {
    /// The name in the summary and of its log file.
    pub name: String,
    program: String,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    port: Option<u16>,
}

impl Process {
    /// A service replica on a port of its own; `binary` is `command-service` or `query-service`.
    pub fn service(
        binary: &str,
        name: &str,
        database_url: &str,
        env: &Env,
    ) -> anyhow::Result<Process> {
        let port = free_port()?;
        let vars = [
            ("DATABASE_URL", database_url.to_owned()),
            ("HTTP_ADDR", format!("127.0.0.1:{port}")),
            ("KAFKA_BROKERS", env.brokers.clone()),
            ("KAFKA_TOPIC", env.topic.clone()),
            ("KAFKA_TOPIC_PARTITIONS", PARTITIONS.to_string()),
            ("AUTH_MODE", "disabled".into()),
            ("RATE_LIMIT_PER_SECOND", "0".into()),
            ("LOG_FORMAT", "json".into()),
            ("RUST_LOG", "warn,query_service::consumer=info".into()),
            // Faster recovery checks than production defaults, so faults follow each other closely.
            ("RELAY_POLL_INTERVAL_MS", "200".into()),
        ];
        Ok(Process {
            name: name.to_owned(),
            program: env.bin.join(binary).to_string_lossy().into_owned(),
            env: vars.map(|(k, v)| (k.to_owned(), v)).to_vec(),
            log: env.logs.join(format!("{name}.log")),
            child: None,
            port: Some(port),
        })
    }

    /// The broker: `env.broker_cmd` (it logs to its own file).
    pub fn broker(env: &Env) -> Process {
        Process {
            name: "broker".into(),
            program: env.broker_cmd.clone(),
            env: Vec::new(),
            log: env.logs.join("broker-console.log"),
            child: None,
            port: None,
        }
    }

    /// The service's base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port.unwrap_or_default())
    }

    /// Whether it was started and not killed since.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts it in the background.
    pub fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("open {}", self.log.display()))?;
        let child = Command::new(&self.program)
            .envs(self.env.iter().cloned())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", self.name))?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL: no chance to finish anything, leave a consumer group or close a connection.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// SIGTERM, and wait (at most 30 s, then SIGKILL) for it to exit.
    pub async fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await;
            }
            if tokio::time::timeout(Duration::from_secs(30), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }

    /// Waits until the service answers `/healthz` (at most two minutes).
    pub async fn wait_until_live(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(120) {
            let live = http.get(format!("{}/healthz", self.url())).send().await;
            if live.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("{} did not come up; see {}", self.name, self.log.display())
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

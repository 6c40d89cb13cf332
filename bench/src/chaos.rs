//! `bench chaos`: a steady stream of mixed commands against two command-service instances and a
//! query service, while the run kills and restarts them, the broker and PostgreSQL at random
//! moments. Every command is retried with its `Idempotency-Key` until it is answered; at the
//! end the views must equal what the event log says (`query_service::verify`), with no dead
//! letters but the poison the run injected itself.
//!
//! The run owns the services and the broker as child processes; `scripts/chaos` prepares a
//! private PostgreSQL cluster and says how to restart it and how to start the broker:
//! `BIN` (the service binaries), `COMMAND_DATABASE_URL`, `QUERY_DATABASE_URL`,
//! `KAFKA_BROKERS`, `CHAOS_BROKER_CMD` (a shell command that `exec`s the broker in the foreground),
//! `CHAOS_PG_RESTART` (a shell command restarting PostgreSQL) and `CHAOS_LOGS` (a directory).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;
use uuid::Uuid;

/// How long one command may keep failing before the run gives up on it.
const COMMAND_DEADLINE: Duration = Duration::from_secs(180);
/// How often the broker's liveness is probed, and how many probes in a row may fail before it
/// is taken for failed and restarted (see [`watch_broker`]).
const BROKER_PROBE: Duration = Duration::from_secs(2);
const BROKER_PROBE_FAILURES: u32 = 3;
/// How long the query service may consume nothing while it lags before the broker's consumer
/// group is taken for stuck (several session timeouts: rebalances after a kill end well before).
const GROUP_STALL: Duration = Duration::from_secs(40);
/// Poison messages injected onto the topic; each must end up as exactly one dead letter.
const POISON: [&[u8]; 2] = [
    b"\xff\xfe not JSON at all",
    br#"{"event_id":"0190f3a4-0000-7000-8000-000000000001","event_type":"OrderPlaced","schema_version":1}"#,
];

/// What to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Orders to place and drive through their lifecycle.
    pub orders: usize,
    /// Concurrent workers, each driving one order at a time.
    pub workers: usize,
    /// Orders started per second: the stream is steady, so faults land throughout it.
    pub rate: f64,
    /// Seed of every random choice (printed, so a run can be repeated).
    pub seed: u64,
    /// How long the views may take to equal the event log once the commands are done (a broker
    /// that failed under the run serves the backlog slowly); the run fails after that.
    pub settle: Duration,
}

/// Counts of what happened.
#[derive(Debug, Default)]
struct Tally {
    commands: AtomicU64,
    accepted: AtomicU64,
    retried: AtomicU64,
    attempts: AtomicU64,
    failed: AtomicU64,
    tickets: AtomicUsize,
    orders: AtomicU64,
    faults: [AtomicU64; 4],
    broker_repairs: AtomicU64,
    group_repairs: AtomicU64,
}

const FAULTS: [&str; 4] = [
    "query service SIGKILL",
    "command service SIGKILL",
    "broker restart",
    "PostgreSQL restart",
];

/// A small deterministic generator (xorshift64*): no dependency, repeatable from the seed.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.next() % (high - low + 1))
    }
}

/// A child process the run starts, kills and starts again.
#[derive(Debug)]
struct Process {
    name: String,
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    port: Option<u16>,
}

impl Process {
    fn service(binary: &str, name: &str, database_url: &str, env: &Env) -> anyhow::Result<Process> {
        let port = free_port()?;
        let mut vars = vec![
            ("DATABASE_URL".to_owned(), database_url.to_owned()),
            ("HTTP_ADDR".into(), format!("127.0.0.1:{port}")),
            ("KAFKA_BROKERS".into(), env.brokers.clone()),
            ("KAFKA_TOPIC".into(), env.topic.clone()),
            ("KAFKA_TOPIC_PARTITIONS".into(), "3".into()),
            ("AUTH_MODE".into(), "disabled".into()),
            ("RATE_LIMIT_PER_SECOND".into(), "0".into()),
            ("LOG_FORMAT".into(), "json".into()),
            ("RUST_LOG".into(), "warn".into()),
        ];
        // Faster recovery checks than production defaults, so faults follow each other closely.
        vars.push(("RELAY_POLL_INTERVAL_MS".into(), "200".into()));
        Ok(Process {
            name: name.to_owned(),
            program: env.bin.join(binary).to_string_lossy().into_owned(),
            args: Vec::new(),
            env: vars,
            log: env.logs.join(format!("{name}.log")),
            child: None,
            port: Some(port),
        })
    }

    fn shell(name: &str, command: &str, env: &Env) -> Process {
        Process {
            name: name.to_owned(),
            program: "sh".into(),
            args: vec!["-c".into(), command.to_owned()],
            env: Vec::new(),
            log: env.logs.join(format!("{name}.log")),
            child: None,
            port: None,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port.unwrap_or_default())
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("open {}", self.log.display()))?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().cloned())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", self.name))?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL: no chance to finish anything.
    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// SIGTERM, and wait for it to exit.
    async fn terminate(&mut self) {
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

    async fn wait_until_live(&self, http: &reqwest::Client) -> anyhow::Result<()> {
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

/// Where everything is.
#[derive(Debug, Clone)]
struct Env {
    bin: PathBuf,
    command_db: String,
    query_db: String,
    brokers: String,
    topic: String,
    broker_cmd: String,
    pg_restart: String,
    logs: PathBuf,
}

impl Env {
    fn from_env() -> anyhow::Result<Env> {
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

/// The processes of the run.
#[derive(Debug)]
struct Stack {
    broker: Process,
    commands: [Process; 2],
    query: Process,
}

/// Runs the whole chaos scenario and prints its summary; an error when anything was lost,
/// duplicated or refused.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let env = Env::from_env()?;
    std::fs::create_dir_all(&env.logs)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut stack = Stack {
        broker: Process::shell("broker", &env.broker_cmd, &env),
        commands: [
            Process::service("command-service", "command-a", &env.command_db, &env)?,
            Process::service("command-service", "command-b", &env.command_db, &env)?,
        ],
        query: Process::service("query-service", "query", &env.query_db, &env)?,
    };
    stack.broker.start()?;
    for process in stack.commands.iter_mut().chain([&mut stack.query]) {
        process.start()?;
        process.wait_until_live(&http).await?;
    }
    println!(
        "chaos: {} orders at {}/s, {} workers, seed {}; logs in {}",
        settings.orders,
        settings.rate,
        settings.workers,
        settings.seed,
        env.logs.display()
    );
    let urls = [stack.commands[0].url(), stack.commands[1].url()];
    let query_url = stack.query.url();
    let tally = Arc::new(Tally::default());
    let customers = Arc::new(Mutex::new(Vec::<Uuid>::new()));
    let started = Instant::now();

    let stop_faults = Arc::new(AtomicBool::new(false));
    let stop_watch = Arc::new(AtomicBool::new(false));
    let stack = Arc::new(Mutex::new(stack));
    let watch = tokio::spawn(watch_broker(
        stack.clone(),
        env.clone(),
        (http.clone(), query_url.clone()),
        tally.clone(),
        stop_watch.clone(),
    ));
    let faults = tokio::spawn(inject_faults(
        stack.clone(),
        env.clone(),
        http.clone(),
        tally.clone(),
        stop_faults.clone(),
        Rng(settings.seed ^ 0x9E37_79B9_7F4A_7C15),
    ));
    let mut workers = Vec::new();
    for worker in 0..settings.workers {
        let driver = Driver {
            http: http.clone(),
            urls: urls.clone(),
            tally: tally.clone(),
            customers: customers.clone(),
            rng: Rng(settings.seed.wrapping_add(worker as u64 + 1).max(1)),
            turn: worker,
        };
        workers.push(tokio::spawn(driver.work(
            settings.orders,
            settings.rate,
            started,
        )));
    }
    inject_poison(&env).await?;
    let mut driver_error = None;
    for worker in workers {
        if let Err(error) = worker.await? {
            driver_error.get_or_insert(error);
        }
    }
    stop_faults.store(true, Ordering::SeqCst);
    faults.await??;
    let driving = started.elapsed();

    let verdict = settle(&env, &http, &query_url, settings.settle).await;
    stop_watch.store(true, Ordering::SeqCst);
    watch.await??;
    let mut stack = Arc::try_unwrap(stack)
        .map_err(|_| anyhow::anyhow!("stack still shared"))?
        .into_inner();
    for process in stack.commands.iter_mut().chain([&mut stack.query]) {
        process.terminate().await;
    }
    stack.broker.terminate().await;

    let count = |a: &AtomicU64| a.load(Ordering::SeqCst);
    println!("\n| chaos run | |\n|---|---:|");
    println!("| orders driven | {} |", count(&tally.orders));
    println!("| commands sent | {} |", count(&tally.commands));
    println!("| commands accepted | {} |", count(&tally.accepted));
    println!(
        "| commands retried (same Idempotency-Key) | {} |",
        count(&tally.retried)
    );
    println!("| HTTP attempts | {} |", count(&tally.attempts));
    println!(
        "| commands refused or given up | {} |",
        count(&tally.failed)
    );
    for (name, fault) in FAULTS.iter().zip(&tally.faults) {
        println!("| faults: {name} | {} |", count(fault));
    }
    println!(
        "| broker restarts: liveness probe failed | {} |",
        count(&tally.broker_repairs)
    );
    println!(
        "| broker and query service restarts: consumer group stuck | {} |",
        count(&tally.group_repairs)
    );
    println!("| poison messages injected | {} |", POISON.len());
    println!("| driving time | {:.0} s |", driving.as_secs_f64());
    match &verdict {
        Ok(report) => {
            println!("| events in the log | {} |", report.events);
            println!(
                "| dead letters (all injected) | {} |",
                report.dead_letters.open
            );
            println!("| mismatches | {} |", report.problems());
        }
        Err(error) => println!("| verification | failed: {error:#} |"),
    }
    if let Some(error) = driver_error {
        return Err(error.context("a command could not be completed"));
    }
    let report = verdict?;
    if report.problems() > 0 {
        println!("{}", serde_json::to_string_pretty(&report)?);
        bail!(
            "the views differ from the event log: {} mismatches",
            report.problems()
        );
    }
    Ok(())
}

/// One worker: takes orders from the shared count until none are left and drives each one.
struct Driver {
    http: reqwest::Client,
    urls: [String; 2],
    tally: Arc<Tally>,
    customers: Arc<Mutex<Vec<Uuid>>>,
    rng: Rng,
    turn: usize,
}

impl Driver {
    /// Drives orders until `orders` were started, starting order `n` no earlier than `n / rate`
    /// seconds after `start`.
    async fn work(mut self, orders: usize, rate: f64, start: Instant) -> anyhow::Result<()> {
        loop {
            let ticket = self.tally.tickets.fetch_add(1, Ordering::SeqCst);
            if ticket >= orders {
                return Ok(());
            }
            tokio::time::sleep_until(
                (start + Duration::from_secs_f64(ticket as f64 / rate)).into(),
            )
            .await;
            self.drive_one_order().await?;
            self.tally.orders.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A customer (new one time in five), an order, and a random walk through its lifecycle.
    async fn drive_one_order(&mut self) -> anyhow::Result<()> {
        let known = self.customers.lock().await.len();
        let customer = if known == 0 || self.rng.chance(20) {
            let email = format!("{}@chaos.example", Uuid::now_v7().simple());
            let registered = self
                .send(
                    Method::POST,
                    "/customers".into(),
                    json!({ "name": "Chaos Monkey", "email": email }),
                )
                .await?;
            let id = uuid(&registered, "customer_id")?;
            self.customers.lock().await.push(id);
            id
        } else {
            let pick = (self.rng.next() % known as u64) as usize;
            self.customers.lock().await[pick]
        };
        let currency = if self.rng.chance(80) { "EUR" } else { "USD" };
        let quantity = 1 + self.rng.next() % 5;
        let order = json!({ "customer_id": customer, "currency": currency, "items": [
            { "sku": "A-1", "name": "Widget", "quantity": quantity, "unit_price_cents": 1250 },
            { "sku": "B-2", "name": "Gadget", "quantity": 1, "unit_price_cents": 499 }
        ]});
        let placed = self.send(Method::POST, "/orders".into(), order).await?;
        let order = uuid(&placed, "order_id")?;
        if self.rng.chance(50) {
            let line =
                json!({ "sku": "C-3", "name": "Gizmo", "quantity": 2, "unit_price_cents": 300 });
            self.send(Method::POST, format!("/orders/{order}/items"), line)
                .await?;
            if self.rng.chance(30) {
                self.send(
                    Method::DELETE,
                    format!("/orders/{order}/items/C-3"),
                    Value::Null,
                )
                .await?;
            }
        }
        if self.rng.chance(10) {
            let name = format!("Renamed {}", self.rng.next() % 1000);
            self.send(
                Method::POST,
                format!("/customers/{customer}/rename"),
                json!({ "name": name }),
            )
            .await?;
        }
        if self.rng.chance(15) {
            return self.cancel(order).await;
        }
        self.send(
            Method::POST,
            format!("/orders/{order}/confirm"),
            Value::Null,
        )
        .await?;
        if self.rng.chance(15) {
            return self.cancel(order).await;
        }
        let tracking = format!("JD{:010}", self.rng.next() % 10_000_000_000);
        let shipment = json!({ "carrier": "DHL", "tracking_number": tracking });
        self.send(Method::POST, format!("/orders/{order}/ship"), shipment)
            .await?;
        if self.rng.chance(50) {
            self.send(
                Method::POST,
                format!("/orders/{order}/deliver"),
                Value::Null,
            )
            .await?;
        }
        Ok(())
    }

    async fn cancel(&mut self, order: Uuid) -> anyhow::Result<()> {
        self.send(
            Method::POST,
            format!("/orders/{order}/cancel"),
            json!({ "reason": "chaos" }),
        )
        .await?;
        Ok(())
    }

    /// Sends one command with a fresh `Idempotency-Key`, alternating instances, and retries it
    /// with the same key while the stack answers with an outage (connection errors, 5xx, 429,
    /// or the key still in progress). Any other refusal is a failure of the run.
    async fn send(&mut self, method: Method, path: String, body: Value) -> anyhow::Result<Value> {
        let key = Uuid::now_v7().to_string();
        let started = Instant::now();
        self.tally.commands.fetch_add(1, Ordering::SeqCst);
        let mut attempt: u32 = 0;
        loop {
            self.turn += 1;
            let url = format!("{}{path}", self.urls[self.turn % 2]);
            self.tally.attempts.fetch_add(1, Ordering::SeqCst);
            let mut request = self
                .http
                .request(method.clone(), &url)
                .header("idempotency-key", &key);
            if !body.is_null() {
                request = request.json(&body);
            }
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    Some((status, text))
                }
                Err(_) => None,
            };
            match outcome {
                Some((status, text)) if status.is_success() => {
                    self.tally.accepted.fetch_add(1, Ordering::SeqCst);
                    if attempt > 0 {
                        self.tally.retried.fetch_add(1, Ordering::SeqCst);
                    }
                    return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
                }
                Some((status, text)) if !is_outage(status, &text) => {
                    self.tally.failed.fetch_add(1, Ordering::SeqCst);
                    bail!("{method} {path} was refused: {status} {text}");
                }
                _ => {}
            }
            if started.elapsed() > COMMAND_DEADLINE {
                self.tally.failed.fetch_add(1, Ordering::SeqCst);
                bail!(
                    "{method} {path} kept failing for {} s",
                    COMMAND_DEADLINE.as_secs()
                );
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis((50u64 << attempt.min(5)).min(1_000))).await;
        }
    }
}

/// Whether a response means "the stack is having an outage; try again", not "no".
fn is_outage(status: StatusCode, body: &str) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::CONFLICT && body.contains("idempotency-key-in-use"))
}

fn uuid(body: &Value, field: &str) -> anyhow::Result<Uuid> {
    body[field]
        .as_str()
        .and_then(|s| Uuid::try_parse(s).ok())
        .with_context(|| format!("no {field} in {body}"))
}

/// Kills and restarts a part of the stack every few seconds, cycling through the kinds of fault
/// so that each happens, until told to stop; then makes sure everything runs again.
async fn inject_faults(
    stack: Arc<Mutex<Stack>>,
    env: Env,
    http: reqwest::Client,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
    mut rng: Rng,
) -> anyhow::Result<()> {
    // Query kills come twice per cycle: they are the ones that interrupt batches.
    let cycle = [0usize, 1, 2, 3, 0, 1];
    let mut round = 0usize;
    loop {
        let pause = rng.millis(1_500, 4_000);
        let deadline = Instant::now() + pause;
        while Instant::now() < deadline {
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let kind = cycle[round % cycle.len()];
        round += 1;
        let mut stack = stack.lock().await;
        let down = rng.millis(200, 2_000);
        match kind {
            0 => {
                stack.query.kill().await;
                tokio::time::sleep(down).await;
                stack.query.start()?;
                stack.query.wait_until_live(&http).await?;
            }
            1 => {
                let which = (round / cycle.len()) % 2;
                stack.commands[which].kill().await;
                tokio::time::sleep(down).await;
                stack.commands[which].start()?;
                stack.commands[which].wait_until_live(&http).await?;
            }
            2 => {
                stack.broker.terminate().await;
                tokio::time::sleep(down).await;
                stack.broker.start()?;
            }
            _ => {
                let status = Command::new("sh")
                    .args(["-c", &env.pg_restart])
                    .status()
                    .await?;
                if !status.success() {
                    bail!("restarting PostgreSQL failed ({status})");
                }
            }
        }
        tally.faults[kind].fetch_add(1, Ordering::SeqCst);
    }
}

/// Produces the poison messages straight onto the topic, as a buggy or hostile producer would.
async fn inject_poison(env: &Env) -> anyhow::Result<()> {
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &env.brokers)
        .set("message.timeout.ms", "120000")
        .create()
        .context("poison producer")?;
    for payload in POISON {
        producer
            .send(
                FutureRecord::to(&env.topic).key("poison").payload(payload),
                Duration::from_secs(120),
            )
            .await
            .map_err(|(error, _)| error)
            .context("inject a poison message")?;
    }
    Ok(())
}

/// Waits until the outbox is empty and the views agree with the event log (at most `deadline`),
/// and returns the last verification.
async fn settle(
    env: &Env,
    http: &reqwest::Client,
    query_url: &str,
    deadline: Duration,
) -> anyhow::Result<query_service::verify::Report> {
    let command_db = sqlx::PgPool::connect(&env.command_db)
        .await
        .context("command database")?;
    let query_db = sqlx::PgPool::connect(&env.query_db)
        .await
        .context("query database")?;
    let started = Instant::now();
    loop {
        let report =
            query_service::verify::verify(&command_db, &query_db, POISON.len() as u64).await;
        let lag = consumption(http, query_url).await.and_then(|(_, lag)| lag);
        match report {
            Ok(report)
                if report.problems() == 0
                    && report.dead_letters.open == POISON.len() as u64
                    && lag == Some(0) =>
            {
                return Ok(report);
            }
            Ok(report) if started.elapsed() > deadline => return Ok(report),
            Err(error) if started.elapsed() > deadline => return Err(error),
            _ => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
}

/// Watches the broker as its operator would, and restarts (counting each time)
///
/// - the broker when its liveness probe fails: a metadata request for the topic every
///   [`BROKER_PROBE`] fails [`BROKER_PROBE_FAILURES`] times in a row (as Kubernetes would
///   restart a broker pod), and
/// - the broker and then the query service when the consumer group is stuck: the query service
///   lags but has applied nothing for [`GROUP_STALL`] (what a lag alert would page someone
///   for). The query service stops gracefully, so it leaves the group and its successor joins
///   a fresh one.
///
/// Runs until `stop`. Tansu 0.6.0 needs it: its group coordinator can keep partitions assigned
/// to a member that was killed, so nobody consumes them; it can also form a generation whose
/// only member got an empty assignment, which it keeps (in its S3 storage) across broker
/// restarts until that member leaves. Its SQLite storage task ends for good when it cannot
/// hand an answer to a client that went away (the `?` in tansu-storage's
/// `ChannelRequestService::serve`), after which the broker accepts connections but fails every
/// request. These restarts cure all three; the data stays in the broker's storage.
async fn watch_broker(
    stack: Arc<Mutex<Stack>>,
    env: Env,
    (http, query_url): (reqwest::Client, String),
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let probe: Arc<BaseConsumer> = Arc::new(
        rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &env.brokers)
            .set("log_level", "0")
            .create()
            .context("broker probe")?,
    );
    let alive = || {
        let (probe, topic) = (probe.clone(), env.topic.clone());
        async move {
            tokio::task::spawn_blocking(move || {
                probe
                    .fetch_metadata(Some(&topic), BROKER_PROBE)
                    .is_ok_and(|m| m.topics().iter().all(|t| t.error().is_none()))
            })
            .await
            .unwrap_or(false)
        }
    };
    let mut failures = 0;
    // The query service's applied offsets (summed) when they last moved, and since when.
    let mut applied = (-1, Instant::now());
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(BROKER_PROBE).await;
        failures = if alive().await { 0 } else { failures + 1 };
        let stuck = match consumption(&http, &query_url).await {
            Some((offsets, lag)) if offsets != applied.0 || lag == Some(0) => {
                applied = (offsets, Instant::now());
                false
            }
            Some(_) => applied.1.elapsed() > GROUP_STALL,
            // No answer (the service is down or starting) is neither progress nor a stall.
            None => false,
        };
        if failures < BROKER_PROBE_FAILURES && !stuck {
            continue;
        }
        // The fault injector may be restarting the broker right now: decide under its lock.
        let mut stack = stack.lock().await;
        let repair = if !alive().await {
            &tally.broker_repairs
        } else if stuck {
            &tally.group_repairs
        } else {
            continue;
        };
        stack.broker.kill().await;
        stack.broker.start()?;
        if stuck {
            stack.query.terminate().await;
            stack.query.start()?;
            stack.query.wait_until_live(&http).await?;
        }
        repair.fetch_add(1, Ordering::SeqCst);
        failures = 0;
        applied.1 = Instant::now();
    }
    Ok(())
}

/// The query service's applied offsets summed over all partitions, and its total lag in events
/// (unknown until it heard the partitions' high watermarks), when it answers.
async fn consumption(http: &reqwest::Client, query_url: &str) -> Option<(i64, Option<i64>)> {
    let body: Value = http
        .get(format!("{query_url}/admin/projections"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let partitions = body["partitions"].as_array()?;
    let offsets = partitions
        .iter()
        .map(|p| p["committed_offset"].as_i64().unwrap_or(0))
        .sum();
    Some((offsets, body["total_lag_events"].as_i64()))
}

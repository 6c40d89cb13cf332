//! `scripts/bench report`: every measurement of the benchmark in one run, written as JSON per
//! phase and rendered into a Markdown report with an SVG latency plot.
//!
//! Phases (the script stops and starts the query service between them):
//! 1. commands: the create-order transaction's own limit (no HTTP) and `POST /orders`, both at
//!    1, 8, 32 and 64 connections; then 201 → visible latency at half the best command rate;
//!    CPU seconds per 1,000 orders.
//! 2. catch-up: a backlog of events applied from a stopped query service's restart to lag 0.
//! 3. queries: primary-key reads of the order view (no HTTP) and `GET /orders/{id}`, at the same
//!    connection counts, over every order in the view; peak memory of each process.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use platform::db::connections::Connections;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::load::{self, Run};
use crate::{Target, limits, machine, scrape};

/// Connection counts of every sweep.
const LEVELS: [usize; 4] = [1, 8, 32, 64];
/// Seconds per sweep step.
const STEP: Duration = Duration::from_secs(10);
/// Orders per second of the idle-stack visibility run: low enough that nothing queues.
const IDLE_RATE: f64 = 10.0;
/// Rounds per connection count of the service-against-baseline reads.
const ROUNDS: usize = 3;
/// Connections of the other views' measurement.
const VIEW_CONNECTIONS: usize = 32;
/// A view's name and its path for an id.
pub type View = (&'static str, fn(Uuid) -> String);
/// The other views read besides the order detail; the paths with an id get a customer's.
pub const VIEWS: [View; 5] = [
    ("GET /customers/{id}", |id| format!("/customers/{id}")),
    ("GET /customers/{id}/orders?limit=20", |id| {
        format!("/customers/{id}/orders?limit=20")
    }),
    ("GET /orders?customer_id={id}&limit=20", |id| {
        format!("/orders?customer_id={id}&limit=20")
    }),
    ("GET /dashboards/shipping?limit=20", |_| {
        "/dashboards/shipping?limit=20".into()
    }),
    ("GET /reports/daily-sales", |_| {
        "/reports/daily-sales".into()
    }),
];
/// The order detail's path.
pub fn detail(id: Uuid) -> String {
    format!("/orders/{id}")
}

/// One closed-loop measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    /// Connections (workers).
    pub connections: usize,
    /// Completed operations.
    pub operations: u64,
    /// Failed operations.
    pub errors: u64,
    /// Operations per second.
    pub rate: f64,
    /// Latency percentiles in milliseconds: p50, p95, p99, max.
    pub latency_ms: [f64; 4],
    /// Microseconds of CPU per operation by process, while it ran (empty when not measured).
    #[serde(default)]
    pub cpu_us: Vec<(String, Option<f64>)>,
}

fn percentiles(h: &Histogram<u64>) -> [f64; 4] {
    [0.5, 0.95, 0.99]
        .map(|q| h.value_at_quantile(q) as f64 / 1000.0)
        .into_iter()
        .chain([h.max() as f64 / 1000.0])
        .collect::<Vec<_>>()
        .try_into()
        .unwrap_or([0.0; 4])
}

impl Point {
    fn of(connections: usize, run: &Run) -> Point {
        Point {
            connections,
            operations: run.latency.len(),
            errors: run.errors,
            rate: run.rate(),
            latency_ms: percentiles(&run.latency),
            cpu_us: Vec::new(),
        }
    }

    /// The point of `run` with the CPU `meter` measured over it.
    fn metered(connections: usize, run: &Run, meter: &machine::CpuMeter) -> Point {
        Point {
            cpu_us: meter.micros_per(run.latency.len()),
            ..Point::of(connections, run)
        }
    }

    /// µs of CPU per operation of `process`, if measured.
    fn cpu(&self, process: &str) -> Option<f64> {
        self.cpu_us.iter().find(|(n, _)| n == process)?.1
    }
}

/// The round with the median rate.
fn median(mut rounds: Vec<Point>) -> Point {
    rounds.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    rounds.swap_remove(rounds.len() / 2)
}

/// Phase 1.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Commands {
    /// The create-order transaction without HTTP.
    pub limit: Vec<Point>,
    /// `POST /orders`.
    pub service: Vec<Point>,
    /// 201 → visible on an idle stack: every order of an open loop at [`IDLE_RATE`] read back
    /// with its consistency token (ms: p50, p95, p99, max), and how many.
    pub idle_visibility_ms: [f64; 4],
    /// Orders read back for the idle-stack figures.
    pub idle_visibility_samples: u64,
    /// Open-loop rate of the visibility run (half the best service rate).
    pub visibility_rate: f64,
    /// Latency of the commands during the visibility run (ms: p50, p95, p99, max).
    pub visibility_commands_ms: [f64; 4],
    /// 201 → visible through the query API with the consistency token (ms: p50, p95, p99, max).
    pub visibility_ms: [f64; 4],
    /// Orders read back for the visibility figures (one in ten).
    pub visibility_samples: u64,
    /// Relay commit → broker ack during the visibility run: histogram bounds of p50 and p99, ms.
    pub relay_ack_ms: [Option<f64>; 2],
    /// Machine and software.
    pub machine: Vec<(String, String)>,
}

/// Phase 2.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Catchup {
    /// Events in the backlog.
    pub events: usize,
    /// From the service's start to its first applied batch, s.
    pub startup_s: f64,
    /// From the service's start to lag 0, s.
    pub total_s: f64,
    /// Events per second, whole.
    pub rate: f64,
    /// Events per second after the first batch.
    pub rate_applying: f64,
    /// Events of the command side's log that `query-service verify` folded one by one and found
    /// equal to the caught-up views.
    pub verified_events: u64,
    /// µs of CPU per event from the service's start to lag 0: query service, broker, PostgreSQL.
    pub cpu_us: Vec<(String, Option<f64>)>,
}

/// Phase 3.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Queries {
    /// Orders in the view read from.
    pub orders: usize,
    /// Primary-key reads of the view table without HTTP.
    pub limit: Vec<Point>,
    /// `GET /orders/{id}`: the median of [`ROUNDS`] rounds per connection count.
    pub service: Vec<Point>,
    /// The same reads from the naive baseline (`bench baseline`), in rounds alternating with
    /// the service's.
    pub baseline: Vec<Point>,
    /// The other views at [`VIEW_CONNECTIONS`] connections: path template and measurement.
    pub views: Vec<(String, Point)>,
    /// Peak resident memory (MiB) of each process over the whole run.
    pub peak_rss_mib: Vec<(String, f64)>,
}

fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner().with_message(message.to_owned());
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn write(dir: &Path, name: &str, value: &impl Serialize) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), serde_json::to_vec_pretty(value)?)
        .with_context(|| format!("write {name}"))
}

fn read<T: for<'de> Deserialize<'de>>(dir: &Path, name: &str) -> anyhow::Result<T> {
    serde_json::from_slice(&std::fs::read(dir.join(name)).with_context(|| format!("read {name}"))?)
        .with_context(|| format!("parse {name}"))
}

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set (scripts/bench sets it)"))
}

/// Phase 1, written to `dir/commands.json`.
pub async fn measure_commands(target: &Target, query_url: &str, dir: &Path) -> anyhow::Result<()> {
    let database = env("COMMAND_DATABASE_URL")?;
    let bar = spinner("registering 2,000 customers");
    let customers = load::register_customers(target, 2_000).await?;
    bar.set_message(format!(
        "201 → visible on an idle stack, {IDLE_RATE} orders/s"
    ));
    let (_, idle) = load::open_loop(
        target,
        &customers,
        IDLE_RATE,
        Duration::from_secs(20),
        Some((query_url, 1)),
    )
    .await?;
    settle(target, query_url).await?;
    let pids = [
        ("command-service", machine::pid("COMMAND_PID")),
        ("query-service", machine::pid("QUERY_PID")),
        ("broker", machine::pid("BROKER_PID")),
    ];
    // Each level's limit and service rounds back to back, on tables of about the same size and
    // with the stack in about the same state: a sweep of all limits before all service rounds
    // gave the limits the emptier tables.
    let (mut limit, mut service) = (Vec::new(), Vec::new());
    for connections in LEVELS {
        bar.set_message(format!(
            "create-order transaction, no HTTP, {connections} connections"
        ));
        // A pool per level: 64 connections and the services' fixed-size pools together would
        // exceed PostgreSQL's default max_connections (100).
        let pool = Connections::connect(&limits::settings(&database, connections)?).await?;
        let run = limits::create_order_transactions(&pool, &customers, connections, STEP).await?;
        limit.push(Point::of(connections, &run));
        drop(pool);
        bar.set_message("waiting for the relay and the projector to catch up");
        settle(target, query_url).await?;
        bar.set_message(format!("POST /orders, {connections} connections"));
        let meter = machine::CpuMeter::start(&pids);
        let run = load::closed_loop(target, &customers, connections, STEP).await?;
        service.push(Point::metered(connections, &run, &meter));
        settle(target, query_url).await?;
    }
    let best = service.iter().map(|p| p.rate).fold(0.0, f64::max);
    let rate = (best / 2.0).round();
    bar.set_message(format!("201 → visible at {rate:.0} orders/s (open loop)"));
    let lag_before = crate::relay_lag(target).await?;
    let (run, visible) = load::open_loop(
        target,
        &customers,
        rate,
        Duration::from_secs(20),
        Some((query_url, 10)),
    )
    .await?;
    let relay = scrape::since(&lag_before, &crate::relay_lag(target).await?);
    bar.finish_with_message("commands measured");
    write(
        dir,
        "commands.json",
        &Commands {
            limit,
            service,
            idle_visibility_ms: percentiles(&idle),
            idle_visibility_samples: idle.len(),
            visibility_rate: rate,
            visibility_commands_ms: percentiles(&run.latency),
            visibility_ms: percentiles(&visible),
            visibility_samples: visible.len(),
            relay_ack_ms: [0.5, 0.99]
                .map(|q| scrape::quantile_bound(&relay, q).map(|s| s * 1000.0)),
            machine: machine::description(&database),
        },
    )
}

/// Waits until the outbox is empty and the query service has no lag, so one measurement's
/// backlog does not load the next.
async fn settle(target: &Target, query_url: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        let metrics = reqwest::get(format!("{}/metrics", target.command_url))
            .await?
            .text()
            .await?;
        let backlog = metrics
            .lines()
            .find_map(|l| l.strip_prefix("outbox_backlog_events "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        let status: serde_json::Value = reqwest::get(format!("{query_url}/admin/projections"))
            .await?
            .json()
            .await?;
        if backlog == Some(0.0) && status["total_lag_events"] == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the stack did not settle within 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Phase 2's result, written to `dir/catchup.json`.
pub fn record_catchup(dir: &Path, catchup: &Catchup) -> anyhow::Result<()> {
    write(dir, "catchup.json", catchup)
}

/// Phase 3, written to `dir/queries.json`.
pub async fn measure_queries(query_url: &str, dir: &Path) -> anyhow::Result<()> {
    let database = env("QUERY_DATABASE_URL")?;
    let baseline_url = env("BASELINE_URL")?;
    let bar = spinner("collecting order ids from the query service");
    let known = load::known_orders(query_url, 1_000_000).await?;
    anyhow::ensure!(
        known.len() >= 100_000,
        "only {} orders in the view; the report needs 100,000",
        known.len()
    );
    let orders: Vec<Uuid> = known.iter().map(|(order, _)| *order).collect();
    let customers: Vec<Uuid> = known
        .iter()
        .map(|(_, customer)| *customer)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let pool = limits::pool(&database, 64).await?;
    let mut limit = Vec::new();
    for connections in LEVELS {
        bar.set_message(format!(
            "primary-key reads, no HTTP, {connections} connections"
        ));
        limit.push(Point::of(
            connections,
            &limits::primary_key_reads(&pool, &orders, connections, STEP).await?,
        ));
    }
    pool.close().await;
    let query_service = [("query-service", machine::pid("QUERY_PID"))];
    let baseline = [("baseline", machine::pid("BASELINE_PID"))];
    let (mut service, mut naive) = (Vec::new(), Vec::new());
    for connections in LEVELS {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for round in 1..=ROUNDS {
            bar.set_message(format!(
                "GET /orders/{{id}}, {connections} connections, round {round} of {ROUNDS}: query service"
            ));
            let meter = machine::CpuMeter::start(&query_service);
            let run = load::read_loop(query_url, &orders, detail, connections, STEP).await?;
            ours.push(Point::metered(connections, &run, &meter));
            bar.set_message(format!(
                "GET /orders/{{id}}, {connections} connections, round {round} of {ROUNDS}: baseline"
            ));
            let meter = machine::CpuMeter::start(&baseline);
            let run = load::read_loop(&baseline_url, &orders, detail, connections, STEP).await?;
            theirs.push(Point::metered(connections, &run, &meter));
        }
        service.push(median(ours));
        naive.push(median(theirs));
    }
    let mut views = Vec::new();
    for (name, path) in VIEWS {
        bar.set_message(format!("{name}, {VIEW_CONNECTIONS} connections"));
        let meter = machine::CpuMeter::start(&query_service);
        let run = load::read_loop(query_url, &customers, path, VIEW_CONNECTIONS, STEP).await?;
        views.push((
            name.to_owned(),
            Point::metered(VIEW_CONNECTIONS, &run, &meter),
        ));
    }
    bar.finish_with_message("queries measured");
    let peak_rss_mib = [
        ("command-service", "COMMAND_PID"),
        ("query-service", "QUERY_PID"),
        ("broker", "BROKER_PID"),
    ]
    .into_iter()
    .filter_map(|(name, var)| Some((name.to_owned(), machine::peak_rss_mib(machine::pid(var)?)?)))
    .collect();
    write(
        dir,
        "queries.json",
        &Queries {
            orders: orders.len(),
            limit,
            service,
            baseline: naive,
            views,
            peak_rss_mib,
        },
    )
}

fn table(out: &mut String, title: &str, points: &[Point], limit: &[Point], unit: &str) {
    let _ = writeln!(
        out,
        "| connections | {title} {unit}/s | p50 ms | p95 ms | p99 ms | max ms | errors | limit {unit}/s | limit p50 / p99 ms | service ÷ limit |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (p, l) in points.iter().zip(limit) {
        let [p50, p95, p99, max] = p.latency_ms;
        let _ = writeln!(
            out,
            "| {} | {:.0} | {p50:.1} | {p95:.1} | {p99:.1} | {max:.1} | {} | {:.0} | {:.1} / {:.1} | {:.0} % |",
            p.connections,
            p.rate,
            p.errors,
            l.rate,
            l.latency_ms[0],
            l.latency_ms[2],
            100.0 * p.rate / l.rate.max(1.0)
        );
    }
}

/// Renders `dir/*.json` into `out/report.md` and `out/latency.svg`.
pub fn render(dir: &Path, out: &Path, date: &str) -> anyhow::Result<()> {
    let commands: Commands = read(dir, "commands.json")?;
    let catchup: Catchup = read(dir, "catchup.json")?;
    let queries: Queries = read(dir, "queries.json")?;
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmark report, {date}\n");
    let _ = writeln!(
        md,
        "Produced by `scripts/bench report`: services, PostgreSQL, the broker and the load generator on one machine.\n"
    );
    let _ = writeln!(md, "| | |\n|---|---|");
    for (key, value) in &commands.machine {
        let _ = writeln!(md, "| {key} | {value} |");
    }
    let _ = writeln!(
        md,
        "| settings | DB pools of a fixed 16 connections per service (and the projector's, a connection per lane and one more, whose commits do not wait for the WAL flush); \
         relay batch 500, outbox vacuum every 10,000 events, linger 1 ms; consumer: 1 lane, \
         batches of what has arrived up to 1,000, prefetch 4 MiB, fetch.wait.max.ms 100 (the \
         broker answers as soon as data arrives); orders of 2 lines for 2,000 customers |"
    );
    let _ = writeln!(
        md,
        "| load generator | closed loops of N keep-alive connections (10 s each); open loop at a fixed arrival rate with latency from the scheduled send (no coordinated omission) |\n"
    );

    targets(&mut md, &commands, &catchup, &queries);
    let _ = writeln!(
        md,
        "## Commands: `POST /orders` against the same transaction without HTTP\n"
    );
    table(
        &mut md,
        "POST /orders",
        &commands.service,
        &commands.limit,
        "orders",
    );
    let best = |points: &[Point]| points.iter().map(|p| p.rate).fold(0.0, f64::max);
    let _ = writeln!(
        md,
        "\nBest: service {:.0} orders/s, transaction limit {:.0}/s, ratio **{:.0} %** (target ≥ 75 %).\n",
        best(&commands.service),
        best(&commands.limit),
        100.0 * best(&commands.service) / best(&commands.limit).max(1.0)
    );

    let _ = writeln!(
        md,
        "CPU per `POST /orders` while each level ran (µs per accepted order; the command service's figure includes its relay, the query service's is its projector):\n"
    );
    cpu_table(&mut md, "orders/s", &commands.service, &PROCESSES);

    let [i50, i95, i99, imax] = commands.idle_visibility_ms;
    let _ = writeln!(
        md,
        "## End-to-end visibility on an idle stack ({IDLE_RATE:.0} orders/s, open loop, 20 s)\n"
    );
    let _ = writeln!(
        md,
        "| | p50 ms | p95 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|\n\
         | 201 → first 200 (`GET /orders/{{id}}` with the consistency token; {} samples) | {i50:.1} | {i95:.1} | {i99:.1} | {imax:.1} |\n",
        commands.idle_visibility_samples
    );
    let _ = writeln!(md, "Target: median ≤ 15 ms.\n");

    let [c50, c95, c99, cmax] = commands.visibility_commands_ms;
    let [v50, v95, v99, vmax] = commands.visibility_ms;
    let bound = |v: Option<f64>| v.map_or("n/a".into(), |ms| format!("≤ {ms:.1}"));
    let _ = writeln!(
        md,
        "## End-to-end visibility at half the best rate ({:.0} orders/s, open loop, 20 s)\n",
        commands.visibility_rate
    );
    let _ = writeln!(
        md,
        "| | p50 ms | p95 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|"
    );
    let _ = writeln!(
        md,
        "| command (`POST /orders`) | {c50:.1} | {c95:.1} | {c99:.1} | {cmax:.1} |"
    );
    let _ = writeln!(
        md,
        "| 201 → visible (`GET /orders/{{id}}` with the consistency token; {} samples) | {v50:.1} | {v95:.1} | {v99:.1} | {vmax:.1} |",
        commands.visibility_samples
    );
    let _ = writeln!(
        md,
        "| commit → broker ack (relay histogram bucket) | {} | | {} | |\n",
        bound(commands.relay_ack_ms[0]),
        bound(commands.relay_ack_ms[1])
    );
    let _ = writeln!(md, "Target: visibility p99 ≤ 50 ms.\n");

    let _ = writeln!(
        md,
        "## Queries: `GET /orders/{{id}}` against primary-key reads of the view table ({} orders)\n",
        queries.orders
    );
    table(
        &mut md,
        "GET /orders/{id}",
        &queries.service,
        &queries.limit,
        "reads",
    );
    let at32 = queries.service.iter().find(|p| p.connections == 32);
    let _ = writeln!(
        md,
        "\nBest: service {:.0} reads/s, primary-key limit {:.0}/s, ratio **{:.0} %** (target ≥ 60 %); p99 at 32 connections {} ms (target ≤ 10 ms).\n",
        best(&queries.service),
        best(&queries.limit),
        100.0 * best(&queries.service) / best(&queries.limit).max(1.0),
        at32.map_or("n/a".into(), |p| format!("{:.1}", p.latency_ms[2]))
    );

    let _ = writeln!(
        md,
        "## Reads against a naive baseline\n\n`bench baseline` serves `GET /orders/{{id}}` from \
         the same view with a bare axum handler and sqlx's default pool, nothing else (no \
         authentication, limits, metrics, tracing or ETag). Rounds alternate between the two; \
         each row is the median of {ROUNDS} rounds of {} s by rate.\n",
        STEP.as_secs()
    );
    let _ = writeln!(
        md,
        "| connections | query service reads/s | baseline reads/s | ratio | query service µs \
         CPU/read | baseline µs CPU/read | PostgreSQL µs/read (service / baseline) | p99 ms \
         (service / baseline) |\n|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (ours, theirs) in queries.service.iter().zip(&queries.baseline) {
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.0} | {:.2}× | {} | {} | {} / {} | {:.1} / {:.1} |",
            ours.connections,
            ours.rate,
            theirs.rate,
            ours.rate / theirs.rate.max(1.0),
            micros(ours.cpu("query-service")),
            micros(theirs.cpu("baseline")),
            micros(ours.cpu("postgres")),
            micros(theirs.cpu("postgres")),
            ours.latency_ms[2],
            theirs.latency_ms[2]
        );
    }
    let _ = writeln!(
        md,
        "\n### The other views ({VIEW_CONNECTIONS} connections, one round each, random \
         customers)\n\n| view | reads/s | p99 ms | query service µs CPU/read | ÷ order detail | \
         PostgreSQL µs/read |\n|---|---:|---:|---:|---:|---:|"
    );
    let detail_cpu = at(&queries.service, VIEW_CONNECTIONS).and_then(|p| p.cpu("query-service"));
    for (name, p) in &queries.views {
        let _ = writeln!(
            md,
            "| `{name}` | {:.0} | {:.1} | {} | {} | {} |",
            p.rate,
            p.latency_ms[2],
            micros(p.cpu("query-service")),
            ratio(p.cpu("query-service"), detail_cpu),
            micros(p.cpu("postgres"))
        );
    }
    let _ = writeln!(md);

    let _ = writeln!(md, "## Projection catch-up\n");
    let _ = writeln!(
        md,
        "{} events (per customer a registration, then 50 orders placed and confirmed) appended \
         to the command side's event log and published by its relay while the query service was \
         stopped; from its start, first batch after {:.1} s, lag 0 after {:.1} s: **{:.0} \
         events/s** ({:.0}/s after the first batch; target ≥ 25,000). `query-service verify` \
         then folded the log's {} events one at a time and found the views equal. CPU per \
         event from the start to lag 0, µs: {}.\n",
        catchup.events,
        catchup.startup_s,
        catchup.total_s,
        catchup.rate,
        catchup.rate_applying,
        catchup.verified_events,
        catchup
            .cpu_us
            .iter()
            .map(|(name, us)| format!("{name} {}", micros(*us)))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let _ = writeln!(
        md,
        "## Resources\n\n| process | peak RSS MiB (target ≤ 64 for the services) |\n|---|---:|"
    );
    for (name, mib) in &queries.peak_rss_mib {
        let _ = writeln!(md, "| {name} | {mib:.1} |");
    }
    let _ = writeln!(
        md,
        "\nThe query service's peak covers the catch-up and the query sweep (it was restarted for the catch-up); the command service's and the broker's cover the whole run.\n"
    );
    let _ = writeln!(md, "![latency](latency.svg)\n");
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("report.md"), md)?;
    std::fs::write(out.join("latency.svg"), plot(&commands, &queries))?;
    Ok(())
}

/// The processes whose CPU the command sweep measures, in table order.
const PROCESSES: [&str; 4] = ["command-service", "query-service", "broker", "postgres"];

fn micros(us: Option<f64>) -> String {
    us.map_or("n/a".into(), |us| format!("{us:.0}"))
}

fn ratio(value: Option<f64>, of: Option<f64>) -> String {
    value.zip(of).map_or("n/a".into(), |(v, o)| {
        format!("{:.2}×", v / o.max(f64::MIN_POSITIVE))
    })
}

fn at(points: &[Point], connections: usize) -> Option<&Point> {
    points.iter().find(|p| p.connections == connections)
}

/// µs of CPU per operation of each of `processes`, one row per connection count.
fn cpu_table(out: &mut String, unit: &str, points: &[Point], processes: &[&str]) {
    let _ = writeln!(
        out,
        "| connections | {unit} | {} |\n|---:|---:|{}",
        processes.join(" µs | ") + " µs",
        "---:|".repeat(processes.len())
    );
    for p in points {
        let cells: Vec<String> = processes.iter().map(|name| micros(p.cpu(name))).collect();
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} |",
            p.connections,
            p.rate,
            cells.join(" | ")
        );
    }
    let _ = writeln!(out);
}

/// Every target of the benchmark with this run's figure.
fn targets(md: &mut String, commands: &Commands, catchup: &Catchup, queries: &Queries) {
    let best = |points: &[Point]| {
        points
            .iter()
            .max_by(|a, b| a.rate.total_cmp(&b.rate))
            .cloned()
    };
    let mut rows: Vec<(String, String, &str)> = Vec::new();
    let detail = at(&queries.service, 32);
    rows.push((
        "query service CPU per `GET /orders/{id}`, 32 connections".into(),
        format!("{} µs", micros(detail.and_then(|p| p.cpu("query-service")))),
        "≤ 40 µs",
    ));
    for connections in [8, 32, 64] {
        let ours = at(&queries.service, connections).map(|p| p.rate);
        let theirs = at(&queries.baseline, connections).map(|p| p.rate);
        rows.push((
            format!(
                "`GET /orders/{{id}}` reads/s ÷ the naive baseline's, {connections} connections"
            ),
            ratio(ours, theirs),
            "≥ 1.0×",
        ));
    }
    let pk = at(&queries.limit, 32).map(|p| p.latency_ms[2]);
    rows.push((
        "`GET /orders/{id}` p99 ÷ PostgreSQL's primary-key p99, 32 connections".into(),
        format!(
            "{} ({} / {} ms)",
            ratio(detail.map(|p| p.latency_ms[2]), pk),
            detail.map_or("?".into(), |p| format!("{:.1}", p.latency_ms[2])),
            pk.map_or("?".into(), |ms| format!("{ms:.1}"))
        ),
        "≤ 1.2×",
    ));
    let heaviest = queries
        .views
        .iter()
        .filter_map(|(name, p)| Some((name, p.cpu("query-service")?)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    rows.push((
        format!(
            "heaviest other view's CPU ÷ the detail read's ({})",
            heaviest.map_or("n/a".into(), |(name, _)| format!("`{name}`"))
        ),
        ratio(
            heaviest.map(|h| h.1),
            detail.and_then(|p| p.cpu("query-service")),
        ),
        "≤ 2×",
    ));
    let best_command = best(&commands.service);
    rows.push((
        format!(
            "command service CPU per `POST /orders` with its relay, at the best level ({} connections)",
            best_command.as_ref().map_or(0, |p| p.connections)
        ),
        format!("{} µs", micros(best_command.as_ref().and_then(|p| p.cpu("command-service")))),
        "≤ 150 µs",
    ));
    rows.push((
        "best `POST /orders` rate ÷ the transaction's limit".into(),
        format!(
            "{:.0} %",
            100.0 * best_command.as_ref().map_or(0.0, |p| p.rate)
                / best(&commands.limit).map_or(1.0, |p| p.rate.max(1.0))
        ),
        "≥ 75 %",
    ));
    rows.push((
        format!(
            "201 → visible p99 at half the best rate ({:.0} orders/s)",
            commands.visibility_rate
        ),
        format!("{:.1} ms", commands.visibility_ms[2]),
        "≤ 50 ms",
    ));
    rows.push((
        "201 → visible median on an idle stack".into(),
        format!("{:.1} ms", commands.idle_visibility_ms[0]),
        "≤ 15 ms",
    ));
    rows.push((
        format!(
            "catch-up from a {}-event backlog (views verified)",
            catchup.events
        ),
        format!("{:.0} events/s", catchup.rate),
        "≥ 25,000 events/s",
    ));
    for (name, mib) in queries
        .peak_rss_mib
        .iter()
        .filter(|(n, _)| n.ends_with("-service"))
    {
        rows.push((
            format!("peak RSS, {name}"),
            format!("{mib:.1} MiB"),
            "≤ 64 MiB",
        ));
    }
    let _ = writeln!(
        md,
        "## Targets\n\n| measurement | this run | target |\n|---|---:|---|"
    );
    for (what, figure, target) in rows {
        let _ = writeln!(md, "| {what} | {figure} | {target} |");
    }
    let _ = writeln!(md);
}

/// p50 and p99 latency against connections, for commands and queries, with and without HTTP.
fn plot(commands: &Commands, queries: &Queries) -> String {
    let (width, height, left, right, top, bottom) = (760.0, 420.0, 70.0, 230.0, 40.0, 50.0);
    // (label, colour, (connections, milliseconds) points)
    type Series<'a> = (&'a str, &'a str, Vec<(usize, f64)>);
    let series: Vec<Series> = vec![
        (
            "POST /orders p99",
            "#c0392b",
            commands
                .service
                .iter()
                .map(|p| (p.connections, p.latency_ms[2]))
                .collect(),
        ),
        (
            "POST /orders p50",
            "#e67e22",
            commands
                .service
                .iter()
                .map(|p| (p.connections, p.latency_ms[0]))
                .collect(),
        ),
        (
            "create-order tx p99",
            "#8e44ad",
            commands
                .limit
                .iter()
                .map(|p| (p.connections, p.latency_ms[2]))
                .collect(),
        ),
        (
            "GET /orders/{id} p99",
            "#2471a3",
            queries
                .service
                .iter()
                .map(|p| (p.connections, p.latency_ms[2]))
                .collect(),
        ),
        (
            "GET /orders/{id} p50",
            "#3498db",
            queries
                .service
                .iter()
                .map(|p| (p.connections, p.latency_ms[0]))
                .collect(),
        ),
        (
            "primary-key read p99",
            "#16a085",
            queries
                .limit
                .iter()
                .map(|p| (p.connections, p.latency_ms[2]))
                .collect(),
        ),
    ];
    let max_ms = series
        .iter()
        .flat_map(|(_, _, points)| points.iter().map(|(_, ms)| *ms))
        .fold(1.0, f64::max)
        * 1.1;
    let x = |i: usize| left + (width - left - right) * i as f64 / (LEVELS.len() - 1) as f64;
    let y = |ms: f64| top + (height - top - bottom) * (1.0 - ms / max_ms);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"22\" font-size=\"15\">Latency by connections (ms)</text>\n"
    );
    for step in 0..=5 {
        let ms = max_ms * step as f64 / 5.0;
        let _ = writeln!(
            svg,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{ms:.1}</text>",
            width - right,
            y(ms),
            y(ms),
            left - 6.0,
            y(ms) + 4.0
        );
    }
    for (i, connections) in LEVELS.iter().enumerate() {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{connections}</text>",
            x(i),
            height - bottom + 18.0
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">connections</text>",
        (left + width - right) / 2.0,
        height - 10.0
    );
    for (n, (name, color, points)) in series.iter().enumerate() {
        let path: Vec<String> = points
            .iter()
            .filter_map(|(c, ms)| {
                LEVELS
                    .iter()
                    .position(|l| l == c)
                    .map(|i| format!("{:.1},{:.1}", x(i), y(*ms)))
            })
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        let ly = top + 20.0 * n as f64;
        let _ = writeln!(
            svg,
            "<line x1=\"{}\" x2=\"{}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"3\"/><text x=\"{}\" y=\"{}\">{}</text>",
            width - right + 15.0,
            width - right + 40.0,
            width - right + 46.0,
            ly + 4.0,
            name.replace('&', "&amp;").replace('<', "&lt;")
        );
    }
    svg.push_str("</svg>\n");
    svg
}

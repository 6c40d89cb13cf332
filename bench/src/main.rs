//! `bench`: drives the running stack and reports what it measured.
//!
//! ```text
//! bench commands [--concurrency 1,8,32,64] [--seconds 10]
//!     closed loop: each connection sends POST /orders (2 lines, distinct customers) back to back
//! bench relay [--rate 500] [--seconds 10]
//!     open loop at a fixed rate; a Kafka consumer measures each event's time from the command's
//!     commit to its arrival at a consumer (an upper bound of commit → broker)
//! bench chaos [--orders 5000] [--rate 20] [--workers 16] [--seed N] [--settle-seconds 900]
//!     the fault-tolerance run of `scripts/chaos` (see chaos/): commands under replica kills,
//!     broker kills and PostgreSQL restarts, then the views must equal the event log within
//!     --settle-seconds
//! bench queries [--concurrency 1,8,32,64] [--seconds 10] [--view NAME]
//!     closed loop of GET /orders/{id} over known orders, or of the report's view whose name
//!     contains NAME (`customer_id`, `shipping`, ...) over known customers
//! bench enqueue [--events 100000] / bench caught-up [--events 100000]
//!     the two halves of `scripts/bench catchup`: fill the topic while the query service is
//!     stopped; then time the restarted service until its lag is 0
//! bench report-commands --out DIR / report-queries --out DIR / render --in DIR --out DIR
//!     the phases of `scripts/bench report` (see report.rs)
//! ```
//! Targets: `COMMAND_URL` (http://127.0.0.1:8080), `KAFKA_BROKERS` (127.0.0.1:9092),
//! `KAFKA_TOPIC` (order-events).

mod baseline;
mod catchup;
mod chaos;
mod limits;
mod load;
mod machine;
mod report;
mod scrape;
mod stats;
mod topic;

use std::time::Duration;

use anyhow::{Context, bail};

#[derive(Debug, Clone)]
struct Target {
    command_url: String,
    brokers: String,
    topic: String,
}

/// The query service's URL (`QUERY_URL`, default http://127.0.0.1:8081).
fn query_url() -> String {
    std::env::var("QUERY_URL").unwrap_or_else(|_| "http://127.0.0.1:8081".into())
}

/// The relay's commit → ack histogram buckets as the command service reports them now.
async fn relay_lag(target: &Target) -> anyhow::Result<Vec<(f64, f64)>> {
    scrape::histogram(&target.command_url, "relay_publish_lag_seconds").await
}

/// The stages of a change's way to a read, as the services' histograms name them: the
/// service's base URL and the histogram.
fn visibility_stages<'a>(command_url: &'a str, query_url: &'a str) -> [(&'a str, &'static str); 4] {
    [
        (command_url, "relay_publish_lag_seconds"),
        (query_url, "projector_event_lag_seconds"),
        (query_url, "projector_apply_duration_seconds"),
        (query_url, "read_your_writes_wait_seconds"),
    ]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let target = Target {
        command_url: std::env::var("COMMAND_URL")
            .unwrap_or_else(|_| "http://127.0.0.1:8080".into()),
        brokers: std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into()),
        topic: std::env::var("KAFKA_TOPIC").unwrap_or_else(|_| "order-events".into()),
    };
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let seconds: u64 = flag("--seconds")
        .map_or(Ok(10), |s| s.parse())
        .context("--seconds")?;
    let duration = Duration::from_secs(seconds);
    match args.first().map(String::as_str) {
        Some("commands") => {
            let levels: Vec<usize> = flag("--concurrency")
                .unwrap_or_else(|| "1,8,32,64".into())
                .split(',')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .context("--concurrency")?;
            let customers = load::register_customers(&target, 2_000).await?;
            println!(
                "| connections | requests | errors | req/s | p50 ms | p95 ms | p99 ms | max ms |"
            );
            println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
            let mut errors = 0;
            for connections in levels {
                let run = load::closed_loop(&target, &customers, connections, duration).await?;
                println!(
                    "| {connections} | {} | {} | {:.0} | {} |",
                    run.latency.len(),
                    run.errors,
                    run.rate(),
                    stats::row(&run.latency)
                );
                errors += run.errors;
                if run.latency.is_empty() {
                    bail!("no command succeeded at {connections} connections");
                }
            }
            if errors > 0 {
                bail!("{errors} commands failed");
            }
        }
        Some("relay") => {
            let rate: f64 = flag("--rate")
                .map_or(Ok(500.0), |s| s.parse())
                .context("--rate")?;
            let customers = load::register_customers(&target, 2_000).await?;
            let lag_before = relay_lag(&target).await?;
            let watcher = topic::Watcher::start(&target.brokers, &target.topic)?;
            let (run, _) = load::open_loop(&target, &customers, rate, duration, None).await?;
            let lag = watcher
                .finish(run.latency.len(), Duration::from_secs(30))
                .await?;
            let relay = scrape::since(&lag_before, &relay_lag(&target).await?);
            let bound = |q| {
                scrape::quantile_bound(&relay, q)
                    .map_or("n/a".into(), |s| format!("≤ {:.1}", s * 1000.0))
            };
            println!(
                "| load | accepted | errors | command p50/p95/p99/max ms | commit → broker ack p50/p99 ms (relay histogram) | commit → consumer p50/p95/p99/max ms |"
            );
            println!("|---|---:|---:|---|---|---|");
            println!(
                "| {rate:.0}/s open loop, {seconds} s | {} | {} | {} | {} / {} | {} |",
                run.latency.len(),
                run.errors,
                stats::row(&run.latency),
                bound(0.5),
                bound(0.99),
                stats::row(&lag)
            );
        }
        Some("visibility") => {
            let rate: f64 = flag("--rate")
                .map_or(Ok(500.0), |s| s.parse())
                .context("--rate")?;
            let query_url = query_url();
            let customers = load::register_customers(&target, 2_000).await?;
            let sample: usize = flag("--sample")
                .map_or(Ok(10), |s| s.parse())
                .context("--sample")?;
            let stages = visibility_stages(&target.command_url, &query_url);
            let mut before = Vec::new();
            for (url, name) in stages {
                before.push(scrape::histogram(url, name).await?);
            }
            let (run, visible) = load::open_loop(
                &target,
                &customers,
                rate,
                duration,
                Some((&query_url, sample.max(1))),
            )
            .await?;
            println!(
                "| load | accepted | errors | command p50/p95/p99/max ms | 201 → visible p50/p95/p99/max ms |"
            );
            println!("|---|---:|---:|---|---|");
            println!(
                "| {rate:.0}/s open loop, {seconds} s | {} | {} | {} | {} |",
                run.latency.len(),
                run.errors,
                stats::row(&run.latency),
                stats::row(&visible)
            );
            // Where the time went, by the services' own histograms over the run.
            println!("\n| stage (histogram) | p50 ≤ ms | p99 ≤ ms |\n|---|---:|---:|");
            for ((url, name), before) in stages.into_iter().zip(before) {
                let during = scrape::since(&before, &scrape::histogram(url, name).await?);
                let bound = |q| {
                    scrape::quantile_bound(&during, q)
                        .map_or("n/a".into(), |s| format!("{:.1}", s * 1000.0))
                };
                println!("| {name} | {} | {} |", bound(0.5), bound(0.99));
            }
        }
        Some("queries") => {
            let levels: Vec<usize> = flag("--concurrency")
                .unwrap_or_else(|| "1,8,32,64".into())
                .split(',')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .context("--concurrency")?;
            let query_url = query_url();
            // `--view <part of a name>`: one of the report's other views, over known customers.
            let view = match flag("--view") {
                Some(name) => Some(
                    report::VIEWS
                        .into_iter()
                        .find(|(view, _)| view.contains(name.as_str()))
                        .with_context(|| format!("--view: no view named like {name}"))?,
                ),
                None => None,
            };
            let known = load::known_orders(&query_url, 20_000).await?;
            let (ids, (name, path)): (Vec<uuid::Uuid>, report::View) = match view {
                Some(view) => {
                    let mut customers: Vec<uuid::Uuid> = known.iter().map(|k| k.1).collect();
                    customers.sort_unstable();
                    customers.dedup();
                    (customers, view)
                }
                None => (
                    known.iter().map(|k| k.0).collect(),
                    ("GET /orders/{id}", report::detail),
                ),
            };
            anyhow::ensure!(!ids.is_empty(), "the query service has no orders to read");
            println!(
                "| connections | reads | errors | reads/s | p50 ms | p95 ms | p99 ms | max ms | query service µs/read | PostgreSQL µs/read |  ({name} over {} known ids)",
                ids.len()
            );
            println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            let service = [("query-service", machine::pid("QUERY_PID"))];
            for connections in levels {
                let cpu = machine::CpuMeter::start(&service);
                let run = load::read_loop(&query_url, &ids, path, connections, duration).await?;
                println!(
                    "| {connections} | {} | {} | {:.0} | {} | {} |",
                    run.latency.len(),
                    run.errors,
                    run.rate(),
                    stats::row(&run.latency),
                    machine::cells(&cpu.micros_per(run.latency.len()))
                );
            }
        }
        Some("chaos") => {
            let number = |name: &str, default: u64| -> anyhow::Result<u64> {
                flag(name).map_or(Ok(default), |s| s.parse().with_context(|| name.to_owned()))
            };
            let seed = number("--seed", 0)?;
            let seed = if seed == 0 {
                u64::from(std::process::id()) << 20
                    ^ chrono::Utc::now().timestamp_subsec_nanos() as u64
                    | 1
            } else {
                seed
            };
            chaos::run(chaos::Settings {
                orders: usize::try_from(number("--orders", 5_000)?)?,
                workers: usize::try_from(number("--workers", 16)?)?,
                rate: flag("--rate")
                    .map_or(Ok(20.0), |s| s.parse())
                    .context("--rate")?,
                seed,
                settle: Duration::from_secs(number("--settle-seconds", 900)?),
            })
            .await?;
        }
        Some("baseline") => {
            let addr = flag("--addr").unwrap_or_else(|| "127.0.0.1:8089".into());
            let url = std::env::var("QUERY_DATABASE_URL").context("QUERY_DATABASE_URL")?;
            baseline::serve(&addr, &url).await?;
        }
        Some("enqueue") => {
            let events: usize = flag("--events")
                .map_or(Ok(100_000), |s| s.parse())
                .context("--events")?;
            let command_db =
                std::env::var("COMMAND_DATABASE_URL").context("COMMAND_DATABASE_URL")?;
            catchup::enqueue(&command_db, events).await?;
        }
        Some("caught-up") => {
            let events: usize = flag("--events")
                .map_or(Ok(100_000), |s| s.parse())
                .context("--events")?;
            let catchup = catchup::caught_up(&query_url(), events).await?;
            println!(
                "| backlog | start → first batch | start → lag 0 | events/s (whole) | events/s (after first batch) |"
            );
            println!("|---:|---:|---:|---:|---:|");
            println!(
                "| {events} | {:.1} s | {:.1} s | {:.0} | {:.0} |",
                catchup.startup_s, catchup.total_s, catchup.rate, catchup.rate_applying
            );
            println!(
                "µs of CPU per event, query service | broker | PostgreSQL: {}",
                machine::cells(&catchup.cpu_us)
            );
            if let Some(rss) = machine::pid("QUERY_PID").and_then(machine::peak_rss_mib) {
                println!("query service peak RSS: {rss:.1} MiB");
            }
            if let Some(out) = flag("--out") {
                report::record_catchup(std::path::Path::new(&out), &catchup)?;
            }
        }
        Some("report-commands") => {
            let out = flag("--out").context("--out DIR")?;
            report::measure_commands(&target, &query_url(), std::path::Path::new(&out)).await?;
        }
        Some("report-queries") => {
            let out = flag("--out").context("--out DIR")?;
            report::measure_queries(&query_url(), std::path::Path::new(&out)).await?;
        }
        Some("render") => {
            let (input, out) = (
                flag("--in").context("--in DIR")?,
                flag("--out").context("--out DIR")?,
            );
            let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
            report::render(
                std::path::Path::new(&input),
                std::path::Path::new(&out),
                &date,
            )?;
            println!("wrote {out}/report.md and {out}/latency.svg");
        }
        _ => bail!(
            "usage: bench commands [--concurrency 1,8,32,64] [--seconds 10] | bench relay [--rate 500] [--seconds 10]"
        ),
    }
    Ok(())
}

//! `bench chaos`: a steady stream of mixed commands against two command-service replicas and
//! three query-service replicas sharing the topic's partitions, while the run kills and
//! restarts replicas, the broker and PostgreSQL one fault at a time and times how long the
//! consumer group takes to work again after each. Every command is retried with its
//! `Idempotency-Key` until it is answered; at the end the views must equal what the event log
//! says (`query_service::verify`), with no dead letters but the poison the run injected itself.
//!
//! The run owns the services and the broker as child processes ([`process`]); `scripts/chaos`
//! prepares a private PostgreSQL cluster and a broker with a durable log directory and says how
//! to restart them. The load is in [`driver`], the faults in [`faults`], and the view of the
//! consumer group from outside in [`group`].

mod driver;
mod faults;
mod group;
mod process;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use platform::causes::Causes;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::Mutex;

use driver::{Driver, Rng, Tally};
use faults::Stack;
use group::GroupView;
use process::{Env, PARTITIONS, Process};

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
    /// How long the views may take to equal the event log once the commands are done; the run
    /// fails after that.
    pub settle: Duration,
}

/// Runs the whole chaos scenario and prints its summary; an error when anything was lost,
/// duplicated or refused, or the consumer group stopped making progress.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let env = Env::from_env()?;
    std::fs::create_dir_all(&env.logs)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut stack = Stack {
        broker: Process::broker(&env),
        commands: ["command-a", "command-b"]
            .into_iter()
            .map(|name| Process::service("command-service", name, &env.command_db, &env))
            .collect::<anyhow::Result<_>>()?,
        queries: ["query-a", "query-b", "query-c"]
            .into_iter()
            .map(|name| Process::service("query-service", name, &env.query_db, &env))
            .collect::<anyhow::Result<_>>()?,
    };
    stack.broker.start()?;
    for process in stack.commands.iter_mut().chain(stack.queries.iter_mut()) {
        process.start()?;
        process.wait_until_live(&http).await?;
    }
    println!(
        "chaos: {} orders at {}/s, {} workers, seed {}; 2 command and 3 query replicas, \
         {PARTITIONS} partitions; logs in {}",
        settings.orders,
        settings.rate,
        settings.workers,
        settings.seed,
        env.logs.display()
    );
    let urls: Vec<String> = stack.commands.iter().map(Process::url).collect();
    let tally = Arc::new(Tally::default());
    let customers = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();

    let stop_faults = Arc::new(AtomicBool::new(false));
    let stack = Arc::new(Mutex::new(stack));
    let faults = tokio::spawn(faults::inject(
        stack.clone(),
        env.clone(),
        http.clone(),
        stop_faults.clone(),
        Rng::new(settings.seed ^ 0x9E37_79B9_7F4A_7C15),
    ));
    let mut workers = Vec::new();
    for worker in 0..settings.workers {
        let driver = Driver {
            http: http.clone(),
            urls: urls.clone(),
            tally: tally.clone(),
            customers: customers.clone(),
            rng: Rng::new(settings.seed.wrapping_add(worker as u64 + 1)),
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
    let recoveries = faults.await?;
    let driving = started.elapsed();

    let verdict = match &recoveries {
        Ok(_) => settle(&env, &http, &stack, settings.settle).await,
        Err(_) => Err(anyhow::anyhow!(
            "not verified: the consumer group did not recover"
        )),
    };
    let mut stack = Arc::try_unwrap(stack)
        .map_err(|_| anyhow::anyhow!("stack still shared"))?
        .into_inner();
    for process in stack.commands.iter_mut().chain(stack.queries.iter_mut()) {
        process.terminate().await;
    }
    stack.broker.terminate().await;

    print_summary(&tally, recoveries.as_ref().ok(), driving, &verdict);
    if let Some(error) = driver_error {
        return Err(error.context("a command could not be completed"));
    }
    recoveries?;
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

fn print_summary(
    tally: &Tally,
    recoveries: Option<&faults::Recoveries>,
    driving: Duration,
    verdict: &anyhow::Result<query_service::verify::Report>,
) {
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
    println!("| poison messages injected | {} |", POISON.len());
    println!("| repairs (restarts not injected as faults) | 0 |");
    println!("| driving time | {:.0} s |", driving.as_secs_f64());
    match verdict {
        Ok(report) => {
            println!("| events in the log | {} |", report.events);
            println!(
                "| dead letters (all injected) | {} |",
                report.dead_letters.open
            );
            println!("| mismatches | {} |", report.problems());
        }
        Err(error) => println!("| verification | failed: {} |", Causes::from(error)),
    }
    let Some(recoveries) = recoveries else {
        return;
    };
    println!(
        "\n| fault | count | survivors owned every partition after: median / max \
         | group recovered after: median / max |\n|---|---:|---:|---:|"
    );
    let show = |spread: Option<faults::Spread>| {
        spread.map_or("–".to_owned(), |s| {
            let (median, max) = (s.median.as_secs_f64(), s.max.as_secs_f64());
            format!("{median:.1} s / {max:.1} s")
        })
    };
    for (fault, n, handover, recovered) in faults::summarize(recoveries) {
        println!(
            "| {} | {n} | {} | {} |",
            fault.describe(),
            show(handover),
            show(recovered)
        );
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

/// Waits until the views agree with the event log and every partition is applied to its end (at
/// most `deadline`), and returns the last verification. A group that stops making progress
/// fails the run with what it looked like.
async fn settle(
    env: &Env,
    http: &reqwest::Client,
    stack: &Mutex<Stack>,
    deadline: Duration,
) -> anyhow::Result<query_service::verify::Report> {
    let command_db = sqlx::PgPool::connect(&env.command_db)
        .await
        .context("command database")?;
    let query_db = sqlx::PgPool::connect(&env.query_db)
        .await
        .context("query database")?;
    let replicas = stack.lock().await.live_queries();
    let started = Instant::now();
    loop {
        let report =
            query_service::verify::verify(&command_db, &query_db, POISON.len() as u64).await;
        let group = GroupView::observe(http, &replicas).await;
        match report {
            Ok(report)
                if report.problems() == 0
                    && report.dead_letters.open == POISON.len() as u64
                    && group.caught_up(PARTITIONS) =>
            {
                return Ok(report);
            }
            _ if started.elapsed() > deadline => {
                bail!(
                    "the views did not catch up within {} s; the consumer group:\n{}",
                    deadline.as_secs(),
                    group.describe()
                )
            }
            _ => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
}

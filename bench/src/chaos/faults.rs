//! The faults a chaos run injects, one at a time: each is applied (and the victim started
//! again), then the run waits until the consumer group works again and records how long that
//! took; when the victim is a query-service replica, also how long until the survivors owned
//! its partitions. A group that does not recover within [`RECOVERY_LIMIT`] fails the run with
//! what it looked like; nothing is repaired behind the run's back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::process::Command;
use tokio::sync::Mutex;

use super::driver::Rng;
use super::group::GroupView;
use super::process::{Env, PARTITIONS, Process};

/// How long the group may take to work again after a fault before the run fails.
pub const RECOVERY_LIMIT: Duration = Duration::from_secs(90);

/// A kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// SIGKILL of a query-service replica: it leaves its consumer group only by timing out.
    QueryKill,
    /// SIGTERM of a query-service replica: it finishes its batch and leaves the group.
    QueryStop,
    /// SIGKILL of a command-service replica, maybe the one whose relay is active.
    CommandKill,
    /// SIGKILL of the broker, restarted on its durable log directory.
    BrokerKill,
    /// An immediate-mode restart of PostgreSQL (a crash, then recovery).
    PostgresRestart,
}

impl Fault {
    /// How the summary names it.
    pub fn describe(self) -> &'static str {
        match self {
            Fault::QueryKill => "query-service replica SIGKILL",
            Fault::QueryStop => "query-service replica SIGTERM",
            Fault::CommandKill => "command-service replica SIGKILL",
            Fault::BrokerKill => "broker SIGKILL and restart",
            Fault::PostgresRestart => "PostgreSQL crash-restart",
        }
    }
}

/// The order faults come in: query kills most often, since they are the ones that move
/// partitions between replicas and interrupt batches.
const CYCLE: [Fault; 6] = [
    Fault::QueryKill,
    Fault::CommandKill,
    Fault::BrokerKill,
    Fault::QueryKill,
    Fault::PostgresRestart,
    Fault::QueryStop,
];

/// The processes of the run.
#[derive(Debug)]
pub struct Stack {
    /// The broker.
    pub broker: Process,
    /// The command-service replicas.
    pub commands: Vec<Process>,
    /// The query-service replicas, one consumer group.
    pub queries: Vec<Process>,
}

impl Stack {
    /// The query-service replicas that run, as (name, URL).
    pub fn live_queries(&self) -> Vec<(String, String)> {
        self.queries
            .iter()
            .filter(|q| q.is_running())
            .map(|q| (q.name.clone(), q.url()))
            .collect()
    }
}

/// How long the group took after one fault.
#[derive(Debug, Clone, Copy)]
pub struct Recovery {
    /// From the fault until the surviving query-service replicas owned every partition (query
    /// faults only: the victim is still down then).
    pub handover: Option<Duration>,
    /// From the fault until every partition was consumed by a live replica and moving again
    /// (the victim started again in between).
    pub recovered: Duration,
}

/// The recoveries after each fault, by kind.
pub type Recoveries = BTreeMap<Fault, Vec<Recovery>>;

/// Injects faults until `stop` is set and every kind has happened at least once; then every
/// process runs again. Fails when the group does not recover from one.
pub async fn inject(
    stack: Arc<Mutex<Stack>>,
    env: Env,
    http: reqwest::Client,
    stop: Arc<AtomicBool>,
    mut rng: Rng,
) -> anyhow::Result<Recoveries> {
    let mut recoveries = Recoveries::new();
    for round in 0.. {
        tokio::time::sleep(rng.millis(1_500, 4_000)).await;
        if stop.load(Ordering::SeqCst) && round >= CYCLE.len() {
            break;
        }
        let fault = CYCLE[round % CYCLE.len()];
        let mut stack = stack.lock().await;
        let before = GroupView::observe(&http, &stack.live_queries()).await;
        let started = Instant::now();
        let handover = apply(fault, &mut stack, &env, &http, &mut rng).await?;
        let recovered = wait_for_recovery(&http, &stack, &before, started).await?;
        let recovery = Recovery {
            handover,
            recovered,
        };
        recoveries.entry(fault).or_default().push(recovery);
    }
    Ok(recoveries)
}

/// Applies one fault and starts its victim again; for a query-service victim, returns how long
/// the survivors took to own every partition while it was down.
async fn apply(
    fault: Fault,
    stack: &mut Stack,
    env: &Env,
    http: &reqwest::Client,
    rng: &mut Rng,
) -> anyhow::Result<Option<Duration>> {
    let started = Instant::now();
    let down = rng.millis(200, 2_000);
    match fault {
        Fault::QueryKill | Fault::QueryStop => {
            let which = (rng.next() % stack.queries.len() as u64) as usize;
            if fault == Fault::QueryStop {
                stack.queries[which].terminate().await;
            } else {
                stack.queries[which].kill().await;
            }
            let handover = wait_for_handover(http, stack, started).await?;
            let victim = &mut stack.queries[which];
            victim.start()?;
            victim.wait_until_live(http).await?;
            Ok(Some(handover))
        }
        Fault::CommandKill => {
            let which = (rng.next() % stack.commands.len() as u64) as usize;
            let victim = &mut stack.commands[which];
            victim.kill().await;
            tokio::time::sleep(down).await;
            victim.start()?;
            victim.wait_until_live(http).await?;
            Ok(None)
        }
        Fault::BrokerKill => {
            stack.broker.kill().await;
            tokio::time::sleep(down).await;
            stack.broker.start()?;
            // Until the broker listens again the replicas still report the partitions they
            // held, though their sessions may be lapsing: the group's recovery is only judged
            // once they can reach it.
            wait_for_listener(&env.brokers).await?;
            Ok(None)
        }
        Fault::PostgresRestart => {
            let status = Command::new("sh")
                .args(["-c", &env.pg_restart])
                .status()
                .await?;
            if !status.success() {
                bail!("restarting PostgreSQL failed ({status})");
            }
            Ok(None)
        }
    }
}

/// Waits until the query-service replicas that run own every partition; returns the time since
/// `started`. Fails with the group's state after [`RECOVERY_LIMIT`].
async fn wait_for_handover(
    http: &reqwest::Client,
    stack: &Stack,
    started: Instant,
) -> anyhow::Result<Duration> {
    loop {
        let now = GroupView::observe(http, &stack.live_queries()).await;
        if now.owned(PARTITIONS) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > RECOVERY_LIMIT {
            bail!(
                "the surviving replicas did not take over every partition within {} s:\n{}",
                RECOVERY_LIMIT.as_secs(),
                now.describe()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the first of the bootstrap addresses `brokers` accepts connections.
async fn wait_for_listener(brokers: &str) -> anyhow::Result<()> {
    let address = brokers.split(',').next().unwrap_or(brokers);
    let started = Instant::now();
    while tokio::net::TcpStream::connect(address).await.is_err() {
        if started.elapsed() > RECOVERY_LIMIT {
            bail!(
                "the broker did not listen on {address} within {} s",
                RECOVERY_LIMIT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Waits until every partition is consumed by a live replica and moving again; returns the time
/// since `started`. Fails with the group's state after [`RECOVERY_LIMIT`].
async fn wait_for_recovery(
    http: &reqwest::Client,
    stack: &Stack,
    before: &GroupView,
    started: Instant,
) -> anyhow::Result<Duration> {
    loop {
        let now = GroupView::observe(http, &stack.live_queries()).await;
        if now.recovered_since(before, PARTITIONS) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > RECOVERY_LIMIT {
            bail!(
                "the consumer group did not recover within {} s; before the fault:\n{}\nnow:\n{}",
                RECOVERY_LIMIT.as_secs(),
                before.describe(),
                now.describe()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Median and maximum of some durations.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    /// The middle one (the upper of the two middle ones of an even count).
    pub median: Duration,
    /// The longest.
    pub max: Duration,
}

impl Spread {
    fn of(mut times: Vec<Duration>) -> Option<Spread> {
        times.sort();
        Some(Spread {
            median: *times.get(times.len() / 2)?,
            max: *times.last()?,
        })
    }
}

/// Per kind of fault, in summary order: how many, the spread of the handover times (query
/// faults) and of the recovery times.
pub fn summarize(recoveries: &Recoveries) -> Vec<(Fault, usize, Option<Spread>, Option<Spread>)> {
    recoveries
        .iter()
        .map(|(fault, all)| {
            let handovers = all.iter().filter_map(|r| r.handover).collect();
            let recovered = all.iter().map(|r| r.recovered).collect();
            (
                *fault,
                all.len(),
                Spread::of(handovers),
                Spread::of(recovered),
            )
        })
        .collect()
}

//! The relay: publishes the outbox to Kafka, in position order, and marks each event published
//! only after the broker acknowledged it.
//!
//! Exactly one relay is active across all replicas (a PostgreSQL advisory lock held on a
//! dedicated connection); the others wait and take over when its connection dies. The active
//! relay wakes on its own replica's commits in the process, on `NOTIFY` from the other
//! replicas' commits, and polls as a fallback, because a notification can be lost (a replica
//! crashing between commit and notify, a dropped listener).
//! Delivery is at least once: a crash between the broker's ack and the outbox delete republishes
//! the batch, and consumers drop the duplicates by aggregate version.

mod publish;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use platform::causes::Causes;
use rdkafka::producer::FutureProducer;
use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use publish::producer;

/// The PostgreSQL notification channel that says "the event log has new rows".
pub const CHANNEL: &str = "event_log_appended";

/// Key of the advisory lock that elects the active relay (any fixed number; this is "relay" in
/// ASCII).
const LEADER_LOCK: i64 = 0x72_65_6c_61_79;

/// Relay tuning.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Most events read from the outbox and produced per round.
    pub batch_size: i64,
    /// Fallback poll when no notification arrives; also how often a standby tries to lead.
    pub poll_interval: Duration,
    /// Published events after which the relay vacuums the outbox (0: never, autovacuum's job).
    pub vacuum_every: u64,
}

/// Rung by a command after it committed. When this replica's relay is the active one it wakes
/// at once, in the process; otherwise the notifier tells the active relay, on another replica,
/// with `NOTIFY`.
#[derive(Debug, Clone, Default)]
pub struct CommitSignal(Arc<Signal>);

#[derive(Debug, Default)]
struct Signal {
    /// Wakes this replica's relay.
    relay: Notify,
    /// Wakes [`notify_commits`].
    notifier: Notify,
    /// This replica's relay is the active one.
    leading: AtomicBool,
}

impl CommitSignal {
    /// Says that events were committed. Cheap; many rings before the relay or the notifier runs
    /// coalesce.
    pub fn ring(&self) {
        if self.0.leading.load(Ordering::Acquire) {
            self.0.relay.notify_one();
        } else {
            self.0.notifier.notify_one();
        }
    }

    /// Marks this replica's relay as the active one until the guard is dropped.
    fn leading(&self) -> Leading<'_> {
        self.0.leading.store(true, Ordering::Release);
        Leading(self)
    }
}

/// This replica's relay leads while it lives (see [`CommitSignal::leading`]).
struct Leading<'a>(&'a CommitSignal);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.0.0.leading.store(false, Ordering::Release);
    }
}

/// Turns commit signals into `NOTIFY` on [`CHANNEL`], outside the commands' transactions, while
/// another replica's relay is the active one.
///
/// A `NOTIFY` inside a transaction takes a database-wide lock at commit that serialises all
/// notifying commits; issuing it here, once for any number of commits that happened meanwhile,
/// keeps commits concurrent.
pub async fn notify_commits(pool: PgPool, signal: CommitSignal, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = signal.0.notifier.notified() => {}
        }
        if let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&pool)
            .await
        {
            // The relay's fallback poll picks the events up; nothing is lost.
            tracing::warn!(%error, "could not notify the relay");
        }
    }
}

/// Registers the help texts of the relay's metrics.
pub fn describe_metrics() {
    platform::metrics::handle();
    metrics::describe_counter!(
        "relay_events_published_total",
        "Events the broker acknowledged and the relay removed from the outbox."
    );
    metrics::describe_counter!(
        "relay_publish_failures_total",
        "Relay rounds that could not publish every event they read."
    );
    metrics::describe_histogram!(
        "relay_publish_lag_seconds",
        metrics::Unit::Seconds,
        "From a command's start (just before its commit) to the broker's acknowledgement of its event."
    );
    metrics::describe_gauge!(
        "outbox_backlog_events",
        "Events committed but not yet acknowledged by the broker."
    );
    metrics::describe_gauge!(
        "outbox_oldest_unpublished_age_seconds",
        metrics::Unit::Seconds,
        "Age of the oldest event in the outbox (0 when empty)."
    );
}

/// Publishes the outbox's size and the age of its oldest event as gauges every five seconds
/// (`outbox_backlog_events`, `outbox_oldest_unpublished_age_seconds`).
pub async fn observe_outbox(pool: PgPool, shutdown: CancellationToken) {
    loop {
        match crate::store::event_log::backlog(&pool).await {
            Ok((count, oldest)) => {
                metrics::gauge!("outbox_backlog_events").set(count as f64);
                let age = oldest.map_or(0.0, |t| {
                    (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0
                });
                metrics::gauge!("outbox_oldest_unpublished_age_seconds").set(age);
            }
            Err(error) => {
                tracing::debug!(error = %Causes::from(&error), "could not measure the outbox")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

/// Vacuums the outbox beside the relay after every `every` published events. Each published
/// event leaves a dead row, and the relay's read walks past the dead index entries until a
/// vacuum removes them: with 87,000 of them (autovacuum off) a round's read of an empty outbox
/// took 5.5 ms, and the benchmark's commit → ack p50 rose to 200 ms. Autovacuum, where it is on,
/// wakes once a minute at most (`autovacuum_naptime`), long enough to pile up that many.
struct OutboxVacuum {
    pool: PgPool,
    every: u64,
    since: u64,
    running: Option<tokio::task::JoinHandle<()>>,
}

impl OutboxVacuum {
    fn new(pool: PgPool, every: u64) -> Self {
        OutboxVacuum {
            pool,
            every,
            since: 0,
            running: None,
        }
    }

    /// Counts `published` events and starts a vacuum when due and none is running.
    fn after(&mut self, published: usize) {
        self.since += published as u64;
        if self.every == 0
            || self.since < self.every
            || self
                .running
                .as_ref()
                .is_some_and(|task| !task.is_finished())
        {
            return;
        }
        self.since = 0;
        let pool = self.pool.clone();
        self.running = Some(tokio::spawn(async move {
            let started = std::time::Instant::now();
            // VACUUM cannot run in a transaction: the simple query protocol, no statement.
            match sqlx::raw_sql("VACUUM outbox").execute(&pool).await {
                Ok(_) => tracing::debug!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "vacuumed the outbox"
                ),
                Err(error) => tracing::warn!(%error, "could not vacuum the outbox"),
            }
        }));
    }
}

/// The relay task of one replica.
pub struct Relay {
    pool: PgPool,
    producer: FutureProducer,
    /// Makes a fresh producer after a failure (see [`Relay::run`]).
    renew: Box<dyn Fn() -> anyhow::Result<FutureProducer> + Send + Sync>,
    topic: String,
    settings: RelaySettings,
    /// This replica's commits.
    committed: CommitSignal,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("topic", &self.topic)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// A relay publishing `pool`'s outbox to `topic` with producers made by `producer`, woken
    /// by `committed` and by other replicas' `NOTIFY`.
    pub fn new(
        pool: PgPool,
        producer: impl Fn() -> anyhow::Result<FutureProducer> + Send + Sync + 'static,
        topic: String,
        settings: RelaySettings,
        committed: CommitSignal,
    ) -> anyhow::Result<Self> {
        Ok(Relay {
            pool,
            producer: producer()?,
            renew: Box::new(producer),
            topic,
            settings,
            committed,
        })
    }

    /// Runs until `shutdown`: waits to become the active relay, then publishes. Any failure
    /// (database or broker) gives up leadership, waits and starts over with a fresh producer;
    /// it never ends the task. The fresh producer starts with an empty queue and fresh broker
    /// connections: the old one would otherwise go on retrying what it still held, interleaved
    /// with the next round's sends of the same events. Events of a failed batch stay in the
    /// outbox, so a send the old producer got through is at most duplicated, and consumers
    /// drop duplicates.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        while !shutdown.is_cancelled() {
            match self.lead(&shutdown).await {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(
                        error = %Causes::from(&error),
                        retry_in_ms = backoff.as_millis() as u64,
                        "relay stopped publishing"
                    );
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    match (self.renew)() {
                        Ok(producer) => self.producer = producer,
                        Err(error) => tracing::warn!(
                            error = %Causes::from(&error),
                            "could not renew the producer"
                        ),
                    }
                }
            }
        }
        tracing::info!("relay stopped");
    }

    /// Becomes the active relay and publishes until shutdown (`Ok`) or a failure (`Err`).
    async fn lead(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let Some(mut lock) = self.acquire_leadership(shutdown).await? else {
            return Ok(());
        };
        tracing::info!("this replica's relay is now the active publisher");
        // The fallback poll and the leadership check run on their own clock, so a steady
        // stream of notifications cannot starve them.
        let mut tick = tokio::time::interval(self.settings.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut listener = PgListener::connect_with(&self.pool)
            .await
            .context("connect listener")?;
        listener
            .listen(CHANNEL)
            .await
            .context("listen for appended events")?;
        let mut vacuum = OutboxVacuum::new(self.pool.clone(), self.settings.vacuum_every);
        // From here on this replica's commits wake the relay directly; the first drain below
        // publishes whatever they committed before.
        let _leading = self.committed.leading();
        loop {
            // Drain the backlog batch by batch; a shutdown waits for the batch in flight, never
            // interrupts it, and stops before the next.
            while !shutdown.is_cancelled() {
                let published = publish::batch(
                    &mut lock,
                    &self.producer,
                    &self.topic,
                    self.settings.batch_size,
                )
                .await?;
                vacuum.after(published);
                if published < self.settings.batch_size as usize {
                    break;
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = self.committed.0.relay.notified() => {}
                notification = listener.recv() => { notification.context("wait for notifications")?; }
                _ = tick.tick() => {
                    // Leadership lives as long as this connection; make sure it still does.
                    lock.ping().await.context("leader lock connection lost")?;
                }
            }
        }
    }

    /// Waits until this replica holds the leader lock, on a connection of its own that is kept
    /// for as long as it leads. `None` when shut down first.
    async fn acquire_leadership(
        &self,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Option<PgConnection>> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .context("connect for the leader lock")?
            .detach();
        // The lock lives as long as this session. If the leader's host vanishes without closing
        // its socket, PostgreSQL would hold the lock until the OS keepalive gives up (hours by
        // default); probing the idle connection every few seconds frees it within ~20 s.
        //
        // Its commits (outbox deletes) need not wait for the WAL flush: a delete lost in a crash of
        // the server only republishes those events, and consumers drop the duplicates.
        sqlx::Executor::execute(&mut conn, "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3; SET synchronous_commit = off")
            .await
            .context("set keepalives on the leader connection")?;
        let mut announced = false;
        loop {
            let leader: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(LEADER_LOCK)
                .fetch_one(&mut conn)
                .await
                .context("try the leader lock")?;
            if leader {
                return Ok(Some(conn));
            }
            if !announced {
                tracing::info!("another replica's relay is active; standing by");
                announced = true;
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(None),
                () = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
    }
}

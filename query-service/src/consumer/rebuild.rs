//! Rebuilding the views without downtime.
//!
//! A rebuild creates schema `views_rebuild` with empty copies of every table in `views`, replays
//! the topic from its beginning into it (its own offsets and applied versions live in the copy
//! too) while queries keep being served from `views`, and once the copy has applied at least
//! everything the live views have, swaps the schemas in one transaction that holds the apply lock
//! exclusively — no live batch runs during the swap. Prepared statements of every replica are
//! re-planned against the new tables because the old ones are dropped in the same transaction.
//!
//! One rebuild runs at a time (a partial unique index on `projection_rebuilds`); its progress
//! and heartbeat are stored there so every replica's admin endpoint can show it.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use platform::causes::Causes;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::PgPool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::holes::Holes;
use super::{ConsumerSettings, Projector, incoming};
use crate::projections::Incoming;
use crate::projections::checkpoint;
use platform::db::DbSettings;
use platform::kafka::KafkaSettings;

/// The schema a rebuild fills.
const REBUILD_SCHEMA_PATH: &str = "public,views_rebuild";
/// A running rebuild whose heartbeat is older than this is considered abandoned.
const ABANDONED_AFTER_SECS: f64 = 30.0;

/// Another rebuild is running.
#[derive(Debug, thiserror::Error)]
#[error("rebuild {0} is already running")]
pub struct AlreadyRunning(pub i64);

/// Everything a rebuild needs.
#[derive(Debug, Clone)]
pub struct Rebuild {
    /// The live read database pool (search path `public,views`).
    pub pool: PgPool,
    /// How to connect to the read database.
    pub db: DbSettings,
    /// The broker and topic.
    pub kafka: KafkaSettings,
    /// Batch sizes and waits.
    pub settings: ConsumerSettings,
}

impl Rebuild {
    /// Registers a new rebuild and prepares its schema; fails with [`AlreadyRunning`] when one
    /// runs. Returns its id; [`Rebuild::run`] does the work.
    pub async fn start(&self) -> anyhow::Result<i64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE projection_rebuilds SET status = 'failed', finished_at = now(), error = 'abandoned: no heartbeat'
             WHERE status = 'running' AND heartbeat_at < now() - make_interval(secs => $1)",
        )
        .bind(ABANDONED_AFTER_SECS)
        .execute(&mut *tx)
        .await?;
        let running: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM projection_rebuilds WHERE status = 'running' FOR UPDATE",
        )
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = running {
            return Err(AlreadyRunning(id).into());
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO projection_rebuilds (status) VALUES ('running') RETURNING id",
        )
        .fetch_one(&mut *tx)
        .await?;
        sqlx::Executor::execute(&mut *tx, "DROP SCHEMA IF EXISTS views_rebuild CASCADE;
             CREATE SCHEMA views_rebuild;
             DO $$
             DECLARE t text;
             BEGIN
                 FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'views' LOOP
                     EXECUTE format('CREATE TABLE views_rebuild.%I (LIKE views.%I INCLUDING ALL)', t, t);
                 END LOOP;
             END $$;")
        .await
        .context("create the rebuild schema")?;
        tx.commit().await?;
        tracing::info!(rebuild = id, "rebuild started");
        Ok(id)
    }

    /// Replays the topic into the rebuild schema and swaps it in. Records the outcome.
    pub async fn run(&self, id: i64, shutdown: CancellationToken) -> anyhow::Result<()> {
        // A successful swap records `swapped` in its own transaction; a failure is recorded here.
        let outcome = self.replay_and_swap(id, &shutdown).await;
        if let Err(error) = &outcome {
            sqlx::query("UPDATE projection_rebuilds SET status = 'failed', error = $2, finished_at = now() WHERE id = $1 AND status = 'running'")
                .bind(id)
                .bind(Causes::from(error).to_string())
                .execute(&self.pool)
                .await?;
        }
        match &outcome {
            Ok(()) => tracing::info!(rebuild = id, "rebuild swapped in"),
            Err(error) => {
                tracing::error!(rebuild = id, error = %Causes::from(error), "rebuild failed")
            }
        }
        outcome
    }

    async fn replay_and_swap(&self, id: i64, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let target = platform::db::connect(&DbSettings {
            search_path: Some(REBUILD_SCHEMA_PATH.into()),
            max_connections: 2,
            ..self.db.clone()
        })
        .await?;
        let consumer = self.consume_from_the_beginning()?;
        let projector = Projector {
            pool: target.clone(),
            topic: self.kafka.topic.clone(),
            settings: self.settings.clone(),
            dead_letters: None,
            progress: Default::default(),
            notify: false,
        };
        let mut heartbeat = tokio::time::Instant::now();
        let mut holes = Holes::default();
        loop {
            match next_batch(
                &consumer,
                &self.settings,
                shutdown,
                Duration::from_millis(500),
            )
            .await
            {
                Next::Batch(batch) => {
                    let applied = projector
                        .apply(&batch, shutdown)
                        .await
                        .context("interrupted by shutdown")?;
                    holes
                        .mend(
                            &target,
                            &consumer,
                            &projector.topic,
                            &applied.holes,
                            &projector.progress,
                        )
                        .await;
                }
                Next::Shutdown => anyhow::bail!("interrupted by shutdown"),
                // Nothing new for a while: the topic is drained up to now.
                Next::Idle => {}
            }
            let rebuilt = recorded(&target, &self.kafka.topic).await?;
            if heartbeat.elapsed() > Duration::from_secs(1) {
                self.report(id, &rebuilt).await?;
                heartbeat = tokio::time::Instant::now();
            }
            let live = recorded(&self.pool, &self.kafka.topic).await?;
            if caught_up(&rebuilt, &live) {
                match self.swap(id, &self.kafka.topic).await {
                    Ok(Swap::Done) => return Ok(()),
                    Ok(Swap::Behind) => {}
                    Ok(Swap::NotRunning) => anyhow::bail!(
                        "the rebuild was abandoned meanwhile (no heartbeat); another may run"
                    ),
                    Err(error) => {
                        tracing::warn!(error = %Causes::from(&error), "swap failed; trying again")
                    }
                }
            }
        }
    }

    /// A consumer outside any group, assigned every partition from its beginning.
    fn consume_from_the_beginning(&self) -> anyhow::Result<StreamConsumer> {
        let mut defaults = vec![
            ("group.id", format!("{}-rebuild", self.settings.group_id)),
            ("enable.auto.commit", "false".into()),
            // Reading a partition again from an offset retention deleted starts at its oldest
            // message, not its newest.
            ("auto.offset.reset", "earliest".into()),
            (
                "fetch.wait.max.ms",
                self.settings.fetch_wait.as_millis().to_string(),
            ),
        ];
        defaults.extend(super::PREFETCH.map(|(name, value)| (name, value.to_owned())));
        let consumer: StreamConsumer = self
            .kafka
            .client_config_with(&defaults)
            .create()
            .context("create the rebuild consumer")?;
        let metadata = consumer
            .fetch_metadata(Some(&self.kafka.topic), Duration::from_secs(10))
            .context("read the topic's partitions")?;
        let mut assignment = TopicPartitionList::new();
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            assignment.add_partition_offset(
                &self.kafka.topic,
                partition.id(),
                Offset::Beginning,
            )?;
        }
        consumer
            .assign(&assignment)
            .context("assign the partitions")?;
        Ok(consumer)
    }

    async fn report(&self, id: i64, rebuilt: &BTreeMap<i32, i64>) -> anyhow::Result<()> {
        let progress: serde_json::Map<String, serde_json::Value> = rebuilt
            .iter()
            .map(|(p, o)| (p.to_string(), (*o).into()))
            .collect();
        sqlx::query(
            "UPDATE projection_rebuilds SET progress = $2, heartbeat_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(sqlx::types::Json(progress))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Swaps the schemas if the rebuild has applied at least what the live views have and is
    /// still the running rebuild.
    async fn swap(&self, id: i64, topic: &str) -> anyhow::Result<Swap> {
        let mut tx = self.pool.begin().await?;
        // The swap may wait for long batches; the statement timeout is for requests.
        sqlx::Executor::execute(
            &mut *tx,
            "SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '30s'",
        )
        .await?;
        // Waits for live batches in flight on every replica and holds off new ones.
        checkpoint::exclusive_apply_lock(&mut tx).await?;
        let still_running = sqlx::query("UPDATE projection_rebuilds SET status = 'swapped', finished_at = now(), heartbeat_at = now() WHERE id = $1 AND status = 'running'")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if still_running == 0 {
            return Ok(Swap::NotRunning);
        }
        let rebuilt = offsets_in(&mut tx, Schema::Rebuild, topic).await?;
        let live = offsets_in(&mut tx, Schema::Live, topic).await?;
        if !caught_up(&rebuilt, &live) {
            return Ok(Swap::Behind);
        }
        carry_dead_letters(&mut tx).await?;
        sqlx::Executor::execute(
            &mut *tx,
            "ALTER SCHEMA views RENAME TO views_retired;
             ALTER SCHEMA views_rebuild RENAME TO views;
             DROP SCHEMA views_retired CASCADE;",
        )
        .await
        .context("swap the schemas")?;
        crate::changes::notify_all(&mut tx).await?;
        tx.commit().await.context("commit the swap")?;
        Ok(Swap::Done)
    }
}

/// Carries the live dead letters into the rebuilt views, in the swap's transaction (no live
/// batch, retry or discard runs meanwhile). The replay met every live letter's message again and
/// followed its resolution, but an operator's decisions and the ids they know belong to the
/// letters: without them a later rebuild would park discarded and corrected events once more.
/// A letter the replay parked where a live one exists gives way to the live one; a letter only
/// the replay parked (a view's new constraint, say) is numbered after every id in use.
async fn carry_dead_letters(tx: &mut sqlx::PgConnection) -> anyhow::Result<()> {
    sqlx::Executor::execute(
        tx,
        "DELETE FROM views_rebuild.dead_letters r USING views.dead_letters l
          WHERE r.topic = l.topic AND r.partition = l.partition AND r.kafka_offset = l.kafka_offset;
         SELECT setval(pg_get_serial_sequence('views_rebuild.dead_letters', 'id'),
                       (SELECT coalesce(max(id), 0) + 1 FROM (SELECT id FROM views.dead_letters
                        UNION ALL SELECT id FROM views_rebuild.dead_letters) ids), false);
         UPDATE views_rebuild.dead_letters SET id = DEFAULT;
         INSERT INTO views_rebuild.dead_letters OVERRIDING SYSTEM VALUE SELECT * FROM views.dead_letters;
         SELECT setval(pg_get_serial_sequence('views_rebuild.dead_letters', 'id'),
                       (SELECT coalesce(max(id), 0) + 1 FROM views_rebuild.dead_letters), false);",
    )
    .await
    .context("carry the dead letters into the rebuilt views")?;
    Ok(())
}

/// The latest rebuild as JSON (`id`, `status`, `started_at`, `heartbeat_at`, `finished_at`,
/// `applied_offsets` per partition, `error`), if there was one.
pub async fn latest(pool: &PgPool) -> Result<Option<serde_json::Value>, sqlx::Error> {
    let row: Option<sqlx::types::Json<serde_json::Value>> = sqlx::query_scalar(
        "SELECT to_jsonb(r) FROM (SELECT id, status, started_at, heartbeat_at, finished_at, progress AS applied_offsets, error
                                  FROM projection_rebuilds ORDER BY id DESC LIMIT 1) r",
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|json| json.0))
}

/// True when `rebuilt` has reached every partition offset of `live`.
fn caught_up(rebuilt: &BTreeMap<i32, i64>, live: &BTreeMap<i32, i64>) -> bool {
    live.iter()
        .all(|(partition, next)| rebuilt.get(partition).is_some_and(|r| r >= next))
}

async fn recorded(pool: &PgPool, topic: &str) -> anyhow::Result<BTreeMap<i32, i64>> {
    let mut conn = pool.acquire().await?;
    Ok(checkpoint::offsets(&mut conn, topic)
        .await?
        .into_iter()
        .map(|(p, next, _)| (p, next))
        .collect())
}

/// What a swap attempt found.
enum Swap {
    /// The rebuilt views are live.
    Done,
    /// The live views moved ahead meanwhile; keep applying.
    Behind,
    /// The rebuild was marked abandoned and must not swap.
    NotRunning,
}

/// The two view schemas during a rebuild.
#[derive(Debug, Clone, Copy)]
enum Schema {
    Live,
    Rebuild,
}

async fn offsets_in(
    tx: &mut sqlx::PgConnection,
    schema: Schema,
    topic: &str,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let query = match schema {
        Schema::Live => {
            "SELECT partition, next_offset FROM views.consumer_offsets WHERE topic = $1"
        }
        Schema::Rebuild => {
            "SELECT partition, next_offset FROM views_rebuild.consumer_offsets WHERE topic = $1"
        }
    };
    let rows: Vec<(i32, i64)> = sqlx::query_as(query)
        .bind(topic)
        .fetch_all(tx)
        .await
        .context("read offsets")?;
    Ok(rows.into_iter().collect())
}

/// What waiting for a batch gave.
enum Next {
    /// Up to `batch_size` messages.
    Batch(Vec<Incoming>),
    /// Nothing arrived within the idle limit.
    Idle,
    /// Shutdown began.
    Shutdown,
}

/// Waits for a first message (at most `idle`), then gathers more until the batch is full or
/// `batch_wait` passed.
async fn next_batch(
    consumer: &StreamConsumer,
    settings: &ConsumerSettings,
    shutdown: &CancellationToken,
    idle: Duration,
) -> Next {
    let idle_deadline = Instant::now() + idle;
    let first = loop {
        tokio::select! {
            () = shutdown.cancelled() => return Next::Shutdown,
            () = tokio::time::sleep_until(idle_deadline) => return Next::Idle,
            received = consumer.recv() => match received {
                Ok(message) => break incoming(&message),
                Err(error) => {
                    tracing::warn!(%error, "consumer error");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    };
    let mut batch = Vec::with_capacity(settings.batch_size);
    batch.push(first);
    let deadline = Instant::now() + settings.batch_wait;
    while batch.len() < settings.batch_size {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(message)) => batch.push(incoming(&message)),
            Ok(Err(error)) => tracing::warn!(%error, "consumer error"),
            Err(_elapsed) => break,
        }
    }
    Next::Batch(batch)
}

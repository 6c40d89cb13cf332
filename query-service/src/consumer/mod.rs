//! The Kafka consumer: reads the event topic in a consumer group, hands batches of up to N
//! messages or T milliseconds to the projector, and commits offsets to Kafka only after the
//! projector's database transaction committed.
//!
//! The offsets the projector records in PostgreSQL are the truth; the ones committed to Kafka
//! only tell a (re)joining member roughly where to start. Starting too early is harmless: the
//! projector skips offsets it has already applied.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sqlx::PgPool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::projections::{self, Incoming};
use platform::kafka::KafkaSettings;

/// Consumer tuning.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Consumer group shared by all query-service replicas.
    pub group_id: String,
    /// Most messages applied in one transaction.
    pub batch_size: usize,
    /// Longest a batch waits to fill once its first message arrived.
    pub batch_wait: Duration,
    /// Longest the broker holds a fetch when there is nothing new.
    pub fetch_wait: Duration,
}

/// A consumer in the group, subscribed to the topic.
pub fn subscribe(
    kafka: &KafkaSettings,
    settings: &ConsumerSettings,
) -> anyhow::Result<StreamConsumer> {
    let consumer: StreamConsumer = kafka
        .client_config()
        .set("group.id", &settings.group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set(
            "fetch.wait.max.ms",
            settings.fetch_wait.as_millis().to_string(),
        )
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .create()
        .context("create Kafka consumer")?;
    consumer
        .subscribe(&[&kafka.topic])
        .context("subscribe to the topic")?;
    Ok(consumer)
}

/// Consumes until `shutdown`. A batch that fails to apply (database down) is retried with
/// backoff, never skipped; on shutdown the batch in flight is finished and the consumer leaves
/// the group when dropped.
pub async fn run(
    consumer: Arc<StreamConsumer>,
    pool: PgPool,
    topic: String,
    settings: ConsumerSettings,
    shutdown: CancellationToken,
) {
    while let Some(batch) = next_batch(&consumer, &settings, &shutdown).await {
        let mut backoff = Duration::from_millis(100);
        let started = std::time::Instant::now();
        let summary = loop {
            match projections::apply_batch(&pool, &topic, &batch).await {
                Ok(summary) => break summary,
                Err(error) => {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        retry_in_ms = backoff.as_millis() as u64,
                        "could not apply batch; retrying"
                    );
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        tracing::debug!(messages = batch.len(), ?summary, "applied batch");
        summary.record(started.elapsed(), batch.len());
        commit(&consumer, &topic, &batch);
    }
    tracing::info!("consumer stopped");
}

/// Waits for a first message, then gathers more until the batch is full or `batch_wait` passed.
/// `None` on shutdown.
async fn next_batch(
    consumer: &StreamConsumer,
    settings: &ConsumerSettings,
    shutdown: &CancellationToken,
) -> Option<Vec<Incoming>> {
    let first = loop {
        tokio::select! {
            () = shutdown.cancelled() => return None,
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
    Some(batch)
}

fn incoming(message: &impl Message) -> Incoming {
    Incoming {
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec),
    }
}

/// Commits the next offset of each partition of `batch`. A failure (partition revoked
/// meanwhile, broker away) only means a later member starts a little early.
fn commit(consumer: &StreamConsumer, topic: &str, batch: &[Incoming]) {
    let next = projections::next_offsets(batch);
    let mut offsets = TopicPartitionList::with_capacity(next.len());
    for (partition, offset) in next {
        if let Err(error) = offsets.add_partition_offset(topic, partition, Offset::Offset(offset)) {
            tracing::warn!(%error, partition, "cannot build offset commit");
        }
    }
    if let Err(error) = consumer.commit(&offsets, CommitMode::Async) {
        tracing::debug!(%error, "offset commit to Kafka failed; the database holds the truth");
    }
}

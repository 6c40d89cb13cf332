//! Applying batches of consumed messages to the views.
//!
//! One transaction per batch holds the view changes, the per-aggregate versions applied and the
//! next offset of each partition. Because all three commit together, a message is applied exactly
//! when its offset is recorded: redeliveries after a crash or rebalance (offset below the
//! recorded one) and relay duplicates (version at or below the applied one) change nothing.

mod checkpoint;
mod dead_letters;
pub mod order_detail;

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use shared_events::{DomainEvent, EventEnvelope};
use sqlx::PgPool;

/// The migrations of the read database (`migrations/query`), embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/query");

/// A consumed message, detached from the consumer.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
    /// The message key (the customer id).
    pub key: Option<Vec<u8>>,
    /// The envelope, as JSON bytes.
    pub payload: Option<Vec<u8>>,
}

/// What one batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchSummary {
    /// Events applied to the views.
    pub applied: usize,
    /// Messages at offsets already applied (redelivered after a crash or rebalance).
    pub redelivered: usize,
    /// Events whose version was already applied (published twice by the relay).
    pub duplicates: usize,
    /// Events of types or schema versions this build does not know; skipped.
    pub skipped: usize,
    /// Events arriving before an earlier version of their aggregate; skipped until the relay
    /// delivers the missing version and this one again.
    pub out_of_order: usize,
    /// Messages that could not be decoded; parked as dead letters.
    pub parked: usize,
}

impl BatchSummary {
    /// Records the batch in the projector's metrics.
    pub fn record(&self, took: std::time::Duration, messages: usize) {
        metrics::histogram!("projector_batch_size").record(messages as f64);
        metrics::histogram!("projector_apply_duration_seconds").record(took.as_secs_f64());
        for (outcome, count) in [
            ("applied", self.applied),
            ("redelivered", self.redelivered),
            ("duplicate", self.duplicates),
            ("skipped", self.skipped),
            ("out_of_order", self.out_of_order),
            ("parked", self.parked),
        ] {
            if count > 0 {
                metrics::counter!("projector_messages_total", "outcome" => outcome)
                    .increment(count as u64);
            }
        }
    }
}

/// A decoded event ready to apply.
pub type Applicable = (EventEnvelope, DomainEvent);

/// Applies `batch` (messages of `topic`, in consumption order) in one transaction.
pub async fn apply_batch(
    pool: &PgPool,
    topic: &str,
    batch: &[Incoming],
) -> anyhow::Result<BatchSummary> {
    let mut summary = BatchSummary::default();
    let mut tx = pool.begin().await.context("begin batch")?;

    // Locks the partitions' offset rows: a replica that lost a partition in a rebalance while
    // applying it waits here, then sees the offsets the other replica recorded and skips.
    let mut partitions: Vec<i32> = batch.iter().map(|m| m.partition).collect();
    partitions.sort_unstable();
    partitions.dedup();
    let recorded = checkpoint::lock_offsets(&mut tx, topic, &partitions).await?;

    let mut decoded = Vec::with_capacity(batch.len());
    let mut poison = Vec::new();
    for message in batch {
        if message.offset < recorded.get(&message.partition).copied().unwrap_or(0) {
            summary.redelivered += 1;
            continue;
        }
        match decode(message) {
            Ok(event) => decoded.push(event),
            Err(error) if error.is_from_newer_producer() => {
                tracing::debug!(partition = message.partition, offset = message.offset, %error, "skipping event from a newer producer");
                summary.skipped += 1;
            }
            Err(error) => poison.push((message, error.to_string())),
        }
    }

    let applicable = in_version_order(&mut tx, decoded, &mut summary).await?;
    order_detail::apply(&mut tx, &applicable).await?;
    checkpoint::save_versions(&mut tx, &applicable).await?;
    summary.applied = applicable.len();

    summary.parked = poison.len();
    for (message, error) in &poison {
        tracing::error!(
            partition = message.partition,
            offset = message.offset,
            error,
            "parking undecodable message as a dead letter"
        );
    }
    dead_letters::park(&mut tx, topic, &poison).await?;

    checkpoint::save_offsets(&mut tx, topic, &next_offsets(batch)).await?;
    tx.commit().await.context("commit batch")?;
    Ok(summary)
}

/// The next offset to consume of each partition in `batch`.
pub fn next_offsets(batch: &[Incoming]) -> BTreeMap<i32, i64> {
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for message in batch {
        let offset = next.entry(message.partition).or_default();
        *offset = (*offset).max(message.offset + 1);
    }
    next
}

fn decode(message: &Incoming) -> Result<Applicable, shared_events::DecodeError> {
    let envelope = EventEnvelope::from_slice(message.payload.as_deref().unwrap_or_default())?;
    let event = DomainEvent::from_envelope(&envelope)?;
    Ok((envelope, event))
}

/// Keeps the events that are the next version of their aggregate, in order; counts the rest.
async fn in_version_order(
    tx: &mut sqlx::PgConnection,
    decoded: Vec<Applicable>,
    summary: &mut BatchSummary,
) -> anyhow::Result<Vec<Applicable>> {
    let ids: Vec<uuid::Uuid> = decoded.iter().map(|(e, _)| e.aggregate_id).collect();
    let mut applied: HashMap<uuid::Uuid, i64> = checkpoint::applied_versions(tx, &ids).await?;
    let mut applicable = Vec::with_capacity(decoded.len());
    for (envelope, event) in decoded {
        let current = applied.get(&envelope.aggregate_id).copied().unwrap_or(0);
        if envelope.aggregate_version <= current {
            summary.duplicates += 1;
        } else if envelope.aggregate_version > current + 1 {
            tracing::warn!(aggregate_id = %envelope.aggregate_id, version = envelope.aggregate_version, applied = current, "event arrived before an earlier version; waiting for redelivery");
            summary.out_of_order += 1;
        } else {
            applied.insert(envelope.aggregate_id, envelope.aggregate_version);
            applicable.push((envelope, event));
        }
    }
    Ok(applicable)
}

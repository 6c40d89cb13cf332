//! Applying consumed messages to the views.
//!
//! One transaction per batch holds the view changes, the per-aggregate versions applied and the
//! next offset of each partition. Because they commit together, a message is applied exactly
//! when its offset is recorded: redeliveries after a crash or rebalance (offset below the
//! recorded one) and relay duplicates (version at or below the applied one) change nothing.
//! Each view module folds events in memory and writes with a few set-based statements, so a
//! batch costs about the same number of round trips whatever its size.

pub mod checkpoint;
pub mod customer_profile;
pub mod daily_sales;
pub mod dead_letters;
pub mod order_detail;
pub mod order_lists;
pub mod retry;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Context;
use shared_events::{DecodeError, DomainEvent, EventEnvelope};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The migrations of the read database (`migrations/query`), embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/query");

/// The notification channel that says "views changed"; its payload lists the customers whose
/// views changed (comma-separated ids) or is `*` for "any".
pub const CHANNEL: &str = "views_changed";

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

impl Incoming {
    /// The envelope and event in the payload.
    pub fn decode(&self) -> Result<Applicable, DecodeError> {
        decode(self.payload.as_deref().unwrap_or_default())
    }
}

/// Decodes a message payload into its envelope and typed event.
pub fn decode(payload: &[u8]) -> Result<Applicable, DecodeError> {
    let envelope = EventEnvelope::from_slice(payload)?;
    let event = DomainEvent::from_envelope(&envelope)?;
    Ok((envelope, event))
}

/// A decoded event ready to apply.
pub type Applicable = (EventEnvelope, DomainEvent);

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
    /// Messages parked as dead letters.
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

/// Why a batch could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The database or the network failed; the same batch will succeed later.
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// A message's data was refused by the views' constraints; retrying it cannot help.
    #[error("poison: {0:#}")]
    Poison(anyhow::Error),
}

impl ApplyError {
    /// Poison when the database refused the data itself (SQLSTATE classes 22 and 23: data
    /// exceptions and integrity violations); anything else is worth retrying.
    fn classify(error: anyhow::Error) -> ApplyError {
        let refused_data = error.chain().any(|cause| {
            matches!(cause.downcast_ref::<sqlx::Error>(), Some(sqlx::Error::Database(e))
                if e.code().is_some_and(|code| code.starts_with("22") || code.starts_with("23")))
        });
        if refused_data {
            ApplyError::Poison(error)
        } else {
            ApplyError::Transient(error)
        }
    }
}

/// Which customers' views an application changed (for notifications and live streams).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changed {
    /// The customers (partition keys) of every applied event.
    pub customers: BTreeSet<Uuid>,
}

/// Messages of a batch that were parked, with the reason.
pub type Parked<'m> = Vec<(&'m Incoming, String)>;

/// Applies `batch` (messages of `topic`, in consumption order) in one transaction. Returns what
/// it did and the messages it parked as dead letters.
pub async fn apply_batch<'m>(
    pool: &PgPool,
    topic: &str,
    batch: &'m [Incoming],
) -> Result<(BatchSummary, Parked<'m>), ApplyError> {
    apply_batch_inner(pool, topic, batch)
        .await
        .map_err(ApplyError::classify)
}

async fn apply_batch_inner<'m>(
    pool: &PgPool,
    topic: &str,
    batch: &'m [Incoming],
) -> anyhow::Result<(BatchSummary, Parked<'m>)> {
    let mut summary = BatchSummary::default();
    let mut tx = pool.begin().await.context("begin batch")?;
    checkpoint::share_apply_lock(&mut tx).await?;

    // Locks the partitions' offset rows: a replica that lost a partition in a rebalance while
    // applying it waits here, then sees the offsets the other replica recorded and skips.
    let mut partitions: Vec<i32> = batch.iter().map(|m| m.partition).collect();
    partitions.sort_unstable();
    partitions.dedup();
    let recorded = checkpoint::lock_offsets(&mut tx, topic, &partitions).await?;

    let mut decoded = Vec::with_capacity(batch.len());
    let mut parked: Vec<(&Incoming, Option<&EventEnvelope>, String)> = Vec::new();
    for message in batch {
        if message.offset < recorded.get(&message.partition).copied().unwrap_or(0) {
            summary.redelivered += 1;
            continue;
        }
        match message.decode() {
            Ok(event) => decoded.push((message, event)),
            Err(error) if error.is_from_newer_producer() => {
                tracing::debug!(partition = message.partition, offset = message.offset, %error, "skipping event from a newer producer");
                summary.skipped += 1;
            }
            Err(error) => parked.push((message, None, error.to_string())),
        }
    }

    let ordered = in_version_order(&mut tx, decoded).await?;
    summary.duplicates = ordered.duplicates;
    for (message, (envelope, _)) in &ordered.gaps {
        match dead_letters::parked_before(
            &mut tx,
            envelope.aggregate_id,
            envelope.aggregate_version,
        )
        .await?
        {
            Some(version) => parked.push((
                message,
                Some(envelope),
                format!("version {version} of this aggregate is parked; retry it first"),
            )),
            None => {
                tracing::warn!(aggregate_id = %envelope.aggregate_id, version = envelope.aggregate_version, "event arrived before an earlier version; waiting for redelivery");
                summary.out_of_order += 1;
            }
        }
    }
    let applicable: Vec<Applicable> = ordered.next.into_iter().map(|(_, event)| event).collect();
    let changed = apply_events(&mut tx, &applicable).await?;
    summary.applied = applicable.len();

    summary.parked = parked.len();
    for (message, _, error) in &parked {
        tracing::error!(
            partition = message.partition,
            offset = message.offset,
            error,
            "parking message as a dead letter"
        );
    }
    dead_letters::park(&mut tx, topic, &parked).await?;

    let last_event_at = applicable.iter().map(|(e, _)| e.occurred_at).max();
    checkpoint::save_offsets(&mut tx, topic, &next_offsets(batch), last_event_at).await?;
    notify(&mut tx, &changed).await?;
    tx.commit().await.context("commit batch")?;
    Ok((
        summary,
        parked
            .into_iter()
            .map(|(message, _, error)| (message, error))
            .collect(),
    ))
}

/// Parks one message that the views refused, and moves its partition past it, in one
/// transaction: the stream goes on without it.
pub async fn park_refused(
    pool: &PgPool,
    topic: &str,
    message: &Incoming,
    error: &str,
) -> anyhow::Result<()> {
    let mut tx = pool.begin().await.context("begin parking")?;
    checkpoint::share_apply_lock(&mut tx).await?;
    checkpoint::lock_offsets(&mut tx, topic, &[message.partition]).await?;
    let decoded = message.decode().ok();
    dead_letters::park(
        &mut tx,
        topic,
        &[(message, decoded.as_ref().map(|(e, _)| e), error.to_owned())],
    )
    .await?;
    checkpoint::save_offsets(&mut tx, topic, &next_offsets([message]), None).await?;
    tx.commit().await.context("commit parking")?;
    metrics::counter!("projector_messages_total", "outcome" => "parked").increment(1);
    Ok(())
}

/// Applies events that are the next version of their aggregates to every view and records
/// their versions. The caller owns the transaction and has checked the versions.
pub async fn apply_events(tx: &mut PgConnection, events: &[Applicable]) -> anyhow::Result<Changed> {
    let customers = customer_profile::apply_customer_events(tx, events).await?;
    let orders_changed_for = order_detail::apply(tx, events, &customers).await?;
    customer_profile::recompute_order_figures(tx, &orders_changed_for).await?;
    daily_sales::apply(tx, events).await?;
    checkpoint::save_versions(tx, events).await?;
    Ok(Changed {
        customers: events
            .iter()
            .map(|(_, event)| event.customer_id())
            .collect(),
    })
}

/// Tells every replica's waiters and live streams which customers' views changed. Inside the
/// transaction, so it is delivered exactly when the change becomes visible.
pub async fn notify(tx: &mut PgConnection, changed: &Changed) -> anyhow::Result<()> {
    if changed.customers.is_empty() {
        return Ok(());
    }
    // A notification payload holds at most 8000 bytes; beyond ~200 ids, say "anything".
    let payload = if changed.customers.len() > 200 {
        "*".to_owned()
    } else {
        changed
            .customers
            .iter()
            .map(Uuid::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(tx)
        .await
        .context("notify view changes")?;
    Ok(())
}

/// Tells every replica that any view may have changed (after a rebuild's swap).
pub async fn notify_all(tx: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::query("SELECT pg_notify($1, '*')")
        .bind(CHANNEL)
        .execute(tx)
        .await
        .context("notify view changes")?;
    Ok(())
}

/// The next offset to consume of each partition in `batch`.
pub fn next_offsets<'a>(batch: impl IntoIterator<Item = &'a Incoming>) -> BTreeMap<i32, i64> {
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for message in batch {
        let offset = next.entry(message.partition).or_default();
        *offset = (*offset).max(message.offset + 1);
    }
    next
}

/// Decoded events sorted into those to apply now, duplicates, and those that came too early.
struct Ordered<'m> {
    next: Vec<(&'m Incoming, Applicable)>,
    gaps: Vec<(&'m Incoming, Applicable)>,
    duplicates: usize,
}

/// Keeps the events that are the next version of their aggregate, in order.
async fn in_version_order<'m>(
    tx: &mut PgConnection,
    decoded: Vec<(&'m Incoming, Applicable)>,
) -> anyhow::Result<Ordered<'m>> {
    let ids: Vec<Uuid> = decoded.iter().map(|(_, (e, _))| e.aggregate_id).collect();
    let mut applied: HashMap<Uuid, i64> = checkpoint::applied_versions(tx, &ids).await?;
    let mut ordered = Ordered {
        next: Vec::with_capacity(decoded.len()),
        gaps: Vec::new(),
        duplicates: 0,
    };
    for (message, (envelope, event)) in decoded {
        let current = applied.get(&envelope.aggregate_id).copied().unwrap_or(0);
        if envelope.aggregate_version <= current {
            ordered.duplicates += 1;
        } else if envelope.aggregate_version > current + 1 {
            ordered.gaps.push((message, (envelope, event)));
        } else {
            applied.insert(envelope.aggregate_id, envelope.aggregate_version);
            ordered.next.push((message, (envelope, event)));
        }
    }
    Ok(ordered)
}

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
    /// The W3C trace context of the request that caused the event (Kafka header).
    pub traceparent: Option<String>,
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

/// Registers the help texts of the projector's metrics.
pub fn describe_metrics() {
    platform::metrics::handle();
    metrics::describe_counter!(
        "projector_messages_total",
        "Consumed messages by outcome: applied, redelivered, duplicate, skipped, out_of_order, parked."
    );
    metrics::describe_histogram!("projector_batch_size", "Messages per applied batch.");
    metrics::describe_histogram!(
        "projector_apply_duration_seconds",
        metrics::Unit::Seconds,
        "Time to apply and commit a batch."
    );
    metrics::describe_gauge!(
        "projector_lag_events",
        "Messages published to a partition but not yet applied to the views."
    );
    metrics::describe_gauge!(
        "dead_letters_parked",
        "Messages parked as dead letters and not yet retried or discarded."
    );
    metrics::describe_counter!(
        "read_your_writes_waits_total",
        "Read-your-writes waits by outcome: caught_up or timed_out."
    );
    metrics::describe_histogram!(
        "read_your_writes_wait_seconds",
        metrics::Unit::Seconds,
        "How long read-your-writes waits that caught up took."
    );
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
    /// The version each changed aggregate is at now.
    pub versions: BTreeMap<Uuid, i64>,
}

impl Changed {
    /// Adds what `other` changed.
    pub fn extend(&mut self, other: Changed) {
        self.customers.extend(other.customers);
        for (id, version) in other.versions {
            let current = self.versions.entry(id).or_default();
            *current = (*current).max(version);
        }
    }
}

/// Messages of a batch that were parked, with the reason.
pub type Parked<'m> = Vec<(&'m Incoming, String)>;

/// Applies `batch` (messages of `topic`, in consumption order) in one transaction. Returns what
/// it did and the messages it parked as dead letters. `notify` tells other replicas' waiters and
/// streams (the live views do; a rebuild does not).
pub async fn apply_batch<'m>(
    pool: &PgPool,
    topic: &str,
    batch: &'m [Incoming],
    notify: bool,
) -> Result<(BatchSummary, Parked<'m>), ApplyError> {
    apply_batch_inner(pool, topic, batch, notify)
        .await
        .map_err(ApplyError::classify)
}

async fn apply_batch_inner<'m>(
    pool: &PgPool,
    topic: &str,
    batch: &'m [Incoming],
    notify_changes: bool,
) -> anyhow::Result<(BatchSummary, Parked<'m>)> {
    let mut summary = BatchSummary::default();
    let mut tx = pool.begin().await.context("begin batch")?;
    checkpoint::share_apply_lock(&mut tx).await?;

    // Locks the partitions' offset rows: a replica that lost a partition in a rebalance while
    // applying it waits here, then sees the offsets the other replica recorded and skips. Dead
    // letter retries lock the same rows, so they never interleave with a batch.
    let mut partitions: Vec<i32> = batch.iter().map(|m| m.partition).collect();
    partitions.sort_unstable();
    partitions.dedup();
    let recorded = checkpoint::lock_offsets(&mut tx, topic, &partitions).await?;
    let fresh: Vec<&Incoming> = batch
        .iter()
        .filter(|m| m.offset >= recorded.get(&m.partition).copied().unwrap_or(0))
        .collect();
    summary.redelivered = batch.len() - fresh.len();
    // Messages an operator already resolved (met again by a rebuild or a replay).
    let resolutions = dead_letters::resolutions(&mut tx, topic, &fresh).await?;

    let mut parked: Vec<dead_letters::ToPark<'m>> = Vec::new();
    let mut decoded = Vec::with_capacity(fresh.len());
    for message in fresh {
        let payload = match resolutions.get(&(message.partition, message.offset)) {
            Some(dead_letters::Resolution::Discarded) => {
                summary.skipped += 1;
                continue;
            }
            Some(dead_letters::Resolution::Retried(payload)) => payload.as_slice(),
            None => message.payload.as_deref().unwrap_or_default(),
        };
        match EventEnvelope::from_slice(payload) {
            Err(error) => parked.push((message, None, error.to_string(), "parked")),
            Ok(envelope) => match DomainEvent::from_envelope(&envelope) {
                Ok(event) => decoded.push((message, envelope, Some(event))),
                // A newer producer's event: its version counts as seen, its effect is skipped.
                Err(error) if error.is_from_newer_producer() => {
                    tracing::debug!(partition = message.partition, offset = message.offset, %error, "skipping event from a newer producer");
                    decoded.push((message, envelope, None));
                }
                Err(error) => parked.push((message, Some(envelope), error.to_string(), "parked")),
            },
        }
    }
    let ordered = in_version_order(&mut tx, decoded).await?;
    summary.duplicates = ordered.duplicates;
    for (message, envelope, _) in ordered.gaps {
        let reason = format!(
            "waiting for an earlier version of aggregate {} (this is version {})",
            envelope.aggregate_id, envelope.aggregate_version
        );
        tracing::info!(aggregate_id = %envelope.aggregate_id, version = envelope.aggregate_version, "event arrived before an earlier version; it waits beside the dead letters");
        summary.out_of_order += 1;
        parked.push((message, Some(envelope), reason, "waiting"));
    }
    let mut applicable = Vec::with_capacity(ordered.next.len());
    let mut seen_only = Vec::new();
    for (message, envelope, event) in ordered.next {
        tracing::debug!(
            event_type = envelope.event_type,
            aggregate_id = %envelope.aggregate_id,
            version = envelope.aggregate_version,
            correlation_id = envelope.correlation_id.as_deref().unwrap_or_default(),
            trace_id = message.traceparent.as_deref().and_then(platform::http::trace_id).unwrap_or_default(),
            partition = message.partition,
            offset = message.offset,
            "applying event"
        );
        match event {
            Some(event) => applicable.push((envelope, event)),
            None => seen_only.push(envelope),
        }
    }
    summary.skipped += seen_only.len();
    let mut changed = apply_events(&mut tx, &applicable).await?;
    checkpoint::save_seen_versions(&mut tx, &seen_only).await?;
    for envelope in &seen_only {
        changed
            .customers
            .insert(envelope.partition_key.parse().unwrap_or_default());
        let version = changed.versions.entry(envelope.aggregate_id).or_default();
        *version = envelope.aggregate_version.max(*version);
    }
    summary.applied = applicable.len();

    for (message, _, error, status) in &parked {
        if *status == "parked" {
            tracing::error!(
                partition = message.partition,
                offset = message.offset,
                error,
                "parking message as a dead letter"
            );
        }
    }
    summary.parked = parked.iter().filter(|p| p.3 == "parked").count();
    dead_letters::park(&mut tx, topic, &parked).await?;

    // Events that waited for what this batch applied can follow now.
    let advanced: BTreeSet<Uuid> = applicable
        .iter()
        .map(|(e, _)| e.aggregate_id)
        .chain(seen_only.iter().map(|e| e.aggregate_id))
        .collect();
    let released = dead_letters::release_waiting(&mut tx, &advanced).await?;
    summary.applied += released.applied;
    changed.extend(released.changed);

    let last_event_at = applicable.iter().map(|(e, _)| e.occurred_at).max();
    checkpoint::save_offsets(&mut tx, topic, &next_offsets(batch), last_event_at).await?;
    if notify_changes {
        notify(&mut tx, &changed).await?;
    }
    tx.commit().await.context("commit batch")?;
    let parked = parked
        .into_iter()
        .filter(|p| p.3 == "parked")
        .map(|(message, _, error, _)| (message, error))
        .collect();
    Ok((summary, parked))
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
    let envelope = EventEnvelope::from_slice(message.payload.as_deref().unwrap_or_default()).ok();
    dead_letters::park(
        &mut tx,
        topic,
        &[(message, envelope, error.to_owned(), "parked")],
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
    let mut versions = BTreeMap::new();
    for (envelope, _) in events {
        let version = versions.entry(envelope.aggregate_id).or_default();
        *version = envelope.aggregate_version.max(*version);
    }
    Ok(Changed {
        customers: events
            .iter()
            .map(|(_, event)| event.customer_id())
            .collect(),
        versions,
    })
}

/// Tells every replica's waiters and live streams which customers' views changed. Inside the
/// transaction, so it is delivered exactly when the change becomes visible.
pub async fn notify(tx: &mut PgConnection, changed: &Changed) -> anyhow::Result<()> {
    if changed.customers.is_empty() && changed.versions.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(crate::changes::Change::payload(changed))
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
    next: Vec<Decoded<'m>>,
    gaps: Vec<Decoded<'m>>,
    duplicates: usize,
}

/// A message with its envelope and, unless it came from a newer producer, its event.
type Decoded<'m> = (&'m Incoming, EventEnvelope, Option<DomainEvent>);

/// Keeps the events that are the next version of their aggregate, in order.
async fn in_version_order<'m>(
    tx: &mut PgConnection,
    decoded: Vec<Decoded<'m>>,
) -> anyhow::Result<Ordered<'m>> {
    let ids: Vec<Uuid> = decoded.iter().map(|(_, e, _)| e.aggregate_id).collect();
    let mut applied: HashMap<Uuid, i64> = checkpoint::applied_versions(tx, &ids).await?;
    let mut ordered = Ordered {
        next: Vec::with_capacity(decoded.len()),
        gaps: Vec::new(),
        duplicates: 0,
    };
    for (message, envelope, event) in decoded {
        let current = applied.get(&envelope.aggregate_id).copied().unwrap_or(0);
        if envelope.aggregate_version <= current {
            ordered.duplicates += 1;
        } else if envelope.aggregate_version > current + 1 {
            ordered.gaps.push((message, envelope, event));
        } else {
            applied.insert(envelope.aggregate_id, envelope.aggregate_version);
            ordered.next.push((message, envelope, event));
        }
    }
    Ok(ordered)
}

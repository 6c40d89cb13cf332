//! One batch of consumed messages, applied in one transaction: which messages are new (offsets
//! above the recorded ones), which events are the next version of their aggregate, which wait
//! for an earlier one or are parked, and the offsets and notification that commit with them.
//! What each view does with an event is in the view's own module.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Context;
use platform::causes::Causes;
use shared_events::{DomainEvent, EventEnvelope};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::continuity::{self, Continuity, Hole};
use super::dead_letters::{self, LetterStatus, ToPark};
use super::{Applicable, apply_events, checkpoint};
use crate::changes::{self, Changed};

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
    /// Messages above the next offset of their partition (a hole: see [`super::continuity`]);
    /// not applied, read again.
    pub ahead: usize,
}

/// Registers the help texts of the projector's metrics.
pub fn describe_metrics() {
    platform::metrics::handle();
    metrics::describe_counter!(
        "projector_messages_total",
        "Consumed messages by outcome: applied, redelivered, duplicate, skipped, out_of_order, parked, ahead."
    );
    metrics::describe_histogram!("projector_batch_size", "Messages per applied batch.");
    metrics::describe_histogram!(
        "projector_apply_duration_seconds",
        metrics::Unit::Seconds,
        "Time to apply and commit a batch."
    );
    metrics::describe_histogram!(
        "projector_event_lag_seconds",
        metrics::Unit::Seconds,
        "From a command's start (just before its commit) to the commit of the batch that applied its event."
    );
    metrics::describe_gauge!(
        "projector_lag_events",
        "Messages published to a partition but not yet applied to the views."
    );
    metrics::describe_gauge!(
        "dead_letters_parked",
        "Messages parked as dead letters and not yet retried or discarded."
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
            ("ahead", self.ahead),
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
    #[error("transient: {}", Causes::from(.0))]
    Transient(anyhow::Error),
    /// A message's data was refused by the views' constraints; retrying it cannot help.
    #[error("poison: {}", Causes::from(.0))]
    Poison(anyhow::Error),
}

impl ApplyError {
    /// Poison when the database refused the data itself (SQLSTATE classes 22 and 23: data
    /// exceptions and integrity violations); anything else is worth retrying.
    pub(super) fn classify(error: anyhow::Error) -> ApplyError {
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

/// Messages of a batch that were parked, with the reason.
pub type Parked<'m> = Vec<(&'m Incoming, String)>;

/// What a batch's transaction committed.
#[derive(Debug, Default)]
pub struct Applied<'m> {
    /// What it did with the messages.
    pub summary: BatchSummary,
    /// The messages it parked as dead letters, with the reason.
    pub parked: Parked<'m>,
    /// The next offset of each partition of the batch, as recorded.
    pub next: BTreeMap<i32, i64>,
    /// The partitions to read again from their recorded offset.
    pub holes: Vec<Hole>,
}

impl<'m> Applied<'m> {
    /// Adds what a later transaction over the same messages' partitions committed.
    pub fn absorb(&mut self, later: Applied<'m>) {
        let (summary, other) = (&mut self.summary, later.summary);
        summary.applied += other.applied;
        summary.redelivered += other.redelivered;
        summary.duplicates += other.duplicates;
        summary.skipped += other.skipped;
        summary.out_of_order += other.out_of_order;
        summary.parked += other.parked;
        summary.ahead += other.ahead;
        self.parked.extend(later.parked);
        for (partition, next) in later.next {
            let recorded = self.next.entry(partition).or_default();
            *recorded = (*recorded).max(next);
        }
        // A partition's hole starts where its views stand after both transactions. Reading it
        // again from there is always safe; a message not applied may have been applied since.
        for hole in later.holes {
            match self
                .holes
                .iter_mut()
                .find(|h| h.partition == hole.partition)
            {
                Some(earlier) => earlier.to = earlier.to.min(hole.to),
                None => self.holes.push(hole),
            }
        }
        for hole in &mut self.holes {
            hole.from = self.next[&hole.partition];
            hole.to = hole.to.max(hole.from);
        }
    }
}

/// Applies `batch` (messages of `topic`, in consumption order) in one transaction. `notify`
/// tells other replicas' waiters and streams (the live views do; a rebuild does not).
pub async fn apply_batch<'m>(
    pool: &PgPool,
    topic: &str,
    batch: &'m [Incoming],
    notify: bool,
) -> Result<Applied<'m>, ApplyError> {
    apply_batch_inner(pool, topic, batch, notify)
        .await
        .map_err(ApplyError::classify)
}

async fn apply_batch_inner<'m>(
    pool: &PgPool,
    topic: &str,
    batch: &'m [Incoming],
    notify_changes: bool,
) -> anyhow::Result<Applied<'m>> {
    let mut summary = BatchSummary::default();
    let mut tx = pool.begin().await.context("begin batch")?;
    checkpoint::share_apply_lock(&mut tx).await?;
    let Continuity {
        fresh,
        redelivered,
        ahead,
        next,
        holes,
    } = lock_fresh(&mut tx, topic, batch).await?;
    summary.redelivered = redelivered;
    summary.ahead = ahead;

    let mut parked: Vec<ToPark<'m>> = Vec::new();
    let decoded = decode_fresh(&mut tx, topic, fresh, &mut summary, &mut parked).await?;
    let ordered = in_version_order(&mut tx, decoded).await?;
    summary.duplicates = ordered.duplicates;
    summary.out_of_order = ordered.gaps.len();
    parked.extend(ordered.gaps.into_iter().map(ToPark::waiting));
    let (applicable, seen_only) = split_seen_only(ordered.next);
    summary.skipped += seen_only.len();
    summary.applied = applicable.len();
    let mut changed = apply_events(&mut tx, &applicable).await?;
    checkpoint::save_seen_versions(&mut tx, &seen_only).await?;
    changed.extend(Changed::of_envelopes(&seen_only));

    summary.parked = park(&mut tx, topic, &parked).await?;
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
    checkpoint::save_offsets(&mut tx, topic, &next, last_event_at).await?;
    if notify_changes {
        changes::notify(&mut tx, &changed).await?;
    }
    tx.commit().await.context("commit batch")?;
    // The live views' lag; a rebuild's events are old by design.
    if notify_changes {
        let (committed, lags) = (
            chrono::Utc::now(),
            metrics::histogram!("projector_event_lag_seconds"),
        );
        for (envelope, _) in &applicable {
            let lag = (committed - envelope.occurred_at)
                .to_std()
                .unwrap_or_default();
            lags.record(lag.as_secs_f64());
        }
    }
    let parked = parked
        .into_iter()
        .filter(|letter| letter.status == LetterStatus::Parked)
        .map(|letter| (letter.message, letter.reason))
        .collect();
    Ok(Applied {
        summary,
        parked,
        next,
        holes,
    })
}

/// Locks the offset rows of the batch's partitions and keeps the messages that follow on from
/// them. A replica that lost a partition in a rebalance while applying it waits here, then sees
/// the offsets the other replica recorded and skips. Dead letter retries lock the same rows, so
/// they never interleave with a batch.
async fn lock_fresh<'m>(
    tx: &mut PgConnection,
    topic: &str,
    batch: &'m [Incoming],
) -> anyhow::Result<Continuity<'m>> {
    let mut partitions: Vec<i32> = batch.iter().map(|m| m.partition).collect();
    partitions.sort_unstable();
    partitions.dedup();
    let recorded = checkpoint::lock_offsets(tx, topic, &partitions).await?;
    Ok(continuity::follow_on(batch, &recorded))
}

/// Decodes each fresh message, or the payload an operator retried it with; skips the ones an
/// operator discarded (met again by a rebuild or a replay) and parks the unreadable ones.
async fn decode_fresh<'m>(
    tx: &mut PgConnection,
    topic: &str,
    fresh: Vec<&'m Incoming>,
    summary: &mut BatchSummary,
    parked: &mut Vec<ToPark<'m>>,
) -> anyhow::Result<Vec<Decoded<'m>>> {
    let resolutions = dead_letters::resolutions(tx, topic, &fresh).await?;
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
        let envelope = match EventEnvelope::from_slice(payload) {
            Ok(envelope) => envelope,
            Err(error) => {
                parked.push(ToPark::parked(message, None, error.to_string()));
                continue;
            }
        };
        match DomainEvent::from_envelope(&envelope) {
            Ok(event) => decoded.push((message, envelope, Some(event))),
            // A newer producer's event: its version counts as seen, its effect is skipped.
            Err(error) if error.is_from_newer_producer() => {
                tracing::debug!(partition = message.partition, offset = message.offset, %error, "skipping event from a newer producer");
                decoded.push((message, envelope, None));
            }
            Err(error) => parked.push(ToPark::parked(message, Some(envelope), error.to_string())),
        }
    }
    Ok(decoded)
}

/// The events to apply, and the envelopes of newer producers' events, whose versions only count
/// as seen.
fn split_seen_only(next: Vec<Decoded<'_>>) -> (Vec<Applicable>, Vec<EventEnvelope>) {
    let mut applicable = Vec::with_capacity(next.len());
    let mut seen_only = Vec::new();
    for (message, envelope, event) in next {
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
    (applicable, seen_only)
}

/// Stores the letters of a batch; returns how many of them are parked (not waiting).
async fn park(tx: &mut PgConnection, topic: &str, letters: &[ToPark<'_>]) -> anyhow::Result<usize> {
    let parked: Vec<&ToPark<'_>> = letters
        .iter()
        .filter(|letter| letter.status == LetterStatus::Parked)
        .collect();
    for letter in &parked {
        tracing::error!(
            partition = letter.message.partition,
            offset = letter.message.offset,
            error = letter.reason,
            "parking message as a dead letter"
        );
    }
    dead_letters::park(tx, topic, letters).await?;
    Ok(parked.len())
}

/// Parks one message that the views refused, and moves its partition past it, in one
/// transaction: the stream goes on without it.
pub async fn park_refused<'m>(
    pool: &PgPool,
    topic: &str,
    message: &'m Incoming,
    error: &str,
) -> anyhow::Result<Applied<'m>> {
    let mut tx = pool.begin().await.context("begin parking")?;
    checkpoint::share_apply_lock(&mut tx).await?;
    checkpoint::lock_offsets(&mut tx, topic, &[message.partition]).await?;
    let envelope = EventEnvelope::from_slice(message.payload.as_deref().unwrap_or_default()).ok();
    dead_letters::park(
        &mut tx,
        topic,
        &[ToPark::parked(message, envelope, error.to_owned())],
    )
    .await?;
    let next = BTreeMap::from([(message.partition, message.offset + 1)]);
    checkpoint::save_offsets(&mut tx, topic, &next, None).await?;
    tx.commit().await.context("commit parking")?;
    Ok(Applied {
        summary: BatchSummary {
            parked: 1,
            ..BatchSummary::default()
        },
        parked: vec![(message, error.to_owned())],
        next,
        holes: Vec::new(),
    })
}

/// Decoded events sorted into those to apply now, duplicates, and those that came too early.
struct Ordered<'m> {
    next: Vec<Decoded<'m>>,
    gaps: Vec<Decoded<'m>>,
    duplicates: usize,
}

/// A message with its envelope and, unless it came from a newer producer, its event.
pub(super) type Decoded<'m> = (&'m Incoming, EventEnvelope, Option<DomainEvent>);

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

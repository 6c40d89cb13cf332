//! Retrying and discarding dead letters. A retry decodes the letter again (after a fix was
//! deployed) or a corrected payload an operator supplies, and applies it with the usual version
//! rules; the events that waited behind it follow. Both lock the letter's partition like a batch
//! does, so they never interleave with the projector, and both are refused while a rebuild runs
//! (the rebuild could not see a decision taken after it passed the letter).

use anyhow::Context;
use sqlx::{PgConnection, PgPool};

use super::{checkpoint, dead_letters, decode};
use crate::changes::{Changed, notify};
use dead_letters::{DeadLetter, LetterStatus};

/// What a retry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retried {
    /// The event (and the waiting versions behind it) were applied.
    Applied {
        /// Versions of the aggregate that were applied, in order.
        versions: Vec<i64>,
    },
    /// The views already had this version; the letter is resolved without change.
    AlreadyApplied,
}

/// Why a retry or discard did nothing. The letter stays as it was.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// No dead letter with this id.
    #[error("no dead letter with this id")]
    NotFound,
    /// Already retried or discarded.
    #[error("the dead letter is already {0}")]
    Resolved(LetterStatus),
    /// It still cannot be decoded or applied.
    #[error("{0}")]
    StillBroken(String),
    /// A corrected payload must be the same event of the same aggregate.
    #[error("{0}")]
    Mismatch(String),
    /// An earlier version of the aggregate has not been applied yet.
    #[error("version {needed} of this aggregate must be applied first")]
    Waiting {
        /// The version the views need next.
        needed: i64,
    },
    /// A rebuild of the views is running.
    #[error("a rebuild of the views is running; retry or discard after it swapped")]
    RebuildRunning,
    /// The database failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Locks letter `id` for a decision: refuses during a rebuild, takes the apply lock and the
/// letter's partition (before the letter, in the order batches take them), and checks it is
/// still open.
async fn open_letter(tx: &mut PgConnection, id: i64) -> Result<DeadLetter, RetryError> {
    checkpoint::share_apply_lock(tx).await?;
    let rebuilding: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM projection_rebuilds WHERE status = 'running')",
    )
    .fetch_one(&mut *tx)
    .await
    .context("check for a running rebuild")?;
    if rebuilding {
        return Err(RetryError::RebuildRunning);
    }
    let letter = dead_letters::find(tx, id)
        .await
        .context("load dead letter")?
        .ok_or(RetryError::NotFound)?;
    checkpoint::lock_offsets(tx, &letter.topic, &[letter.partition]).await?;
    let letter = dead_letters::lock(tx, id)
        .await
        .context("lock dead letter")?
        .ok_or(RetryError::NotFound)?;
    if !letter.is_open() {
        return Err(RetryError::Resolved(letter.status));
    }
    Ok(letter)
}

/// Retries dead letter `id`, with `replacement` as its payload when given.
pub async fn retry(
    pool: &PgPool,
    id: i64,
    replacement: Option<Vec<u8>>,
) -> Result<Retried, RetryError> {
    let outcome = attempt(pool, id, replacement).await;
    if let Err(RetryError::StillBroken(error)) = &outcome {
        dead_letters::retry_failed(pool, id, error)
            .await
            .context("record the failed retry")?;
    }
    outcome
}

async fn attempt(
    pool: &PgPool,
    id: i64,
    replacement: Option<Vec<u8>>,
) -> Result<Retried, RetryError> {
    let mut tx = pool.begin().await.context("begin retry")?;
    let letter = open_letter(&mut tx, id).await?;
    let payload = replacement
        .clone()
        .unwrap_or_else(|| letter.raw_payload().to_vec());
    let (envelope, _) = decode(&payload).map_err(|e| RetryError::StillBroken(e.to_string()))?;
    if letter
        .aggregate_id
        .is_some_and(|a| a != envelope.aggregate_id)
        || letter
            .aggregate_version
            .is_some_and(|v| v != envelope.aggregate_version)
    {
        return Err(RetryError::Mismatch(
            "a corrected payload must keep the parked event's aggregate_id and aggregate_version"
                .into(),
        ));
    }
    let aggregate = envelope.aggregate_id;
    let applied = checkpoint::applied_versions(&mut tx, &[aggregate])
        .await?
        .get(&aggregate)
        .copied()
        .unwrap_or(0);
    if envelope.aggregate_version <= applied {
        dead_letters::resolve(&mut tx, id, LetterStatus::Retried, replacement.as_deref()).await?;
        tx.commit().await.context("commit retry")?;
        return Ok(Retried::AlreadyApplied);
    }
    if envelope.aggregate_version > applied + 1 {
        return Err(RetryError::Waiting {
            needed: applied + 1,
        });
    }
    let mut changed: Changed = dead_letters::apply_letter(&mut tx, &payload)
        .await?
        .map_err(RetryError::StillBroken)?;
    dead_letters::resolve(&mut tx, id, LetterStatus::Retried, replacement.as_deref()).await?;
    let released = dead_letters::release_waiting(&mut tx, &[aggregate].into()).await?;
    changed.extend(released.changed);
    notify(&mut tx, &changed).await?;
    tx.commit().await.context("commit retry")?;
    let versions = std::iter::once(envelope.aggregate_version)
        .chain(released.versions.iter().map(|(_, v)| *v))
        .collect();
    Ok(Retried::Applied { versions })
}

/// Discards dead letter `id`: it is never applied. When it was the next version of its
/// aggregate, that version counts as seen, so the events waiting behind it follow.
pub async fn discard(pool: &PgPool, id: i64) -> Result<(), RetryError> {
    let mut tx = pool.begin().await.context("begin discard")?;
    let letter = open_letter(&mut tx, id).await?;
    dead_letters::resolve(&mut tx, id, LetterStatus::Discarded, None).await?;
    // The envelope is enough to know the version; the event itself may be what is broken.
    if let Ok(envelope) = shared_events::EventEnvelope::from_slice(letter.raw_payload()) {
        let aggregate = envelope.aggregate_id;
        let applied = checkpoint::applied_versions(&mut tx, &[aggregate])
            .await?
            .get(&aggregate)
            .copied()
            .unwrap_or(0);
        if envelope.aggregate_version == applied + 1 {
            checkpoint::save_seen_versions(&mut tx, std::slice::from_ref(&envelope)).await?;
            let released = dead_letters::release_waiting(&mut tx, &[aggregate].into()).await?;
            notify(&mut tx, &released.changed).await?;
        }
    }
    tx.commit().await.context("commit discard")?;
    Ok(())
}

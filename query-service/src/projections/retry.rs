//! Retrying a dead letter: decode it again (after a fix was deployed) or a corrected payload an
//! operator supplies, and apply it with the usual version rules. Applying it also applies the
//! letters parked behind it (later versions of the same aggregate), in order.

use anyhow::Context;
use sqlx::PgPool;

use super::{Changed, checkpoint, dead_letters, decode, notify};

/// What a retry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retried {
    /// The event (and these later parked versions) were applied.
    Applied {
        /// Versions of the aggregate that were applied.
        versions: Vec<i64>,
    },
    /// The views already had this version; the letter is resolved without change.
    AlreadyApplied,
}

/// Why a retry did not apply the letter. It stays parked.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// No dead letter with this id.
    #[error("no dead letter with this id")]
    NotFound,
    /// Already retried or discarded.
    #[error("the dead letter is already {0}")]
    Resolved(String),
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
    /// The database failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
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
    checkpoint::share_apply_lock(&mut tx).await?;
    let letter = dead_letters::lock(&mut tx, id)
        .await
        .context("load dead letter")?
        .ok_or(RetryError::NotFound)?;
    if letter.status != "parked" {
        return Err(RetryError::Resolved(letter.status));
    }
    let payload = replacement.unwrap_or_else(|| letter.raw_payload().to_vec());
    let (envelope, event) = decode(&payload).map_err(|e| RetryError::StillBroken(e.to_string()))?;
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
    let applied = checkpoint::applied_versions(&mut tx, &[envelope.aggregate_id])
        .await?
        .get(&envelope.aggregate_id)
        .copied()
        .unwrap_or(0);
    if envelope.aggregate_version <= applied {
        dead_letters::resolve(&mut tx, id, "retried")
            .await
            .context("resolve dead letter")?;
        tx.commit().await.context("commit retry")?;
        return Ok(Retried::AlreadyApplied);
    }
    if envelope.aggregate_version > applied + 1 {
        return Err(RetryError::Waiting {
            needed: applied + 1,
        });
    }

    let aggregate = envelope.aggregate_id;
    let mut version = envelope.aggregate_version;
    let mut events = vec![(envelope, event)];
    let mut resolved = vec![id];
    // Later versions that were parked because this one was: apply them too, in order.
    while let Some(next_id) = dead_letters::parked_version(&mut tx, aggregate, version + 1).await? {
        let Some(next) = dead_letters::lock(&mut tx, next_id)
            .await
            .context("load dead letter")?
        else {
            break;
        };
        let Ok(decoded) = decode(next.raw_payload()) else {
            break;
        };
        events.push(decoded);
        resolved.push(next_id);
        version += 1;
    }
    let mut savepoint = sqlx::Connection::begin(&mut *tx)
        .await
        .context("savepoint")?;
    let changed: Changed = match super::apply_events(&mut savepoint, &events).await {
        Ok(changed) => changed,
        Err(error) => {
            return Err(match super::ApplyError::classify(error) {
                super::ApplyError::Poison(error) => RetryError::StillBroken(format!("{error:#}")),
                super::ApplyError::Transient(error) => RetryError::Unexpected(error),
            });
        }
    };
    savepoint.commit().await.context("release savepoint")?;
    for letter in &resolved {
        dead_letters::resolve(&mut tx, *letter, "retried")
            .await
            .context("resolve dead letter")?;
    }
    notify(&mut tx, &changed).await?;
    tx.commit().await.context("commit retry")?;
    Ok(Retried::Applied {
        versions: events.iter().map(|(e, _)| e.aggregate_version).collect(),
    })
}

/// Discards dead letter `id`: it stays listed, resolved, and is never applied.
pub async fn discard(pool: &PgPool, id: i64) -> Result<(), RetryError> {
    let mut tx = pool.begin().await.context("begin discard")?;
    let letter = dead_letters::lock(&mut tx, id)
        .await
        .context("load dead letter")?
        .ok_or(RetryError::NotFound)?;
    if letter.status != "parked" {
        return Err(RetryError::Resolved(letter.status));
    }
    dead_letters::resolve(&mut tx, id, "discarded")
        .await
        .context("discard dead letter")?;
    tx.commit().await.context("commit discard")?;
    Ok(())
}

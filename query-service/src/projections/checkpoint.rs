//! What the projector has applied: the next offset per partition and the version per aggregate;
//! and the lock that lets a rebuild swap the views while no batch is being applied.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use shared_events::EventEnvelope;

use super::Applicable;
use super::continuity::Hole;

/// Advisory lock key shared by every batch and taken exclusively by a rebuild's swap ("views").
const APPLY_LOCK: i64 = 0x76_69_65_77_73;

/// Takes the apply lock in shared mode for the rest of the transaction: batches of all
/// replicas run side by side, and a swap waits for them and holds them off.
pub async fn share_apply_lock(tx: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(APPLY_LOCK)
        .execute(tx)
        .await
        .context("take the apply lock")?;
    Ok(())
}

/// Takes the apply lock exclusively for the rest of the transaction.
pub async fn exclusive_apply_lock(tx: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(APPLY_LOCK)
        .execute(tx)
        .await
        .context("take the apply lock exclusively")?;
    Ok(())
}

/// Locks (creating when missing) the offset rows of `partitions` and returns their next offsets.
pub async fn lock_offsets(
    tx: &mut PgConnection,
    topic: &str,
    partitions: &[i32],
) -> anyhow::Result<HashMap<i32, i64>> {
    sqlx::query(
        "INSERT INTO consumer_offsets (topic, partition, next_offset)
         SELECT $1, p, 0 FROM UNNEST($2::int[]) AS p
         ON CONFLICT DO NOTHING",
    )
    .bind(topic)
    .bind(partitions)
    .execute(&mut *tx)
    .await
    .context("create offset rows")?;
    let rows: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT partition, next_offset FROM consumer_offsets
         WHERE topic = $1 AND partition = ANY($2)
         ORDER BY partition
         FOR UPDATE",
    )
    .bind(topic)
    .bind(partitions)
    .fetch_all(&mut *tx)
    .await
    .context("lock offset rows")?;
    Ok(rows.into_iter().collect())
}

/// Records the next offset to apply per partition, and when the newest applied event happened.
pub async fn save_offsets(
    tx: &mut PgConnection,
    topic: &str,
    next: &BTreeMap<i32, i64>,
    last_event_at: Option<DateTime<Utc>>,
) -> anyhow::Result<()> {
    let partitions: Vec<i32> = next.keys().copied().collect();
    let offsets: Vec<i64> = next.values().copied().collect();
    sqlx::query(
        "UPDATE consumer_offsets o SET next_offset = GREATEST(o.next_offset, n.next_offset), updated_at = now(),
                last_event_at = GREATEST(o.last_event_at, $4)
         FROM UNNEST($2::int[], $3::bigint[]) AS n(partition, next_offset)
         WHERE o.topic = $1 AND o.partition = n.partition",
    )
    .bind(topic)
    .bind(partitions)
    .bind(offsets)
    .bind(last_event_at)
    .execute(tx)
    .await
    .context("save offsets")?;
    Ok(())
}

/// Moves `hole`'s partition from `hole.from` to `hole.to` when it still stands at `hole.from`:
/// the offsets in between hold no messages (deleted by retention, say). Whether it moved.
pub async fn skip_hole(pool: &PgPool, topic: &str, hole: Hole) -> anyhow::Result<bool> {
    let mut tx = pool.begin().await.context("begin skipping a hole")?;
    share_apply_lock(&mut tx).await?;
    let moved = sqlx::query(
        "UPDATE consumer_offsets SET next_offset = $4, updated_at = now()
         WHERE topic = $1 AND partition = $2 AND next_offset = $3",
    )
    .bind(topic)
    .bind(hole.partition)
    .bind(hole.from)
    .bind(hole.to)
    .execute(&mut *tx)
    .await
    .context("skip a hole")?
    .rows_affected();
    tx.commit().await.context("commit skipping a hole")?;
    Ok(moved > 0)
}

/// Every recorded partition of `topic`: next offset and the time of its newest applied event.
pub async fn offsets(
    conn: &mut PgConnection,
    topic: &str,
) -> anyhow::Result<Vec<(i32, i64, Option<DateTime<Utc>>)>> {
    sqlx::query_as("SELECT partition, next_offset, last_event_at FROM consumer_offsets WHERE topic = $1 ORDER BY partition")
        .bind(topic)
        .fetch_all(conn)
        .await
        .context("read offsets")
}

/// The applied version of each of `ids` that has one.
pub async fn applied_versions(
    tx: &mut PgConnection,
    ids: &[Uuid],
) -> anyhow::Result<HashMap<Uuid, i64>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT aggregate_id, version FROM applied_versions WHERE aggregate_id = ANY($1)",
    )
    .persistent(false) // planned with its keys: see `projections`
    .bind(ids)
    .fetch_all(tx)
    .await
    .context("read applied versions")?;
    Ok(rows.into_iter().collect())
}

/// The applied version of one aggregate (0 when none).
pub async fn applied_version(db: impl sqlx::PgExecutor<'_>, id: Uuid) -> Result<i64, sqlx::Error> {
    let version: Option<i64> =
        sqlx::query_scalar("SELECT version FROM applied_versions WHERE aggregate_id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(version.unwrap_or(0))
}

/// Records the versions of `applied` (the last event of each aggregate wins).
pub async fn save_versions(tx: &mut PgConnection, applied: &[Applicable]) -> anyhow::Result<()> {
    save(tx, applied.iter().map(|(envelope, _)| envelope)).await
}

/// Records versions that were seen but not applied (events from a newer producer, discarded
/// dead letters), so the versions after them can follow.
pub async fn save_seen_versions(
    tx: &mut PgConnection,
    seen: &[EventEnvelope],
) -> anyhow::Result<()> {
    save(tx, seen.iter()).await
}

async fn save<'a>(
    tx: &mut PgConnection,
    envelopes: impl Iterator<Item = &'a EventEnvelope>,
) -> anyhow::Result<()> {
    let mut latest: HashMap<Uuid, (&str, i64)> = HashMap::new();
    for envelope in envelopes {
        let entry = latest
            .entry(envelope.aggregate_id)
            .or_insert((envelope.aggregate_type.as_str(), 0));
        entry.1 = entry.1.max(envelope.aggregate_version);
    }
    if latest.is_empty() {
        return Ok(());
    }
    let (ids, rest): (Vec<Uuid>, Vec<(&str, i64)>) = latest.into_iter().unzip();
    let (types, versions): (Vec<&str>, Vec<i64>) = rest.into_iter().unzip();
    // Never lowers a recorded version, whoever wrote it.
    sqlx::query(
        "INSERT INTO applied_versions (aggregate_id, aggregate_type, version)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bigint[])
         ON CONFLICT (aggregate_id) DO UPDATE SET version = EXCLUDED.version
         WHERE applied_versions.version < EXCLUDED.version",
    )
    .bind(ids)
    .bind(types)
    .bind(versions)
    .execute(tx)
    .await
    .context("save applied versions")?;
    Ok(())
}

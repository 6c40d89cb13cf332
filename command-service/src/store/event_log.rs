//! The event log and its outbox.
//!
//! `append` writes events and their outbox rows in the caller's transaction, so an event exists
//! exactly when the state change that produced it committed. The relay reads the outbox with
//! `pending` and removes rows with `mark_published` once the broker acknowledged them.

use anyhow::Context;
use chrono::{DateTime, Utc};
use shared_events::{AggregateType, EventEnvelope};
use sqlx::{FromRow, PgConnection, Row};
use uuid::Uuid;

/// An event waiting in the outbox, with what the relay needs to publish it.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    /// Position in the event log.
    pub position: i64,
    /// The event as it will be published.
    pub envelope: EventEnvelope,
    /// W3C trace context of the request that caused it.
    pub traceparent: Option<String>,
}

/// The unique constraint that allows one event per aggregate version.
pub const ONE_EVENT_PER_VERSION: &str = "event_log_one_event_per_version";

/// Appends `events` to the log and the outbox, in order. The unique (aggregate, version)
/// constraint refuses a version that another transaction appended first.
pub async fn append(
    tx: &mut PgConnection,
    events: &[EventEnvelope],
    traceparent: Option<&str>,
) -> anyhow::Result<()> {
    let mut event_id = Vec::with_capacity(events.len());
    let mut event_type = Vec::with_capacity(events.len());
    let mut schema_version = Vec::with_capacity(events.len());
    let mut aggregate_type = Vec::with_capacity(events.len());
    let mut aggregate_id = Vec::with_capacity(events.len());
    let mut aggregate_version = Vec::with_capacity(events.len());
    let mut partition_key = Vec::with_capacity(events.len());
    let mut occurred_at: Vec<DateTime<Utc>> = Vec::with_capacity(events.len());
    let mut correlation_id = Vec::with_capacity(events.len());
    let mut causation_id = Vec::with_capacity(events.len());
    let mut data = Vec::with_capacity(events.len());
    for e in events {
        event_id.push(e.event_id);
        event_type.push(e.event_type.clone());
        schema_version.push(i32::try_from(e.schema_version).unwrap_or(i32::MAX));
        aggregate_type.push(e.aggregate_type.as_str());
        aggregate_id.push(e.aggregate_id);
        aggregate_version.push(e.aggregate_version);
        partition_key.push(e.partition_key.clone());
        occurred_at.push(e.occurred_at);
        correlation_id.push(e.correlation_id.clone());
        causation_id.push(e.causation_id.clone());
        data.push(e.data.clone());
    }
    let traceparent = vec![traceparent.map(str::to_owned); events.len()];
    sqlx::query(
        "WITH appended AS (
            INSERT INTO event_log (event_id, event_type, schema_version, aggregate_type, aggregate_id,
                                   aggregate_version, partition_key, occurred_at, correlation_id,
                                   causation_id, traceparent, data)
            SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::int[], $4::text[], $5::uuid[], $6::bigint[],
                                 $7::text[], $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::jsonb[])
            RETURNING position
        )
        INSERT INTO outbox (position) SELECT position FROM appended",
    )
    .bind(event_id)
    .bind(event_type)
    .bind(schema_version)
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(aggregate_version)
    .bind(partition_key)
    .bind(occurred_at)
    .bind(correlation_id)
    .bind(causation_id)
    .bind(traceparent)
    .bind(data)
    .execute(tx)
    .await
    .context("append events")?;
    Ok(())
}

/// Up to `limit` unpublished events, oldest position first.
pub async fn pending(conn: &mut PgConnection, limit: i64) -> anyhow::Result<Vec<PendingEvent>> {
    let rows = sqlx::query(
        "SELECT e.position, e.event_id, e.event_type, e.schema_version, e.aggregate_type,
                e.aggregate_id, e.aggregate_version, e.partition_key, e.occurred_at,
                e.correlation_id, e.causation_id, e.traceparent, e.data
         FROM outbox o JOIN event_log e ON e.position = o.position
         ORDER BY o.position
         LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
    .context("read the outbox")?;
    rows.iter()
        .map(|row| {
            Ok(PendingEvent {
                position: row.try_get("position")?,
                traceparent: row.try_get("traceparent")?,
                envelope: EventEnvelope::from_row(row)?,
            })
        })
        .collect()
}

/// Removes published events from the outbox.
pub async fn mark_published(conn: &mut PgConnection, positions: &[i64]) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM outbox WHERE position = ANY($1)")
        .bind(positions)
        .execute(conn)
        .await
        .context("mark events published")?;
    Ok(())
}

/// The events of one aggregate with versions above `after_version`, oldest first, at most
/// `limit`.
pub async fn history(
    db: impl sqlx::PgExecutor<'_>,
    aggregate_type: AggregateType,
    aggregate_id: Uuid,
    after_version: i64,
    limit: i64,
) -> anyhow::Result<Vec<EventEnvelope>> {
    let rows = sqlx::query(
        "SELECT event_id, event_type, schema_version, aggregate_type, aggregate_id, aggregate_version,
                partition_key, occurred_at, correlation_id, causation_id, data
         FROM event_log
         WHERE aggregate_id = $1 AND aggregate_type = $2 AND aggregate_version > $3
         ORDER BY aggregate_version
         LIMIT $4",
    )
    .bind(aggregate_id)
    .bind(aggregate_type.as_str())
    .bind(after_version)
    .bind(limit)
    .fetch_all(db)
    .await
    .context("read the event history")?;
    rows.iter()
        .map(|row| Ok(EventEnvelope::from_row(row)?))
        .collect()
}

/// How many events wait in the outbox, and when the oldest of them happened.
pub async fn backlog(pool: &sqlx::PgPool) -> anyhow::Result<(i64, Option<DateTime<Utc>>)> {
    sqlx::query_as(
        "SELECT count(*), min(e.occurred_at) FROM outbox o JOIN event_log e ON e.position = o.position",
    )
    .fetch_one(pool)
    .await
    .context("measure the outbox")
}

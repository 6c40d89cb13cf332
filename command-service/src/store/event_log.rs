//! The event log and its outbox.
//!
//! `append` writes events and their outbox rows in the caller's transaction, or a statement ending
//! in [`appending`] writes them with the state change itself, so an event exists exactly when the
//! state change that produced it committed. The relay reads the outbox with
//! `pending` and removes rows with `mark_published` once the broker acknowledged them.

use std::sync::LazyLock;

use anyhow::Context;
use chrono::{DateTime, Utc};
use shared_events::{AggregateType, EventEnvelope};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{FromRow, PgConnection, Postgres, Row};
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
    static APPEND: LazyLock<String> = LazyLock::new(|| format!("WITH {}", appending(1)));
    EventColumns::of(events.iter().cloned(), traceparent)
        .bind(sqlx::query(&APPEND))
        .execute(tx)
        .await
        .context("append events")?;
    Ok(())
}

/// The clauses that append the events bound as `$first` to `$first + 11` (see
/// [`EventColumns::bind`]) to the log and the outbox: the end of a statement, after `WITH` and
/// any clauses of its own. A caller that writes its state in the same statement saves a round
/// trip, and a statement is atomic without a transaction around it.
pub fn appending(first: usize) -> String {
    // The columns' types, in the order of [`EventColumns::bind`].
    const TYPES: [&str; 12] = [
        "uuid",
        "text",
        "int",
        "text",
        "uuid",
        "bigint",
        "text",
        "timestamptz",
        "text",
        "text",
        "text",
        "jsonb",
    ];
    let columns: Vec<String> = (first..)
        .zip(TYPES)
        .map(|(n, column_type)| format!("${n}::{column_type}[]"))
        .collect();
    format!(
        "appended AS (
            INSERT INTO event_log (event_id, event_type, schema_version, aggregate_type, aggregate_id,
                                   aggregate_version, partition_key, occurred_at, correlation_id,
                                   causation_id, traceparent, data)
            SELECT * FROM UNNEST({})
            RETURNING position
        )
        INSERT INTO outbox (position) SELECT position FROM appended",
        columns.join(", ")
    )
}

/// Events as one array per column of the event log, for [`appending`].
#[derive(Debug)]
pub struct EventColumns {
    event_id: Vec<Uuid>,
    event_type: Vec<String>,
    schema_version: Vec<i32>,
    aggregate_type: Vec<&'static str>,
    aggregate_id: Vec<Uuid>,
    aggregate_version: Vec<i64>,
    partition_key: Vec<String>,
    occurred_at: Vec<DateTime<Utc>>,
    correlation_id: Vec<Option<String>>,
    causation_id: Vec<Option<String>>,
    traceparent: Vec<Option<String>>,
    data: Vec<serde_json::Value>,
}

impl EventColumns {
    /// The columns of `events`, each carrying the request's `traceparent`. Takes the events by
    /// value: a command's own envelopes are moved into the columns, not copied.
    pub fn of(
        events: impl ExactSizeIterator<Item = EventEnvelope>,
        traceparent: Option<&str>,
    ) -> Self {
        let n = events.len();
        let mut columns = EventColumns {
            event_id: Vec::with_capacity(n),
            event_type: Vec::with_capacity(n),
            schema_version: Vec::with_capacity(n),
            aggregate_type: Vec::with_capacity(n),
            aggregate_id: Vec::with_capacity(n),
            aggregate_version: Vec::with_capacity(n),
            partition_key: Vec::with_capacity(n),
            occurred_at: Vec::with_capacity(n),
            correlation_id: Vec::with_capacity(n),
            causation_id: Vec::with_capacity(n),
            traceparent: vec![traceparent.map(str::to_owned); n],
            data: Vec::with_capacity(n),
        };
        for e in events {
            columns.event_id.push(e.event_id);
            columns.event_type.push(e.event_type);
            columns
                .schema_version
                .push(i32::try_from(e.schema_version).unwrap_or(i32::MAX));
            columns.aggregate_type.push(e.aggregate_type.as_str());
            columns.aggregate_id.push(e.aggregate_id);
            columns.aggregate_version.push(e.aggregate_version);
            columns.partition_key.push(e.partition_key);
            columns.occurred_at.push(e.occurred_at);
            columns.correlation_id.push(e.correlation_id);
            columns.causation_id.push(e.causation_id);
            columns.data.push(e.data);
        }
        columns
    }

    /// Binds the twelve columns, in the order [`appending`] numbers them, after what `query`
    /// has bound already.
    pub fn bind(self, query: Query<'_, Postgres, PgArguments>) -> Query<'_, Postgres, PgArguments> {
        query
            .bind(self.event_id)
            .bind(self.event_type)
            .bind(self.schema_version)
            .bind(self.aggregate_type)
            .bind(self.aggregate_id)
            .bind(self.aggregate_version)
            .bind(self.partition_key)
            .bind(self.occurred_at)
            .bind(self.correlation_id)
            .bind(self.causation_id)
            .bind(self.traceparent)
            .bind(self.data)
    }
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

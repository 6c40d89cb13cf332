//! Dead letters: messages parked with the reason, so the stream moves on. An operator lists
//! them, retries them (after a fix, or with a corrected payload) or discards them.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared_events::EventEnvelope;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::Incoming;

/// One parked message as the admin API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeadLetter {
    /// Its id in the dead-letter table.
    pub id: i64,
    /// Where it was consumed from.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub kafka_offset: i64,
    /// The event type, when the envelope could be read.
    pub event_type: Option<String>,
    /// The aggregate, when the envelope could be read.
    pub aggregate_id: Option<Uuid>,
    /// The aggregate version, when the envelope could be read.
    pub aggregate_version: Option<i64>,
    /// Why it was parked (or why its last retry failed).
    pub error: String,
    /// `parked`, `retried` or `discarded`.
    pub status: String,
    /// Times it was tried.
    pub attempts: i32,
    /// When it was parked.
    pub parked_at: DateTime<Utc>,
    /// When it was retried or discarded.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The message key, as text.
    #[sqlx(default)]
    pub key: Option<String>,
    /// The payload: JSON when it is JSON, otherwise the text (lossily decoded).
    #[sqlx(skip)]
    pub payload: serde_json::Value,
    #[serde(skip)]
    #[sqlx(rename = "payload")]
    raw_payload: Option<Vec<u8>>,
}

impl DeadLetter {
    /// The payload as stored.
    pub fn raw_payload(&self) -> &[u8] {
        self.raw_payload.as_deref().unwrap_or_default()
    }

    fn with_payload_shown(mut self) -> Self {
        let raw = self.raw_payload();
        self.payload = serde_json::from_slice(raw)
            .unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned().into());
        self
    }
}

/// The columns of a [`DeadLetter`], for `concat!` into the queries.
macro_rules! columns {
    () => {
        "id, topic, partition, kafka_offset, event_type, aggregate_id, aggregate_version, error, status, attempts,
         parked_at, resolved_at, convert_from(message_key, 'UTF8') AS key, payload"
    };
}

/// Stores each message with its error. A message parked before (redelivered) is kept once.
pub async fn park(
    tx: &mut PgConnection,
    topic: &str,
    parked: &[(&Incoming, Option<&EventEnvelope>, String)],
) -> anyhow::Result<()> {
    if parked.is_empty() {
        return Ok(());
    }
    let partitions: Vec<i32> = parked.iter().map(|(m, _, _)| m.partition).collect();
    let offsets: Vec<i64> = parked.iter().map(|(m, _, _)| m.offset).collect();
    let keys: Vec<Option<Vec<u8>>> = parked.iter().map(|(m, _, _)| m.key.clone()).collect();
    let payloads: Vec<Option<Vec<u8>>> = parked.iter().map(|(m, _, _)| m.payload.clone()).collect();
    let errors: Vec<&str> = parked.iter().map(|(_, _, e)| e.as_str()).collect();
    let types: Vec<Option<&str>> = parked
        .iter()
        .map(|(_, e, _)| e.map(|e| e.event_type.as_str()))
        .collect();
    let ids: Vec<Option<Uuid>> = parked
        .iter()
        .map(|(_, e, _)| e.map(|e| e.aggregate_id))
        .collect();
    let versions: Vec<Option<i64>> = parked
        .iter()
        .map(|(_, e, _)| e.map(|e| e.aggregate_version))
        .collect();
    sqlx::query(
        "INSERT INTO dead_letters (topic, partition, kafka_offset, message_key, payload, error, event_type, aggregate_id, aggregate_version)
         SELECT $1, * FROM UNNEST($2::int[], $3::bigint[], $4::bytea[], $5::bytea[], $6::text[], $7::text[], $8::uuid[], $9::bigint[])
         ON CONFLICT (topic, partition, kafka_offset) DO NOTHING",
    )
    .bind(topic)
    .bind(partitions)
    .bind(offsets)
    .bind(keys)
    .bind(payloads)
    .bind(errors)
    .bind(types)
    .bind(ids)
    .bind(versions)
    .execute(tx)
    .await
    .context("park dead letters")?;
    Ok(())
}

/// The lowest parked version of `aggregate_id` below `version`, if any: events after a parked
/// one must wait for it.
pub async fn parked_before(
    tx: &mut PgConnection,
    aggregate_id: Uuid,
    version: i64,
) -> anyhow::Result<Option<i64>> {
    sqlx::query_scalar(
        "SELECT min(aggregate_version) FROM dead_letters
         WHERE status = 'parked' AND aggregate_id = $1 AND aggregate_version < $2",
    )
    .bind(aggregate_id)
    .bind(version)
    .fetch_one(tx)
    .await
    .context("look for parked earlier versions")
}

/// The parked letter holding version `version` of `aggregate_id`, if any.
pub async fn parked_version(
    tx: &mut PgConnection,
    aggregate_id: Uuid,
    version: i64,
) -> anyhow::Result<Option<i64>> {
    sqlx::query_scalar(
        "SELECT id FROM dead_letters WHERE status = 'parked' AND aggregate_id = $1 AND aggregate_version = $2 ORDER BY id LIMIT 1",
    )
    .bind(aggregate_id)
    .bind(version)
    .fetch_optional(tx)
    .await
    .context("look for the next parked version")
}

/// Dead letters with `status` (all when `None`), oldest first, after id `after`.
pub async fn list(
    pool: &PgPool,
    status: Option<&str>,
    after: i64,
    limit: i64,
) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let letters: Vec<DeadLetter> = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM dead_letters WHERE ($1::text IS NULL OR status = $1) AND id > $2 ORDER BY id LIMIT $3"
    ))
        .bind(status)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    Ok(letters
        .into_iter()
        .map(DeadLetter::with_payload_shown)
        .collect())
}

/// One dead letter, locked for the rest of the transaction.
pub async fn lock(tx: &mut PgConnection, id: i64) -> Result<Option<DeadLetter>, sqlx::Error> {
    let letter: Option<DeadLetter> = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM dead_letters WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(tx)
    .await?;
    Ok(letter.map(DeadLetter::with_payload_shown))
}

/// Marks a letter `retried` or `discarded`.
pub async fn resolve(tx: &mut PgConnection, id: i64, status: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE dead_letters SET status = $2, resolved_at = now(), attempts = attempts + (($2 = 'retried')::int) WHERE id = $1")
        .bind(id)
        .bind(status)
        .execute(tx)
        .await?;
    Ok(())
}

/// Records a failed retry: the letter stays parked with the new error.
pub async fn retry_failed(pool: &PgPool, id: i64, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE dead_letters SET attempts = attempts + 1, error = $2 WHERE id = $1")
        .bind(id)
        .bind(error)
        .execute(pool)
        .await?;
    Ok(())
}

/// Number of parked letters.
pub async fn parked_count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM dead_letters WHERE status = 'parked'")
        .fetch_one(pool)
        .await
}

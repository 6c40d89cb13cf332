//! Dead letters: messages parked with the reason, so the stream moves on, and events that wait
//! for an earlier version of their aggregate. An operator lists them, retries them (after a fix,
//! or with a corrected payload) or discards them; waiting events follow by themselves as soon as
//! the version before them is applied.

use std::collections::{BTreeSet, HashMap};

use anyhow::Context;
use chrono::{DateTime, Utc};
use platform::causes::Causes;
use serde::Serialize;
use shared_events::{DomainEvent, EventEnvelope};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use super::batch::Decoded;
use super::{ApplyError, Incoming, apply_events, checkpoint};
use crate::changes::Changed;

/// Where a dead letter stands; stored as `text` in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum LetterStatus {
    /// The views refused it (or it could not be read); waits for an operator.
    Parked,
    /// Came before an earlier version of its aggregate; follows by itself once that is applied.
    Waiting,
    /// Applied by an operator's retry, or released after waiting.
    Retried,
    /// An operator decided it is never to be applied.
    Discarded,
}

impl LetterStatus {
    /// Every status.
    pub const ALL: [LetterStatus; 4] = [
        LetterStatus::Parked,
        LetterStatus::Waiting,
        LetterStatus::Retried,
        LetterStatus::Discarded,
    ];

    /// The status as serialized and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            LetterStatus::Parked => "parked",
            LetterStatus::Waiting => "waiting",
            LetterStatus::Retried => "retried",
            LetterStatus::Discarded => "discarded",
        }
    }

    /// Reads a status written by [`LetterStatus::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// True while the letter is neither retried nor discarded.
    pub fn is_open(self) -> bool {
        matches!(self, LetterStatus::Parked | LetterStatus::Waiting)
    }
}

impl std::fmt::Display for LetterStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One dead letter as the admin API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
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
    /// Where it stands.
    pub status: LetterStatus,
    /// Times it was tried.
    pub attempts: i32,
    /// When it was parked.
    pub parked_at: DateTime<Utc>,
    /// When it was retried or discarded.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The message key, as text (lossily decoded).
    #[sqlx(skip)]
    pub key: Option<String>,
    /// The payload: JSON when it is JSON, otherwise the text (lossily decoded).
    #[sqlx(skip)]
    #[schema(value_type = Value)]
    pub payload: serde_json::Value,
    #[serde(skip)]
    #[schema(ignore)]
    #[sqlx(rename = "message_key")]
    raw_key: Option<Vec<u8>>,
    #[serde(skip)]
    #[schema(ignore)]
    #[sqlx(rename = "payload")]
    raw_payload: Option<Vec<u8>>,
}

impl DeadLetter {
    /// The payload as stored.
    pub fn raw_payload(&self) -> &[u8] {
        self.raw_payload.as_deref().unwrap_or_default()
    }

    fn shown(mut self) -> Self {
        let raw = self.raw_payload();
        self.payload = serde_json::from_slice(raw)
            .unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned().into());
        self.key = self
            .raw_key
            .as_deref()
            .map(|k| String::from_utf8_lossy(k).into_owned());
        self
    }

    /// True while the letter is neither retried nor discarded.
    pub fn is_open(&self) -> bool {
        self.status.is_open()
    }
}

/// The columns of a [`DeadLetter`], for `concat!` into the queries.
macro_rules! columns {
    () => {
        "id, topic, partition, kafka_offset, event_type, aggregate_id, aggregate_version, error, status, attempts,
         parked_at, resolved_at, message_key, payload"
    };
}

/// A letter to store.
#[derive(Debug)]
pub struct ToPark<'m> {
    /// The message as consumed.
    pub message: &'m Incoming,
    /// Its envelope, when it could be read.
    pub envelope: Option<EventEnvelope>,
    /// Why it is parked, or what it waits for.
    pub reason: String,
    /// `Parked` or `Waiting`.
    pub status: LetterStatus,
}

impl<'m> ToPark<'m> {
    /// `message` parked for `reason`.
    pub fn parked(message: &'m Incoming, envelope: Option<EventEnvelope>, reason: String) -> Self {
        ToPark {
            message,
            envelope,
            reason,
            status: LetterStatus::Parked,
        }
    }

    /// An event that came before an earlier version of its aggregate, waiting for it.
    pub fn waiting((message, envelope, _): Decoded<'m>) -> Self {
        tracing::info!(aggregate_id = %envelope.aggregate_id, version = envelope.aggregate_version, "event arrived before an earlier version; it waits beside the dead letters");
        ToPark {
            message,
            reason: format!(
                "waiting for an earlier version of aggregate {} (this is version {})",
                envelope.aggregate_id, envelope.aggregate_version
            ),
            envelope: Some(envelope),
            status: LetterStatus::Waiting,
        }
    }
}

/// Stores each message with its reason. A message stored before (redelivered) is kept once.
pub async fn park(
    tx: &mut PgConnection,
    topic: &str,
    letters: &[ToPark<'_>],
) -> anyhow::Result<()> {
    if letters.is_empty() {
        return Ok(());
    }
    let partitions: Vec<i32> = letters.iter().map(|l| l.message.partition).collect();
    let offsets: Vec<i64> = letters.iter().map(|l| l.message.offset).collect();
    let keys: Vec<Option<&[u8]>> = letters.iter().map(|l| l.message.key.as_deref()).collect();
    let payloads: Vec<Option<&[u8]>> = letters
        .iter()
        .map(|l| l.message.payload.as_deref())
        .collect();
    let errors: Vec<&str> = letters.iter().map(|l| l.reason.as_str()).collect();
    let envelopes = || letters.iter().map(|l| l.envelope.as_ref());
    let types: Vec<Option<&str>> = envelopes()
        .map(|e| e.map(|e| e.event_type.as_str()))
        .collect();
    let ids: Vec<Option<Uuid>> = envelopes().map(|e| e.map(|e| e.aggregate_id)).collect();
    let versions: Vec<Option<i64>> = envelopes()
        .map(|e| e.map(|e| e.aggregate_version))
        .collect();
    let statuses: Vec<LetterStatus> = letters.iter().map(|l| l.status).collect();
    sqlx::query(
        "INSERT INTO dead_letters (topic, partition, kafka_offset, message_key, payload, error, event_type, aggregate_id,
                                   aggregate_version, status)
         SELECT $1, * FROM UNNEST($2::int[], $3::bigint[], $4::bytea[], $5::bytea[], $6::text[], $7::text[], $8::uuid[],
                                  $9::bigint[], $10::text[])
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
    .bind(statuses)
    .execute(tx)
    .await
    .context("park dead letters")?;
    Ok(())
}

/// What an operator decided about a message that was a dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Never apply it.
    Discarded,
    /// Apply this payload (the corrected one, or the original).
    Retried(Vec<u8>),
}

/// The resolutions recorded in the live views' dead letters for `messages`. A rebuild (or a
/// replay) meets these messages again and must do what the operator decided.
pub async fn resolutions(
    tx: &mut PgConnection,
    topic: &str,
    messages: &[&Incoming],
) -> anyhow::Result<HashMap<(i32, i64), Resolution>> {
    if messages.is_empty() {
        return Ok(HashMap::new());
    }
    let partitions: Vec<i32> = messages.iter().map(|m| m.partition).collect();
    let offsets: Vec<i64> = messages.iter().map(|m| m.offset).collect();
    let rows: Vec<(i32, i64, LetterStatus, Option<Vec<u8>>)> = sqlx::query_as(
        "SELECT d.partition, d.kafka_offset, d.status, coalesce(d.replacement, d.payload)
         FROM views.dead_letters d JOIN UNNEST($2::int[], $3::bigint[]) AS m(partition, kafka_offset)
              ON d.partition = m.partition AND d.kafka_offset = m.kafka_offset
         WHERE d.topic = $1 AND d.status IN ('retried', 'discarded')",
    )
    .bind(topic)
    .bind(partitions)
    .bind(offsets)
    .fetch_all(tx)
    .await
    .context("read dead-letter resolutions")?;
    Ok(rows
        .into_iter()
        .map(|(partition, offset, status, payload)| {
            let resolution = match status {
                LetterStatus::Discarded => Resolution::Discarded,
                _ => Resolution::Retried(payload.unwrap_or_default()),
            };
            ((partition, offset), resolution)
        })
        .collect())
}

/// What releasing waiting events did.
#[derive(Debug, Default)]
pub struct Released {
    /// Events applied.
    pub applied: usize,
    /// The versions applied, per aggregate, in order.
    pub versions: Vec<(Uuid, i64)>,
    /// Whose views changed.
    pub changed: Changed,
}

/// Applies the waiting letters that are now next in line for `aggregates`, in version order,
/// each under its own savepoint. A waiting letter that fails to apply becomes `parked` with its
/// error, and the ones behind it keep waiting.
pub async fn release_waiting(
    tx: &mut PgConnection,
    aggregates: &BTreeSet<Uuid>,
) -> anyhow::Result<Released> {
    let mut released = Released::default();
    if aggregates.is_empty() {
        return Ok(released);
    }
    let ids: Vec<Uuid> = aggregates.iter().copied().collect();
    let with_waiting: Vec<Uuid> =
        sqlx::query_scalar("SELECT DISTINCT aggregate_id FROM dead_letters WHERE status = 'waiting' AND aggregate_id = ANY($1)")
            .persistent(false) // planned with its keys: see `projections`
            .bind(ids)
            .fetch_all(&mut *tx)
            .await
            .context("look for waiting events")?;
    for aggregate in with_waiting {
        loop {
            let applied = checkpoint::applied_versions(tx, &[aggregate])
                .await?
                .get(&aggregate)
                .copied()
                .unwrap_or(0);
            let next: Option<(i64, Vec<u8>)> = sqlx::query_as(
                "SELECT id, coalesce(replacement, payload, ''::bytea) FROM dead_letters
                 WHERE status = 'waiting' AND aggregate_id = $1 AND aggregate_version = $2
                 ORDER BY id LIMIT 1 FOR UPDATE",
            )
            .bind(aggregate)
            .bind(applied + 1)
            .fetch_optional(&mut *tx)
            .await
            .context("load the next waiting event")?;
            let Some((id, payload)) = next else { break };
            match apply_letter(tx, &payload).await? {
                Ok(changed) => {
                    resolve(tx, id, LetterStatus::Retried, None).await?;
                    released.applied += 1;
                    released.versions.push((aggregate, applied + 1));
                    released.changed.extend(changed);
                }
                Err(error) => {
                    sqlx::query("UPDATE dead_letters SET status = 'parked', error = $2, attempts = attempts + 1 WHERE id = $1")
                        .bind(id)
                        .bind(&error)
                        .execute(&mut *tx)
                        .await
                        .context("park a waiting event that failed")?;
                    break;
                }
            }
        }
    }
    Ok(released)
}

/// Decodes and applies one letter's payload under a savepoint. The inner `Err` says why the
/// views refused it (nothing changed); the outer one is a transient failure.
pub async fn apply_letter(
    tx: &mut PgConnection,
    payload: &[u8],
) -> anyhow::Result<Result<Changed, String>> {
    let envelope = match EventEnvelope::from_slice(payload) {
        Ok(envelope) => envelope,
        Err(error) => return Ok(Err(error.to_string())),
    };
    let event = match DomainEvent::from_envelope(&envelope) {
        Ok(event) => (envelope, event),
        // From a newer producer: the version counts as seen, as when it arrives in order.
        Err(error) if error.is_from_newer_producer() => {
            checkpoint::save_seen_versions(tx, std::slice::from_ref(&envelope)).await?;
            return Ok(Ok(Changed::default()));
        }
        Err(error) => return Ok(Err(error.to_string())),
    };
    let mut savepoint = tx.begin().await.context("savepoint")?;
    match apply_events(&mut savepoint, std::slice::from_ref(&event)).await {
        Ok(changed) => {
            savepoint.commit().await.context("release savepoint")?;
            Ok(Ok(changed))
        }
        Err(error) => match ApplyError::classify(error) {
            ApplyError::Poison(error) => Ok(Err(Causes::from(&error).to_string())),
            ApplyError::Transient(error) => Err(error),
        },
    }
}

/// Dead letters with `status` (all when `None`), oldest first, after id `after`.
pub async fn list(
    pool: &PgPool,
    status: Option<LetterStatus>,
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
    Ok(letters.into_iter().map(DeadLetter::shown).collect())
}

/// One dead letter, read without locking it.
pub async fn find(conn: &mut PgConnection, id: i64) -> Result<Option<DeadLetter>, sqlx::Error> {
    let letter: Option<DeadLetter> = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM dead_letters WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(letter.map(DeadLetter::shown))
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
    Ok(letter.map(DeadLetter::shown))
}

/// Marks a letter `retried` (keeping the corrected payload it was retried with) or `discarded`.
pub async fn resolve(
    tx: &mut PgConnection,
    id: i64,
    status: LetterStatus,
    replacement: Option<&[u8]>,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE dead_letters SET status = $2, resolved_at = now(), replacement = coalesce($3, replacement),
                attempts = attempts + (($2 = 'retried')::int)
         WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(replacement)
    .execute(tx)
    .await
    .context("resolve dead letter")?;
    Ok(())
}

/// Records a failed retry: the letter stays open with the new error.
pub async fn retry_failed(pool: &PgPool, id: i64, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE dead_letters SET attempts = attempts + 1, error = $2 WHERE id = $1")
        .bind(id)
        .bind(error)
        .execute(pool)
        .await?;
    Ok(())
}

/// Number of parked letters (waiting ones follow by themselves and are not counted).
pub async fn parked_count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM dead_letters WHERE status = 'parked'")
        .fetch_one(pool)
        .await
}

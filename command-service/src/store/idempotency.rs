//! Idempotency records: for each `Idempotency-Key` whose command committed, the request it came
//! with and the response to replay.
//!
//! A command with a key holds a transaction-scoped advisory lock on the key for its whole
//! transaction. A concurrent retry fails to take the lock (and is told the first is still
//! running); a retry after the commit finds the record. A crash releases the lock with the
//! transaction, so a key is never left stuck "in progress".

use std::time::Duration;

use anyhow::Context;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};

/// A response as sent, to be sent again byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// HTTP status.
    pub status: u16,
    /// The headers that matter to the client (content type, location, ETag, consistency token).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// A stored record: what the first request was and what it got.
#[derive(Debug, Clone)]
pub struct Record {
    /// The first request's fingerprint (method, path, preconditions, body).
    pub request: Vec<u8>,
    /// Its response.
    pub response: Recorded,
}

#[derive(sqlx::FromRow)]
struct StoredRow {
    request: Vec<u8>,
    status: i16,
    headers: Json<Vec<(String, String)>>,
    body: Vec<u8>,
}

/// Takes the key's lock for the rest of the transaction; false when another transaction holds
/// it.
pub async fn try_lock(tx: &mut PgConnection, key: &str) -> anyhow::Result<bool> {
    sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 7305))")
        .bind(key)
        .fetch_one(tx)
        .await
        .context("lock idempotency key")
}

/// The unexpired record of `key`, if any.
pub async fn find(tx: &mut PgConnection, key: &str) -> anyhow::Result<Option<Record>> {
    let row: Option<StoredRow> = sqlx::query_as(
        "SELECT request, status, headers, body FROM idempotency_keys WHERE key = $1 AND expires_at > now()",
    )
    .bind(key)
    .fetch_optional(tx)
    .await
    .context("look up idempotency key")?;
    Ok(row.map(|row| Record {
        request: row.request,
        response: Recorded {
            status: u16::try_from(row.status).unwrap_or(500),
            headers: row.headers.0,
            body: row.body,
        },
    }))
}

/// Records `key` with its request and response, replacing an expired record of the same key.
pub async fn record(
    tx: &mut PgConnection,
    key: &str,
    request: &[u8],
    response: &Recorded,
    ttl: Duration,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO idempotency_keys (key, request, status, headers, body, expires_at)
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
         ON CONFLICT (key) DO UPDATE SET request = EXCLUDED.request, status = EXCLUDED.status,
             headers = EXCLUDED.headers, body = EXCLUDED.body, created_at = now(), expires_at = EXCLUDED.expires_at",
    )
    .bind(key)
    .bind(request)
    .bind(i16::try_from(response.status).unwrap_or(500))
    .bind(Json(&response.headers))
    .bind(&response.body)
    .bind(ttl.as_secs_f64())
    .execute(tx)
    .await
    .context("record idempotency key")?;
    Ok(())
}

/// Deletes up to `limit` expired records; returns how many.
pub async fn delete_expired(pool: &PgPool, limit: i64) -> anyhow::Result<u64> {
    let deleted = sqlx::query(
        "DELETE FROM idempotency_keys WHERE key IN
             (SELECT key FROM idempotency_keys WHERE expires_at <= now() ORDER BY expires_at LIMIT $1)",
    )
    .bind(limit)
    .execute(pool)
    .await
    .context("delete expired idempotency keys")?;
    Ok(deleted.rows_affected())
}

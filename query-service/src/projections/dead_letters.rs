//! Parking messages that cannot be decoded, with the reason, so the stream moves on.

use anyhow::Context;
use sqlx::PgConnection;

use super::Incoming;

/// Stores each message with its error. A message parked before (redelivered) is kept once.
pub async fn park(
    tx: &mut PgConnection,
    topic: &str,
    poison: &[(&Incoming, String)],
) -> anyhow::Result<()> {
    if poison.is_empty() {
        return Ok(());
    }
    let partitions: Vec<i32> = poison.iter().map(|(m, _)| m.partition).collect();
    let offsets: Vec<i64> = poison.iter().map(|(m, _)| m.offset).collect();
    let keys: Vec<Option<Vec<u8>>> = poison.iter().map(|(m, _)| m.key.clone()).collect();
    let payloads: Vec<Option<Vec<u8>>> = poison.iter().map(|(m, _)| m.payload.clone()).collect();
    let errors: Vec<&str> = poison.iter().map(|(_, e)| e.as_str()).collect();
    sqlx::query(
        "INSERT INTO dead_letters (topic, partition, kafka_offset, message_key, payload, error)
         SELECT $1, * FROM UNNEST($2::int[], $3::bigint[], $4::bytea[], $5::bytea[], $6::text[])
         ON CONFLICT (topic, partition, kafka_offset) DO NOTHING",
    )
    .bind(topic)
    .bind(partitions)
    .bind(offsets)
    .bind(keys)
    .bind(payloads)
    .bind(errors)
    .execute(tx)
    .await
    .context("park dead letters")?;
    Ok(())
}

//! The command service's settings, read from environment variables with defaults that fit the
//! local stack. See the README's configuration table.

use std::net::SocketAddr;
use std::time::Duration;

use platform::config::{self, ConfigError};
use platform::db::DbSettings;
use platform::kafka::KafkaSettings;

use crate::relay::RelaySettings;

/// Everything the command service needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP API listens (`HTTP_ADDR`, default `127.0.0.1:8080`; port 0 picks one).
    pub http_addr: SocketAddr,
    /// Body limit and CORS (`HTTP_BODY_LIMIT_BYTES`, `CORS_ALLOWED_ORIGINS`).
    pub edge: platform::http::EdgeSettings,
    /// The write database (`DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/orders_command`).
    pub db: DbSettings,
    /// The broker and topic (`KAFKA_BROKERS`, `KAFKA_TOPIC`).
    pub kafka: KafkaSettings,
    /// Partitions of the topic when this service creates it (`KAFKA_TOPIC_PARTITIONS`, default 3).
    pub topic_partitions: i32,
    /// Replicas of the topic when this service creates it (`KAFKA_TOPIC_REPLICATION_FACTOR`,
    /// default 1).
    pub topic_replication: i32,
    /// How long the producer waits to fill a batch (`KAFKA_LINGER_MS`, default 1).
    pub producer_linger: Duration,
    /// How long idempotency keys are remembered (`IDEMPOTENCY_TTL_SECS`, default 86400).
    pub idempotency_ttl: Duration,
    /// Relay batch size (`RELAY_BATCH_SIZE`, default 500), fallback poll
    /// (`RELAY_POLL_INTERVAL_MS`, default 500) and outbox vacuum (`RELAY_VACUUM_EVERY`
    /// published events, default 10000; 0 leaves it to autovacuum).
    pub relay: RelaySettings,
}

impl Config {
    /// Reads the configuration; the error names the first malformed variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Config {
            http_addr: config::var("HTTP_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            edge: platform::http::EdgeSettings::from_env()?,
            db: DbSettings::from_env(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/orders_command",
            )?,
            kafka: KafkaSettings::from_env()?,
            topic_partitions: config::var("KAFKA_TOPIC_PARTITIONS", 3)?,
            topic_replication: config::var("KAFKA_TOPIC_REPLICATION_FACTOR", 1)?,
            producer_linger: Duration::from_millis(config::var("KAFKA_LINGER_MS", 1)?),
            idempotency_ttl: Duration::from_secs(config::var("IDEMPOTENCY_TTL_SECS", 86_400)?),
            relay: RelaySettings {
                batch_size: config::var("RELAY_BATCH_SIZE", 500)?,
                poll_interval: Duration::from_millis(config::var("RELAY_POLL_INTERVAL_MS", 500)?),
                vacuum_every: config::var("RELAY_VACUUM_EVERY", 10_000)?,
            },
        })
    }
}

//! The query service's settings, read from environment variables with defaults that fit the
//! local stack. See the README's configuration table.

use std::net::SocketAddr;
use std::time::Duration;

use platform::config::{self, ConfigError};
use platform::db::DbSettings;
use platform::kafka::KafkaSettings;

use crate::consumer::ConsumerSettings;

/// Everything the query service needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP API listens (`HTTP_ADDR`, default `127.0.0.1:8081`; port 0 picks one).
    pub http_addr: SocketAddr,
    /// The read database (`DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/orders_query`).
    pub db: DbSettings,
    /// The broker and topic (`KAFKA_BROKERS`, `KAFKA_TOPIC`).
    pub kafka: KafkaSettings,
    /// Group (`KAFKA_CONSUMER_GROUP`, default `query-service`), batch size
    /// (`CONSUMER_BATCH_SIZE`, default 500), batch wait (`CONSUMER_BATCH_WAIT_MS`, default 5) and
    /// fetch wait (`KAFKA_FETCH_WAIT_MAX_MS`, default 100).
    pub consumer: ConsumerSettings,
}

impl Config {
    /// Reads the configuration; the error names the first malformed variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Config {
            http_addr: config::var("HTTP_ADDR", SocketAddr::from(([127, 0, 0, 1], 8081)))?,
            db: DbSettings::from_env(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/orders_query",
            )?,
            kafka: KafkaSettings::from_env()?,
            consumer: ConsumerSettings {
                group_id: config::var("KAFKA_CONSUMER_GROUP", "query-service".to_owned())?,
                batch_size: config::var("CONSUMER_BATCH_SIZE", 500)?,
                batch_wait: Duration::from_millis(config::var("CONSUMER_BATCH_WAIT_MS", 5)?),
                fetch_wait: Duration::from_millis(config::var("KAFKA_FETCH_WAIT_MAX_MS", 100)?),
            },
        })
    }
}

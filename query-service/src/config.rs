//! The query service's settings, read from environment variables with defaults that fit the
//! local stack. See the README's configuration table.

use std::net::SocketAddr;
use std::time::Duration;

use platform::config::{self, ConfigError};
use platform::db::DbSettings;
use platform::kafka::KafkaSettings;

use crate::consumer::ConsumerSettings;

/// Longest read-your-writes wait an operator may configure.
const MAX_CONSISTENCY_WAIT_MS: u64 = 30_000;

/// The most lanes the projector may apply side by side (each holds a database connection).
const MAX_CONSUMER_LANES: usize = 64;

/// Everything the query service needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP API listens (`HTTP_ADDR`, default `127.0.0.1:8081`; port 0 picks one).
    pub http_addr: SocketAddr,
    /// Body limit and CORS (`HTTP_BODY_LIMIT_BYTES`, `CORS_ALLOWED_ORIGINS`).
    pub edge: platform::http::EdgeSettings,
    /// The read database (`DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/orders_query`).
    pub db: DbSettings,
    /// The broker and topic (`KAFKA_BROKERS`, `KAFKA_TOPIC`).
    pub kafka: KafkaSettings,
    /// Group (`KAFKA_CONSUMER_GROUP`, default `query-service`), batch size
    /// (`CONSUMER_BATCH_SIZE`, default 1000), batch wait (`CONSUMER_BATCH_WAIT_MS`, default 0),
    /// lanes (`CONSUMER_LANES`, default 1),
    /// fetch wait (`KAFKA_FETCH_WAIT_MAX_MS`, default 100) and dead-letter topic
    /// (`KAFKA_DEAD_LETTER_TOPIC`, default `<topic>.dead-letters`).
    pub consumer: ConsumerSettings,
    /// Replicas of the dead-letter topic when this service creates it
    /// (`KAFKA_TOPIC_REPLICATION_FACTOR`, default 1).
    pub topic_replication: i32,
    /// Not ready above this lag in events (`READY_MAX_LAG_EVENTS`, default 10000).
    pub ready_max_lag: i64,
    /// Longest read-your-writes wait (`CONSISTENCY_WAIT_MS`, default 2000, at most 30000).
    pub consistency_wait: Duration,
    /// How long a stream ticket opens its stream (`STREAM_TICKET_TTL_SECONDS`, default 60).
    pub stream_ticket_lifetime: Duration,
    /// Most live streams one client may hold open on a replica (`STREAMS_PER_CLIENT`,
    /// default 32).
    pub streams_per_client: usize,
}

impl Config {
    /// Reads the configuration; the error names the first malformed variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let kafka = KafkaSettings::from_env()?;
        let wait: u64 = config::var("CONSISTENCY_WAIT_MS", 2_000)?;
        if wait > MAX_CONSISTENCY_WAIT_MS {
            return Err(ConfigError {
                name: "CONSISTENCY_WAIT_MS".into(),
                reason: format!("{wait} is above the cap of {MAX_CONSISTENCY_WAIT_MS}"),
            });
        }
        let lanes = within("CONSUMER_LANES", 1, MAX_CONSUMER_LANES)?;
        let batch_size = within("CONSUMER_BATCH_SIZE", 1000, 100_000)?;
        Ok(Config {
            http_addr: config::var("HTTP_ADDR", SocketAddr::from(([127, 0, 0, 1], 8081)))?,
            edge: platform::http::EdgeSettings::from_env()?,
            db: DbSettings {
                search_path: Some(VIEWS_SEARCH_PATH.into()),
                ..DbSettings::from_env(
                    "DATABASE_URL",
                    "postgres://postgres@127.0.0.1:5432/orders_query",
                )?
            },
            consumer: ConsumerSettings {
                group_id: config::var("KAFKA_CONSUMER_GROUP", "query-service".to_owned())?,
                batch_size,
                batch_wait: Duration::from_millis(config::var("CONSUMER_BATCH_WAIT_MS", 0)?),
                lanes,
                fetch_wait: Duration::from_millis(config::var("KAFKA_FETCH_WAIT_MAX_MS", 100)?),
                dead_letter_topic: config::var(
                    "KAFKA_DEAD_LETTER_TOPIC",
                    format!("{}.dead-letters", kafka.topic),
                )?,
            },
            kafka,
            topic_replication: config::var("KAFKA_TOPIC_REPLICATION_FACTOR", 1)?,
            ready_max_lag: config::var("READY_MAX_LAG_EVENTS", 10_000)?,
            consistency_wait: Duration::from_millis(wait),
            stream_ticket_lifetime: Duration::from_secs(config::var(
                "STREAM_TICKET_TTL_SECONDS",
                60,
            )?),
            streams_per_client: config::var("STREAMS_PER_CLIENT", 32)?,
        })
    }
}

/// The search path of the service's connections: `public` first (where sqlx keeps its
/// migrations table), then the live views. A rebuild points its own connections at
/// `views_rebuild` instead.
pub const VIEWS_SEARCH_PATH: &str = "public,views";

/// `name` as a count from 1 to `max`, `default` when unset.
fn within(name: &str, default: usize, max: usize) -> Result<usize, ConfigError> {
    let value: usize = config::var(name, default)?;
    if (1..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError {
            name: name.into(),
            reason: format!("{value} is not between 1 and {max}"),
        })
    }
}

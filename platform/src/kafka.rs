//! Kafka settings shared by the producer and the consumer, and the broker probe behind
//! `/readyz`.
//!
//! The services speak plain Kafka through librdkafka; nothing here assumes a particular broker.

use std::time::Duration;

use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaResult;
use rdkafka::metadata::Metadata;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::{self, ConfigError};

/// Where the order events live.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Bootstrap servers, `host:port[,host:port…]` (`KAFKA_BROKERS`).
    pub brokers: String,
    /// The topic of order and customer events (`KAFKA_TOPIC`).
    pub topic: String,
}

impl KafkaSettings {
    /// Reads `KAFKA_BROKERS` (default `127.0.0.1:9092`) and `KAFKA_TOPIC` (default
    /// `order-events`).
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(KafkaSettings {
            brokers: config::var("KAFKA_BROKERS", "127.0.0.1:9092".to_owned())?,
            topic: config::var("KAFKA_TOPIC", "order-events".to_owned())?,
        })
    }

    /// A librdkafka configuration with the bootstrap servers set; callers add their role's
    /// settings.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.dns.lookup", "use_all_dns_ips");
        config
    }
}

/// True when the broker answered a metadata request for `topic` within a second and the topic
/// exists. librdkafka's metadata call blocks, so it runs on the blocking pool.
pub async fn sees_topic<F>(fetch_metadata: F) -> bool
where
    F: FnOnce(Duration) -> KafkaResult<Metadata> + Send + 'static,
{
    let probe = tokio::task::spawn_blocking(move || fetch_metadata(Duration::from_secs(1)));
    match probe.await {
        Ok(Ok(metadata)) => metadata
            .topics()
            .iter()
            .any(|t| t.error().is_none() && !t.partitions().is_empty()),
        _ => false,
    }
}

/// Creates `topic` with `partitions` partitions and `replication` replicas unless it
/// exists.
pub async fn ensure_topic(
    settings: &KafkaSettings,
    topic: &str,
    partitions: i32,
    replication: i32,
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = settings
        .client_config()
        .create()
        .context("create Kafka admin client")?;
    let topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics([&topic], &options)
        .await
        .context("ask the broker to create the topic")?;
    for result in results {
        match result {
            Ok(name) => tracing::info!(topic = name, partitions, replication, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("create topic {name}: {code}"),
        }
    }
    Ok(())
}

/// Creates `topic` if missing, retrying with backoff (one log line per attempt) while the broker
/// is unreachable, until it succeeds or `shutdown` fires.
pub async fn wait_for_topic(
    settings: &KafkaSettings,
    topic: &str,
    partitions: i32,
    replication: i32,
    shutdown: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let mut backoff = Duration::from_millis(250);
    loop {
        match ensure_topic(settings, topic, partitions, replication).await {
            Ok(()) => return Ok(()),
            Err(error) => {
                tracing::warn!(brokers = %settings.brokers, error = format!("{error:#}"), retry_in_ms = backoff.as_millis() as u64, "broker not ready")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => anyhow::bail!("shut down while waiting for the broker at {}", settings.brokers),
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

//! Kafka settings shared by the producer and the consumer, and the broker probe behind
//! `/readyz`.
//!
//! The services speak plain Kafka through librdkafka; nothing here assumes a particular broker.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::KafkaResult;
use rdkafka::metadata::Metadata;

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

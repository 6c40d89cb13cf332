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

use crate::causes::Causes;
use crate::config::{self, ConfigError};

/// Variables with the `KAFKA_` prefix that are the services' own settings, not librdkafka
/// properties.
const OWN_SETTINGS: &[&str] = &[
    "KAFKA_BROKERS",
    "KAFKA_TOPIC",
    "KAFKA_TOPIC_PARTITIONS",
    "KAFKA_TOPIC_REPLICATION_FACTOR",
    "KAFKA_CONSUMER_GROUP",
    "KAFKA_DEAD_LETTER_TOPIC",
    "KAFKA_LINGER_MS",
    "KAFKA_FETCH_WAIT_MAX_MS",
];

/// Where the order events live.
#[derive(Clone)]
pub struct KafkaSettings {
    /// Bootstrap servers, `host:port[,host:port…]` (`KAFKA_BROKERS`).
    pub brokers: String,
    /// The topic of order and customer events (`KAFKA_TOPIC`).
    pub topic: String,
    /// librdkafka properties passed through from the environment: `KAFKA_SECURITY_PROTOCOL=SASL_SSL`
    /// becomes `security.protocol=SASL_SSL` (lower case, `_` → `.`). For TLS and SASL, and to
    /// override any default the services set.
    pub properties: Vec<(String, String)>,
}

impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Property values may be passwords; show only their names.
        let names: Vec<&str> = self
            .properties
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        f.debug_struct("KafkaSettings")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("properties", &names)
            .finish()
    }
}

/// The librdkafka properties among `vars`: every `KAFKA_*` variable that is not one of the
/// services' own settings.
pub fn passthrough(vars: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut properties: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(name, _)| name.starts_with("KAFKA_") && !OWN_SETTINGS.contains(&name.as_str()))
        .map(|(name, value)| {
            (
                name["KAFKA_".len()..]
                    .to_ascii_lowercase()
                    .replace('_', "."),
                value,
            )
        })
        .collect();
    properties.sort();
    properties
}

impl KafkaSettings {
    /// Reads `KAFKA_BROKERS` (default `127.0.0.1:9092`), `KAFKA_TOPIC` (default
    /// `order-events`) and the librdkafka properties passed through as other `KAFKA_*`
    /// variables.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(KafkaSettings {
            brokers: config::var("KAFKA_BROKERS", "127.0.0.1:9092".to_owned())?,
            topic: config::var("KAFKA_TOPIC", "order-events".to_owned())?,
            properties: passthrough(std::env::vars()),
        })
    }

    /// A librdkafka configuration with the bootstrap servers set; callers add their role's
    /// settings.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.dns.lookup", "use_all_dns_ips");
        for (name, value) in &self.properties {
            config.set(name, value);
        }
        config
    }

    /// A configuration with the bootstrap servers, a role's `defaults`, and then the properties
    /// passed through from the environment, which override the defaults.
    pub fn client_config_with(&self, defaults: &[(&str, String)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.dns.lookup", "use_all_dns_ips");
        for (name, value) in defaults {
            config.set(*name, value);
        }
        for (name, value) in &self.properties {
            config.set(name, value);
        }
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
                tracing::warn!(brokers = %settings.brokers, error = %Causes::from(&error), retry_in_ms = backoff.as_millis() as u64, "broker not ready")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => anyhow::bail!("shut down while waiting for the broker at {}", settings.brokers),
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_kafka_variables_become_librdkafka_properties() {
        let vars = [
            ("KAFKA_BROKERS", "b:9092"),
            ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
            ("KAFKA_SSL_CA_LOCATION", "/etc/ca.pem"),
            ("KAFKA_LINGER_MS", "5"),
            ("PATH", "/bin"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(
            passthrough(vars),
            [
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("security.protocol", "SASL_SSL"),
                ("ssl.ca.location", "/etc/ca.pem")
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn debug_output_hides_property_values() {
        let settings = KafkaSettings {
            brokers: "b".into(),
            topic: "t".into(),
            properties: vec![("sasl.password".into(), "hunter2".into())],
        };
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}

//! Creating the event topic at start-up, so a fresh cluster (or a developer's broker) needs no
//! manual step. An existing topic is left exactly as it is.

use std::time::Duration;

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use platform::kafka::KafkaSettings;

/// Creates `settings.topic` with `partitions` partitions and `replication` replicas unless it
/// exists.
pub async fn ensure_topic(
    settings: &KafkaSettings,
    partitions: i32,
    replication: i32,
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = settings
        .client_config()
        .create()
        .context("create Kafka admin client")?;
    let topic = NewTopic::new(
        &settings.topic,
        partitions,
        TopicReplication::Fixed(replication),
    );
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

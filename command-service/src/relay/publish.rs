//! Producing one batch of outbox events to Kafka.
//!
//! The relay uses Kafka's idempotent producer (`enable.idempotence=true`, `acks=all`, at most
//! five requests in flight): the broker drops the duplicates librdkafka's own retries would
//! write and keeps a partition's messages in send order. Duplicates can still reach the topic
//! across producers: a crash between the broker's ack and the outbox delete, or a producer
//! renewed after a failed round, sends an event again under a new producer id. Consumers drop
//! those by aggregate version.
//!
//! Only the unbroken prefix of acknowledged events is marked published: if event n fails, n
//! and everything after it stay in the outbox and are produced again, in order, so a consumer
//! never sees a later version of an aggregate that it cannot get the earlier one of.

use std::time::Duration;

use anyhow::Context;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use shared_events::headers;
use sqlx::PgConnection;

use crate::store::event_log::{self, PendingEvent};
use platform::kafka::KafkaSettings;

/// The producer the relay publishes with (idempotent, acks=all: see the module docs). `linger`
/// trades a little latency for larger broker requests under load.
pub fn producer(settings: &KafkaSettings, linger: Duration) -> anyhow::Result<FutureProducer> {
    settings
        .client_config_with(&[
            ("enable.idempotence", "true".into()),
            ("max.in.flight.requests.per.connection", "5".into()),
            ("acks", "all".into()),
            ("linger.ms", linger.as_millis().to_string()),
            ("message.timeout.ms", "30000".into()),
        ])
        .create()
        .context("create Kafka producer")
}

/// Publishes up to `limit` pending events; returns how many were published (and removed from
/// the outbox). An error means some could not be published; they stay pending. Runs on the
/// leader's own connection, so it never waits for the request handlers' pool.
pub async fn batch(
    conn: &mut PgConnection,
    producer: &FutureProducer,
    topic: &str,
    limit: i64,
) -> anyhow::Result<usize> {
    let started = std::time::Instant::now();
    let pending = event_log::pending(conn, limit).await?;
    let read = started.elapsed();
    if pending.is_empty() {
        return Ok(0);
    }

    let mut deliveries = Vec::with_capacity(pending.len());
    let mut failure = None;
    for event in &pending {
        let payload = event.envelope.to_vec();
        let record = FutureRecord::to(topic)
            .key(event.envelope.partition_key.as_bytes())
            .payload(&payload)
            .headers(message_headers(event));
        match producer.send_result(record) {
            Ok(delivery) => deliveries.push((event, delivery)),
            Err((error, _)) => {
                failure = Some(anyhow::Error::new(error).context("enqueue event for the broker"));
                break;
            }
        }
    }

    let mut published = Vec::with_capacity(deliveries.len());
    for (event, delivery) in deliveries {
        match delivery.await {
            Ok(Ok(_)) => {
                // From the command's start (just before its commit) to the broker's ack.
                let lag = (chrono::Utc::now() - event.envelope.occurred_at)
                    .to_std()
                    .unwrap_or_default();
                metrics::histogram!("relay_publish_lag_seconds").record(lag.as_secs_f64());
                published.push(event.position);
            }
            Ok(Err((error, _))) => {
                failure = Some(anyhow::Error::new(error).context(format!(
                    "broker refused event at position {}",
                    event.position
                )));
                break;
            }
            Err(_canceled) => {
                failure = Some(anyhow::anyhow!(
                    "producer shut down before event at position {} was acknowledged",
                    event.position
                ));
                break;
            }
        }
    }

    let acknowledged = started.elapsed();
    event_log::mark_published(conn, &published).await?;
    metrics::counter!("relay_events_published_total").increment(published.len() as u64);
    let oldest = pending[0].envelope.occurred_at;
    tracing::debug!(
        published = published.len(),
        oldest_age_ms = (chrono::Utc::now() - oldest).num_milliseconds(),
        read_us = read.as_micros() as u64,
        acknowledged_us = acknowledged.as_micros() as u64,
        marked_us = started.elapsed().as_micros() as u64,
        "published events"
    );
    match failure {
        Some(error) => {
            metrics::counter!("relay_publish_failures_total").increment(1);
            let summary = format!("{} of {} events published", published.len(), pending.len());
            Err(error.context(summary))
        }
        None => Ok(published.len()),
    }
}

fn message_headers(event: &PendingEvent) -> OwnedHeaders {
    let envelope = &event.envelope;
    let schema_version = envelope.schema_version.to_string();
    let event_id = envelope.event_id.to_string();
    let mut headers = OwnedHeaders::new_with_capacity(6)
        .insert(Header {
            key: headers::EVENT_TYPE,
            value: Some(envelope.event_type.as_str()),
        })
        .insert(Header {
            key: headers::SCHEMA_VERSION,
            value: Some(schema_version.as_str()),
        })
        .insert(Header {
            key: headers::EVENT_ID,
            value: Some(event_id.as_str()),
        })
        .insert(Header {
            key: headers::CONTENT_TYPE,
            value: Some("application/json"),
        });
    if let Some(correlation_id) = &envelope.correlation_id {
        headers = headers.insert(Header {
            key: headers::CORRELATION_ID,
            value: Some(correlation_id.as_str()),
        });
    }
    if let Some(traceparent) = &event.traceparent {
        headers = headers.insert(Header {
            key: headers::TRACEPARENT,
            value: Some(traceparent.as_str()),
        });
    }
    headers
}

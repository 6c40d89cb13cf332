//! Watching the topic: for every `OrderPlaced` published after the watcher started, the time
//! from the event's `occurred_at` (taken when the command began, before its commit) to its
//! arrival at this consumer.

use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use shared_events::EventEnvelope;
use tokio::task::JoinHandle;

use crate::stats::histogram;

/// A consumer reading the topic from its current end.
#[derive(Debug)]
pub struct Watcher {
    task: JoinHandle<Histogram<u64>>,
    stop: tokio::sync::watch::Sender<u64>,
}

impl Watcher {
    /// Starts reading every partition of `topic` from its end.
    pub fn start(brokers: &str, topic: &str) -> anyhow::Result<Watcher> {
        let consumer: StreamConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", format!("bench-{}", uuid::Uuid::now_v7()))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "5")
            .create()
            .context("bench consumer")?;
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .context("topic metadata")?;
        // Each partition's end now, not `Offset::End`: that is resolved at the first fetch, after
        // the load may have published its first orders, and the count would never be reached.
        let mut assignment = TopicPartitionList::new();
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            let (_, end) = consumer
                .fetch_watermarks(topic, partition.id(), Duration::from_secs(5))
                .context("partition end")?;
            assignment.add_partition_offset(topic, partition.id(), Offset::Offset(end))?;
        }
        consumer.assign(&assignment).context("assign partitions")?;
        let (stop, mut expected) = tokio::sync::watch::channel(u64::MAX);
        let task = tokio::spawn(async move {
            let mut lag = histogram();
            loop {
                let want = *expected.borrow();
                if lag.len() >= want {
                    break;
                }
                tokio::select! {
                    _ = expected.changed() => {}
                    received = consumer.recv() => {
                        let Ok(message) = received else { continue };
                        let arrived = chrono::Utc::now();
                        let Some(envelope) = message.payload().and_then(|p| EventEnvelope::from_slice(p).ok()) else { continue };
                        if envelope.event_type == "OrderPlaced" {
                            let micros = (arrived - envelope.occurred_at).num_microseconds().unwrap_or(0).max(1);
                            lag.record(micros as u64).ok();
                        }
                    }
                }
            }
            lag
        });
        Ok(Watcher { task, stop })
    }

    /// Waits until `count` orders were seen (or `timeout`), and returns their latencies.
    pub async fn finish(self, count: u64, timeout: Duration) -> anyhow::Result<Histogram<u64>> {
        self.stop.send(count).ok();
        tokio::time::timeout(timeout, self.task)
            .await
            .context("not every event reached the topic in time")?
            .context("watcher")
    }
}

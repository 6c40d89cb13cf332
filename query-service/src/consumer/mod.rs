//! The Kafka consumer: reads the event topic in a consumer group, hands batches of up to N
//! messages or T milliseconds to the projector, and stores offsets for Kafka only after the
//! projector's database transaction committed (librdkafka commits the stored ones every second).
//!
//! The offsets the projector records in PostgreSQL are the truth; on assignment each partition
//! starts there (see [`progress`]), and the offsets committed to Kafka are only a hint. A batch
//! the views refuse is split and applied message by message, so one poison message is parked
//! (dead-letter table and topic) while the rest of the stream flows.

pub mod holes;
pub mod progress;
pub mod rebuild;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use platform::causes::Causes;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::projections::{self, Applied, ApplyError, Incoming, checkpoint};
use holes::Holes;
use platform::kafka::KafkaSettings;
use progress::{Progress, ProjectorContext};

/// The consumer type of the projector.
pub type ProjectorConsumer = StreamConsumer<ProjectorContext>;

/// Consumer tuning.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Consumer group shared by all query-service replicas.
    pub group_id: String,
    /// Most messages applied in one transaction.
    pub batch_size: usize,
    /// Longest a batch waits to fill once its first message arrived.
    pub batch_wait: Duration,
    /// Longest the broker holds a fetch when there is nothing new.
    pub fetch_wait: Duration,
    /// Batches applied side by side, each by its own transaction (a partition always goes to
    /// the same lane, so its messages stay in order).
    pub lanes: usize,
    /// Where parked messages are also published.
    pub dead_letter_topic: String,
}

/// How much a consumer reads ahead of the projector, for the live consumer and a rebuild's.
/// librdkafka prefetches up to 64 MiB by default; a few batches are enough. When the prefetch
/// is full it postpones the next fetch by `fetch.queue.backoff.ms`, 1 s by default: during a
/// catch-up the lanes drained their buffers in 0.6 s and then waited for the rest of that
/// second, every second. A fetch brings at most 256 KiB of each partition (1 MiB by default),
/// so the partitions' messages arrive interleaved in runs shorter than a lane's buffer.
pub const PREFETCH: [(&str, &str); 3] = [
    ("queued.max.messages.kbytes", "4096"),
    ("fetch.queue.backoff.ms", "20"),
    ("max.partition.fetch.bytes", "262144"),
];

/// A consumer in the group, subscribed to the topic, starting partitions where `progress` says.
pub fn subscribe(
    kafka: &KafkaSettings,
    settings: &ConsumerSettings,
    progress: Progress,
) -> anyhow::Result<ProjectorConsumer> {
    let mut defaults = vec![
        ("group.id", settings.group_id.clone()),
        // Offsets are stored after each applied batch and committed by librdkafka once a
        // second and on revocation. Committing after every batch queued hundreds of commits a
        // second at the group coordinator, whose heartbeat replies then came too late: the
        // session timed out and the replica lost its partitions for seconds (a steady stream
        // in small batches, `scripts/bench visibility --rate 600` with no batch wait).
        ("enable.auto.commit", "true".into()),
        ("enable.auto.offset.store", "false".into()),
        ("auto.commit.interval.ms", "1000".into()),
        ("auto.offset.reset", "earliest".into()),
        ("enable.partition.eof", "false".into()),
        (
            "fetch.wait.max.ms",
            settings.fetch_wait.as_millis().to_string(),
        ),
        // The classic group protocol with client-side timeouts (docs/operations.md, "Consumer
        // group"): a replica killed without leaving the group loses its partitions to the
        // survivors after the session timeout, 6 s, the broker's default minimum; KIP-848's
        // `group.protocol=consumer` takes the timeout from the broker (45 s by default).
        // Cooperative-sticky moves only the partitions that change owner, so survivors keep
        // projecting through a rebalance.
        ("session.timeout.ms", "6000".into()),
        ("heartbeat.interval.ms", "1000".into()),
        ("partition.assignment.strategy", "cooperative-sticky".into()),
        // High watermarks for readiness and lag gauges.
        ("statistics.interval.ms", "1000".into()),
    ];
    defaults.extend(PREFETCH.map(|(name, value)| (name, value.to_owned())));
    let consumer: ProjectorConsumer = kafka
        .client_config_with(&defaults)
        .create_with_context(ProjectorContext { progress })
        .context("create Kafka consumer")?;
    consumer
        .subscribe(&[&kafka.topic])
        .context("subscribe to the topic")?;
    Ok(consumer)
}

/// What the projector needs besides its consumer.
#[derive(Clone)]
pub struct Projector {
    /// The read database.
    pub pool: PgPool,
    /// The event topic.
    pub topic: String,
    /// Tuning.
    pub settings: ConsumerSettings,
    /// Publishes parked messages to the dead-letter topic (not during a rebuild, which only
    /// meets messages parked before).
    pub dead_letters: Option<FutureProducer>,
    /// Offsets and rates, shared with the rebalance callback and the admin endpoint.
    pub progress: Progress,
    /// Whether applied batches notify waiters and live streams (the live views do; a rebuild's
    /// views are not served yet).
    pub notify: bool,
}

impl std::fmt::Debug for Projector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projector")
            .field("topic", &self.topic)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Projector {
    /// Consumes until `shutdown`: one task reads the consumer and hands each message to the lane
    /// of its partition (`partition % lanes`); each lane applies its partitions' messages in
    /// batches, one transaction at a time, so the lanes' transactions run side by side the way
    /// several replicas' do. A batch that fails for a transient reason (database down) is
    /// retried with backoff, never skipped; on shutdown each lane finishes the batch in flight,
    /// and the consumer leaves the group when dropped.
    pub async fn run(self, consumer: Arc<ProjectorConsumer>, shutdown: CancellationToken) {
        let refresher = tokio::spawn(observe(
            self.pool.clone(),
            consumer.clone(),
            self.topic.clone(),
            self.progress.clone(),
            shutdown.clone(),
        ));
        let projector = Arc::new(self);
        // Messages read but not yet applied: a batch in flight per lane and one more. One lane
        // may hold most of them (the stream brings a partition's messages in runs), so a busy
        // lane does not starve the others.
        let buffered = Arc::new(Semaphore::new(
            (projector.settings.lanes + 1) * projector.settings.batch_size,
        ));
        let mut lanes = tokio::task::JoinSet::new();
        let senders: Vec<mpsc::UnboundedSender<Incoming>> = (0..projector.settings.lanes)
            .map(|_| {
                let (sender, receiver) = mpsc::unbounded_channel();
                lanes.spawn(projector.clone().lane(
                    consumer.clone(),
                    receiver,
                    buffered.clone(),
                    shutdown.clone(),
                ));
                sender
            })
            .collect();
        // A lane ends before shutdown only by panicking: the panic stops the projector (the
        // service's supervisor reports it) rather than leave the reader waiting for the permits
        // that lane held.
        let lane_ended = tokio::select! {
            () = read(&consumer, &senders, &buffered, &shutdown) => None,
            Some(ended) = lanes.join_next() => Some(ended),
        };
        drop(senders);
        refresher.abort();
        if let Some(Err(error)) = lane_ended
            && error.is_panic()
        {
            std::panic::resume_unwind(error.into_panic());
        }
        // Re-raises a lane's panic too.
        lanes.join_all().await;
        tracing::info!("consumer stopped");
    }

    /// Applies the batches of one lane until `shutdown` or until the reader stops.
    async fn lane(
        self: Arc<Self>,
        consumer: Arc<ProjectorConsumer>,
        mut messages: mpsc::UnboundedReceiver<Incoming>,
        buffered: Arc<Semaphore>,
        shutdown: CancellationToken,
    ) {
        let mut waiting = std::time::Instant::now();
        let mut holes = Holes::default();
        loop {
            let mut batch = Vec::with_capacity(self.settings.batch_size);
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                received = messages.recv_many(&mut batch, self.settings.batch_size) => {
                    if received == 0 {
                        return;
                    }
                }
            }
            let deadline = Instant::now() + self.settings.batch_wait;
            while batch.len() < self.settings.batch_size {
                let room = self.settings.batch_size - batch.len();
                match tokio::time::timeout_at(deadline, messages.recv_many(&mut batch, room)).await
                {
                    Ok(received) if received > 0 => {}
                    _ => break,
                }
            }
            let started = std::time::Instant::now();
            let waited = started - waiting;
            let span = tracing::info_span!(
                "batch",
                messages = batch.len(),
                first_offset = batch[0].offset
            );
            platform::telemetry::link_traces(
                &span,
                batch.iter().filter_map(|m| m.traceparent.as_deref()),
            );
            let Some(applied) = self.apply(&batch, &shutdown).instrument(span).await else {
                return;
            };
            applied.summary.record(started.elapsed(), batch.len());
            tracing::debug!(
                messages = batch.len(),
                summary = ?applied.summary,
                waited_ms = waited.as_millis() as u64,
                applied_ms = started.elapsed().as_millis() as u64,
                "applied batch"
            );
            let mut counts: HashMap<i32, usize> = HashMap::new();
            for message in &batch {
                *counts.entry(message.partition).or_default() += 1;
            }
            self.progress.applied(&applied.next, &counts);
            store(&consumer, &self.topic, &applied.next);
            holes
                .mend(
                    &self.pool,
                    &consumer,
                    &self.topic,
                    &applied.holes,
                    &self.progress,
                )
                .await;
            buffered.add_permits(batch.len());
            waiting = std::time::Instant::now();
        }
    }

    /// Applies `batch` and publishes what it parked; `None` when shut down while waiting to
    /// retry.
    async fn apply<'m>(
        &self,
        batch: &'m [Incoming],
        shutdown: &CancellationToken,
    ) -> Option<Applied<'m>> {
        let mut backoff = Backoff::new();
        loop {
            let outcome =
                match projections::apply_batch(&self.pool, &self.topic, batch, self.notify).await {
                    Ok(applied) => Ok(applied),
                    Err(ApplyError::Poison(error)) if batch.len() > 1 => {
                        tracing::warn!(
                            error = %Causes::from(&error),
                            messages = batch.len(),
                            "the views refused a batch; applying its messages one by one"
                        );
                        return self.apply_one_by_one(batch, shutdown).await;
                    }
                    Err(ApplyError::Poison(error)) => {
                        let reason = Causes::from(&error).to_string();
                        projections::park_refused(&self.pool, &self.topic, &batch[0], &reason)
                            .await
                            .map_err(|error| ("could not park a refused message", error))
                    }
                    Err(ApplyError::Transient(error)) => Err(("could not apply batch", error)),
                };
            match outcome {
                Ok(applied) => {
                    for (message, error) in &applied.parked {
                        self.publish_dead_letter(message, error);
                    }
                    return Some(applied);
                }
                Err((what, error)) => backoff.wait(what, &error, shutdown).await?,
            }
        }
    }

    async fn apply_one_by_one<'m>(
        &self,
        batch: &'m [Incoming],
        shutdown: &CancellationToken,
    ) -> Option<Applied<'m>> {
        let mut total = Applied::default();
        for message in batch {
            total.absorb(Box::pin(self.apply(std::slice::from_ref(message), shutdown)).await?);
        }
        Some(total)
    }

    /// Publishes a parked message to the dead-letter topic with the reason in a header. Best
    /// effort: the dead-letter table is the record; the topic is for other tools.
    fn publish_dead_letter(&self, message: &Incoming, error: &str) {
        let Some(producer) = &self.dead_letters else {
            return;
        };
        let partition = message.partition.to_string();
        let offset = message.offset.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "dead-letter-reason",
                value: Some(error),
            })
            .insert(Header {
                key: "source-topic",
                value: Some(self.topic.as_str()),
            })
            .insert(Header {
                key: "source-partition",
                value: Some(partition.as_str()),
            })
            .insert(Header {
                key: "source-offset",
                value: Some(offset.as_str()),
            });
        let mut record = FutureRecord::to(&self.settings.dead_letter_topic).headers(headers);
        if let Some(key) = &message.key {
            record = record.key(key.as_slice());
        }
        if let Some(payload) = &message.payload {
            record = record.payload(payload.as_slice());
        }
        match producer.send_result(record) {
            Ok(delivery) => {
                tokio::spawn(async move {
                    if let Ok(Err((error, _))) = delivery.await {
                        tracing::warn!(%error, "could not publish a dead letter to its topic");
                    }
                });
            }
            Err((error, _)) => {
                tracing::warn!(%error, "could not publish a dead letter to its topic")
            }
        }
    }
}

/// Exponential backoff between retries, 100 ms to 5 s.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Backoff(Duration::from_millis(100))
    }

    /// Logs `error` and waits; `None` when shut down meanwhile.
    async fn wait(
        &mut self,
        what: &str,
        error: &anyhow::Error,
        shutdown: &CancellationToken,
    ) -> Option<()> {
        tracing::warn!(
            error = %Causes::from(error),
            retry_in_ms = self.0.as_millis() as u64,
            "{what}; retrying"
        );
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(self.0) => {}
        }
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
        Some(())
    }
}

/// Every five seconds: refreshes the offset mirror with what every replica recorded, and the
/// gauges `projector_lag_events{partition}` and `dead_letters_parked`.
async fn observe(
    pool: PgPool,
    consumer: Arc<ProjectorConsumer>,
    topic: String,
    progress: Progress,
    shutdown: CancellationToken,
) {
    loop {
        match refresh(&pool, &consumer, &topic, &progress).await {
            Ok(()) => {}
            Err(error) => tracing::debug!(
                error = %Causes::from(&error),
                "could not refresh the projector's position"
            ),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

/// An assigned partition whose recorded offset is below the mirror's, read before the database,
/// lost commits this replica made (a PostgreSQL crash), and is read again from the database's.
async fn refresh(
    pool: &PgPool,
    consumer: &ProjectorConsumer,
    topic: &str,
    progress: &Progress,
) -> anyhow::Result<()> {
    let mirrored = progress.assigned_offsets();
    let mut conn = pool.acquire().await?;
    let recorded: HashMap<i32, i64> = checkpoint::offsets(&mut conn, topic)
        .await?
        .into_iter()
        .map(|(partition, next, _)| (partition, next))
        .collect();
    drop(conn);
    for (partition, mirrored) in mirrored {
        let stands = recorded.get(&partition).copied().unwrap_or(0);
        if stands < mirrored {
            tracing::warn!(
                partition,
                recorded = stands,
                applied = mirrored,
                "the views lost their last commits; reading the partition again"
            );
            holes::read_again(consumer, topic, partition, stands, progress);
        }
    }
    progress.set_recorded(recorded);
    let parked = crate::projections::dead_letters::parked_count(pool).await?;
    metrics::gauge!("dead_letters_parked").set(parked as f64);
    for (partition, lag) in progress.assigned_lags() {
        metrics::gauge!("projector_lag_events", "partition" => partition.to_string())
            .set(lag as f64);
    }
    Ok(())
}

/// Hands each message to its partition's lane until `shutdown`, while fewer than `buffered`'s
/// permits are read and not yet applied (the lanes give them back). Messages buffered for a
/// partition revoked meanwhile are skipped when applied (their offsets are below what the new
/// owner recorded).
async fn read(
    consumer: &ProjectorConsumer,
    lanes: &[mpsc::UnboundedSender<Incoming>],
    buffered: &Semaphore,
    shutdown: &CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            permit = buffered.acquire() => match permit {
                Ok(permit) => permit.forget(),
                // Never closed.
                Err(_closed) => return,
            }
        }
        let message = loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                received = consumer.recv() => match received {
                    Ok(message) => break incoming(&message),
                    Err(error) => {
                        tracing::warn!(%error, "consumer error");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        };
        let lane = &lanes[message.partition.unsigned_abs() as usize % lanes.len()];
        if lane.send(message).is_err() {
            // The lane stopped (shut down while retrying).
            return;
        }
    }
}

fn incoming(message: &impl Message) -> Incoming {
    let traceparent = message
        .headers()
        .and_then(|headers| {
            headers
                .iter()
                .find(|h| h.key == shared_events::headers::TRACEPARENT)
        })
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_owned);
    Incoming {
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec),
        traceparent,
    }
}

/// Stores the next offset of each partition for librdkafka's next commit. A failure (partition
/// revoked meanwhile) only means a later member starts a little early.
fn store(consumer: &ProjectorConsumer, topic: &str, next: &std::collections::BTreeMap<i32, i64>) {
    let mut offsets = TopicPartitionList::with_capacity(next.len());
    for (partition, offset) in next {
        if let Err(error) = offsets.add_partition_offset(topic, *partition, Offset::Offset(*offset))
        {
            tracing::warn!(%error, partition, "cannot build the offsets to store");
        }
    }
    if let Err(error) = consumer.store_offsets(&offsets) {
        tracing::debug!(%error, "could not store offsets for Kafka; the database holds the truth");
    }
}

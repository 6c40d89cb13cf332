//! What this replica knows about the projector's position: the applied offsets recorded in the
//! read database (mirrored here, refreshed every few seconds and after each batch) and the
//! recent apply rate per partition. The mirror lets a rebalance start each newly assigned
//! partition at the offset the database recorded, without a database call inside librdkafka's
//! callback.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

/// The window the apply rate is averaged over.
const RATE_WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct State {
    offsets: HashMap<i32, i64>,
    highs: HashMap<i32, i64>,
    applied: HashMap<i32, VecDeque<(Instant, usize)>>,
    assigned: Vec<i32>,
    /// Whether the group assigned this replica anything yet (perhaps nothing: replicas beyond
    /// the partition count get no partitions).
    joined: bool,
}

/// Shared between the consumer loop, its rebalance callback and the admin endpoint.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<Mutex<State>>);

impl Progress {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the maps inconsistent; keep using them.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces the mirror with offsets read from the database.
    pub fn set_recorded(&self, recorded: impl IntoIterator<Item = (i32, i64)>) {
        let mut state = self.state();
        for (partition, next) in recorded {
            let offset = state.offsets.entry(partition).or_default();
            *offset = (*offset).max(next);
        }
    }

    /// Notes that `partition` is read again from `next`, below what the mirror held.
    pub fn rewound(&self, partition: i32, next: i64) {
        self.state().offsets.insert(partition, next);
    }

    /// The mirrored next offset of each assigned partition.
    pub fn assigned_offsets(&self) -> Vec<(i32, i64)> {
        let state = self.state();
        state
            .assigned
            .iter()
            .map(|p| (*p, state.offsets.get(p).copied().unwrap_or(0)))
            .collect()
    }

    /// Notes a batch this replica applied: its next offsets and message counts.
    pub fn applied(
        &self,
        next: &std::collections::BTreeMap<i32, i64>,
        counts: &HashMap<i32, usize>,
    ) {
        let now = Instant::now();
        let mut state = self.state();
        for (partition, offset) in next {
            let recorded = state.offsets.entry(*partition).or_default();
            *recorded = (*recorded).max(*offset);
        }
        for (partition, count) in counts {
            let window = state.applied.entry(*partition).or_default();
            window.push_back((now, *count));
            while window
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) > RATE_WINDOW)
            {
                window.pop_front();
            }
        }
    }

    /// Messages per second this replica applied to `partition` over the last ten seconds.
    pub fn rate(&self, partition: i32) -> f64 {
        let now = Instant::now();
        let state = self.state();
        let recent: usize = state
            .applied
            .get(&partition)
            .map(|w| {
                w.iter()
                    .filter(|(at, _)| now.duration_since(*at) <= RATE_WINDOW)
                    .map(|(_, n)| n)
                    .sum()
            })
            .unwrap_or(0);
        recent as f64 / RATE_WINDOW.as_secs_f64()
    }

    /// Messages of this replica's partitions not applied yet: the broker's high watermark (from
    /// librdkafka's statistics) minus the recorded offset. `None` until the group's first
    /// assignment, and then until the watermark of every assigned partition is known; `Some(0)`
    /// when the group assigned this replica no partitions.
    pub fn lag_of_assigned(&self) -> Option<i64> {
        let state = self.state();
        if !state.joined {
            return None;
        }
        state
            .assigned
            .iter()
            .map(|p| {
                Some((state.highs.get(p)? - state.offsets.get(p).copied().unwrap_or(0)).max(0))
            })
            .sum()
    }

    /// The last known high watermark and lag of each assigned partition.
    pub fn assigned_lags(&self) -> Vec<(i32, i64)> {
        let state = self.state();
        state
            .assigned
            .iter()
            .filter_map(|p| {
                Some((
                    *p,
                    (state.highs.get(p)? - state.offsets.get(p).copied().unwrap_or(0)).max(0),
                ))
            })
            .collect()
    }

    /// The last high watermark librdkafka's statistics reported for each partition this
    /// replica consumed.
    pub fn high_watermarks(&self) -> HashMap<i32, i64> {
        self.state().highs.clone()
    }

    /// The partitions currently assigned to this replica.
    pub fn assigned(&self) -> Vec<i32> {
        self.state().assigned.clone()
    }
}

/// The consumer's context: on assignment, starts each partition at the offset the database
/// recorded (the broker's committed offset is only a hint and may be behind, or ahead after the
/// views were reset); a partition with no record starts at the beginning.
#[derive(Debug, Clone)]
pub struct ProjectorContext {
    /// The shared progress.
    pub progress: Progress,
}

impl ClientContext for ProjectorContext {
    /// librdkafka's periodic statistics carry each fetched partition's high watermark; keeping
    /// it makes lag (readiness, gauges) a memory read instead of a broker round trip.
    fn stats(&self, statistics: Statistics) {
        let mut state = self.progress.state();
        for topic in statistics.topics.values() {
            for (partition, stats) in &topic.partitions {
                if *partition >= 0 && stats.hi_offset >= 0 {
                    state.highs.insert(*partition, stats.hi_offset);
                }
            }
        }
    }
}

impl ConsumerContext for ProjectorContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let outcome = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let partitions: Vec<(String, i32)> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_owned(), e.partition()))
                    .collect();
                {
                    let mut state = self.progress.state();
                    for (topic, partition) in &partitions {
                        let start = state
                            .offsets
                            .get(partition)
                            .map_or(Offset::Beginning, |o| Offset::Offset(*o));
                        if let Err(error) = tpl.set_partition_offset(topic, *partition, start) {
                            tracing::warn!(%error, partition, "cannot set the start offset");
                        }
                    }
                    state.joined = true;
                    state.assigned.extend(partitions.iter().map(|(_, p)| *p));
                    state.assigned.sort_unstable();
                    state.assigned.dedup();
                }
                tracing::info!(partitions = ?partitions.iter().map(|(_, p)| p).collect::<Vec<_>>(), "partitions assigned");
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let revoked: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                self.progress
                    .state()
                    .assigned
                    .retain(|p| !revoked.contains(p));
                tracing::info!(partitions = ?revoked, "partitions revoked");
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::error!(error = ?other, "rebalance failed");
                consumer.unassign()
            }
        };
        if let Err(error) = outcome {
            tracing::error!(%error, "could not apply the rebalance");
        }
    }
}

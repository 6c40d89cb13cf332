//! Reading a partition again from the offset its views recorded, when the consumer has read
//! past messages the views do not hold: a batch met a hole ([`crate::projections::continuity`]),
//! or the recorded offsets went back (a PostgreSQL crash lost the last commits while the
//! partition was quiet).

use std::collections::HashMap;
use std::time::Duration;

use platform::causes::Causes;
use rdkafka::Offset;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use sqlx::PgPool;

use super::progress::Progress;
use crate::projections::checkpoint;
use crate::projections::continuity::Hole;

/// The last hole a lane met in each of its partitions.
///
/// Reading a partition again from its recorded offset brings the first message that exists
/// there. If that is the message the hole began with, the offsets in between hold nothing (the
/// broker's retention deleted them): meeting the same hole twice moves the recorded offset past
/// it, where a partition would otherwise be read again forever.
#[derive(Debug, Default)]
pub struct Holes(HashMap<i32, Hole>);

impl Holes {
    /// Reads each hole's partition again from where its views stand.
    pub async fn mend<C: ConsumerContext>(
        &mut self,
        pool: &PgPool,
        consumer: &StreamConsumer<C>,
        topic: &str,
        holes: &[Hole],
        progress: &Progress,
    ) {
        for hole in holes {
            let met_before = self.0.insert(hole.partition, *hole) == Some(*hole);
            let mut from = hole.from;
            if met_before && hole.to > hole.from {
                match checkpoint::skip_hole(pool, topic, *hole).await {
                    Ok(true) => {
                        tracing::warn!(
                            partition = hole.partition,
                            from = hole.from,
                            to = hole.to,
                            "the partition holds no messages between these offsets; skipped"
                        );
                        from = hole.to;
                    }
                    Ok(false) => {}
                    Err(error) => tracing::warn!(
                        error = %Causes::from(&error),
                        "could not skip an empty stretch of a partition; reading it again"
                    ),
                }
            }
            tracing::warn!(
                partition = hole.partition,
                from,
                read_up_to = hole.to,
                "the consumer read past messages the views do not hold; reading the partition again"
            );
            read_again(consumer, topic, hole.partition, from, progress);
        }
    }
}

/// Seeks `partition` to `from` (the views' next offset) and lowers the offset mirror to it.
/// The seek drops what librdkafka prefetched; messages already handed to a lane come first and
/// are skipped as ahead. A failed seek (the partition was revoked meanwhile) leaves it to the
/// partition's next owner, which starts at the recorded offset.
pub fn read_again<C: ConsumerContext>(
    consumer: &StreamConsumer<C>,
    topic: &str,
    partition: i32,
    from: i64,
    progress: &Progress,
) {
    progress.rewound(partition, from);
    // librdkafka only queues the seek for its own thread and waits for the acknowledgement.
    if let Err(error) = consumer.seek(
        topic,
        partition,
        Offset::Offset(from),
        Duration::from_secs(1),
    ) {
        tracing::warn!(%error, partition, from, "could not read the partition again");
    }
}

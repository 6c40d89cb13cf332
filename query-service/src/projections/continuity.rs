//! Which messages of a batch follow on from the offsets the views recorded, and where a
//! partition has a hole: messages read past its recorded offset that the views never kept.
//!
//! A partition's messages are applied strictly in offset order from the recorded offset on.
//! The projector commits without waiting for the disk, so a PostgreSQL crash can lose its last
//! batches, views and offsets together, while the consumer has read past them. The next message
//! of that partition then lies above the recorded offset; applying it would move the offset past
//! the lost messages for good. It waits instead, and the consumer reads the partition again from
//! the recorded offset ([`crate::consumer::holes`]).

use std::collections::{BTreeMap, HashMap};

use super::Incoming;

/// A partition whose batch messages lie above where its views stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hole {
    /// The partition.
    pub partition: i32,
    /// The offset the views recorded after the batch: where to read the partition again from.
    pub from: i64,
    /// The first message at or above `from` that the batch read and did not apply.
    pub to: i64,
}

/// A batch sorted against the recorded offsets.
#[derive(Debug, Default)]
pub struct Continuity<'m> {
    /// The messages to apply, in consumption order: each the next offset of its partition.
    pub fresh: Vec<&'m Incoming>,
    /// Messages below the recorded offsets (read again after a crash, rebalance or seek).
    pub redelivered: usize,
    /// Messages above the next offset of their partition, not applied.
    pub ahead: usize,
    /// The offset each partition records after the batch.
    pub next: BTreeMap<i32, i64>,
    /// The partitions to read again.
    pub holes: Vec<Hole>,
}

/// Sorts `batch` (consumption order) against `recorded`, the next offset of each partition (0
/// when none). After reading a partition again, the messages read before and not yet applied
/// may come first: they are ahead and skipped, and the messages read again follow on.
pub fn follow_on<'m>(batch: &'m [Incoming], recorded: &HashMap<i32, i64>) -> Continuity<'m> {
    let mut sorted = Continuity {
        fresh: Vec::with_capacity(batch.len()),
        ..Continuity::default()
    };
    let mut ahead: Vec<&Incoming> = Vec::new();
    for message in batch {
        let next = sorted
            .next
            .entry(message.partition)
            .or_insert_with(|| recorded.get(&message.partition).copied().unwrap_or(0));
        if message.offset == *next {
            *next += 1;
            sorted.fresh.push(message);
        } else if message.offset < *next {
            sorted.redelivered += 1;
        } else {
            ahead.push(message);
        }
    }
    sorted.ahead = ahead.len();
    for message in ahead {
        let from = sorted.next[&message.partition];
        if message.offset < from {
            // Applied after all, from a later run of the same partition in this batch.
            continue;
        }
        match sorted
            .holes
            .iter_mut()
            .find(|hole| hole.partition == message.partition)
        {
            Some(hole) => hole.to = hole.to.min(message.offset),
            None => sorted.holes.push(Hole {
                partition: message.partition,
                from,
                to: message.offset,
            }),
        }
    }
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(partition: i32, offsets: impl IntoIterator<Item = i64>) -> Vec<Incoming> {
        offsets
            .into_iter()
            .map(|offset| Incoming {
                partition,
                offset,
                key: None,
                payload: None,
                traceparent: None,
            })
            .collect()
    }

    fn offsets(messages: &[&Incoming]) -> Vec<(i32, i64)> {
        messages.iter().map(|m| (m.partition, m.offset)).collect()
    }

    #[test]
    fn messages_from_the_recorded_offset_on_are_fresh_and_those_below_redelivered() {
        let mut batch = at(0, 3..7);
        batch.extend(at(1, 0..2));
        let sorted = follow_on(&batch, &HashMap::from([(0, 5)]));
        assert_eq!(offsets(&sorted.fresh), [(0, 5), (0, 6), (1, 0), (1, 1)]);
        assert_eq!(sorted.redelivered, 2);
        assert_eq!(sorted.next, BTreeMap::from([(0, 7), (1, 2)]));
        assert!(sorted.holes.is_empty());
    }

    #[test]
    fn a_partition_read_past_its_recorded_offset_applies_nothing_and_has_a_hole() {
        let mut batch = at(0, 10..13);
        batch.extend(at(1, 4..6));
        let sorted = follow_on(&batch, &HashMap::from([(0, 8), (1, 4)]));
        assert_eq!(offsets(&sorted.fresh), [(1, 4), (1, 5)]);
        assert_eq!(sorted.ahead, 3);
        assert_eq!(sorted.next, BTreeMap::from([(0, 8), (1, 6)]));
        assert_eq!(
            sorted.holes,
            [Hole {
                partition: 0,
                from: 8,
                to: 10
            }]
        );
    }

    #[test]
    fn messages_read_again_follow_on_behind_those_read_before() {
        // Read up to 20 before the partition was read again from 10.
        let mut batch = at(0, 18..21);
        batch.extend(at(0, 10..19));
        let sorted = follow_on(&batch, &HashMap::from([(0, 10)]));
        assert_eq!(sorted.fresh.len(), 9);
        assert_eq!(sorted.next[&0], 19);
        // 18 was applied from the second run; 19 and 20 were not.
        assert_eq!(
            sorted.holes,
            [Hole {
                partition: 0,
                from: 19,
                to: 19
            }]
        );
    }

    #[test]
    fn a_hole_filled_within_the_batch_is_none() {
        let mut batch = at(0, 12..14);
        batch.extend(at(0, 10..14));
        let sorted = follow_on(&batch, &HashMap::from([(0, 10)]));
        assert_eq!(sorted.fresh.len(), 4);
        assert_eq!(sorted.ahead, 2);
        assert!(sorted.holes.is_empty());
    }
}

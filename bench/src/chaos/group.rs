//! What the query-service replicas' consumer group looks like from outside: every live replica's
//! `GET /admin/projections`, merged. The run uses it to time how long the group takes to
//! recover from each fault, to fail when it stops making progress, and to know when the views
//! have caught up.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

/// One partition as the replicas report it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionView {
    /// The next offset the views will apply (recorded in the read database).
    pub applied: i64,
    /// Messages published but not applied yet, when a replica knew the high watermark.
    pub lag: Option<i64>,
    /// The partition's end on the broker, when a replica knew it.
    pub high: Option<i64>,
    /// The replicas that say they consume it now.
    pub owners: Vec<String>,
}

/// The group at one moment.
#[derive(Debug, Clone, Default)]
pub struct GroupView {
    /// Per partition.
    pub partitions: BTreeMap<i32, PartitionView>,
    /// Replicas that did not answer.
    pub silent: Vec<String>,
}

impl GroupView {
    /// Asks every replica in `replicas` (name, base URL) for its view of the projector.
    pub async fn observe(http: &reqwest::Client, replicas: &[(String, String)]) -> GroupView {
        let mut view = GroupView::default();
        for (name, url) in replicas {
            let answer = http
                .get(format!("{url}/admin/projections"))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            let body: Option<Value> = match answer {
                Ok(response) if response.status().is_success() => response.json().await.ok(),
                _ => None,
            };
            let Some(partitions) = body.as_ref().and_then(|b| b["partitions"].as_array()) else {
                view.silent.push(name.clone());
                continue;
            };
            for p in partitions {
                let Some(id) = p["partition"].as_i64() else {
                    continue;
                };
                let entry = view.partitions.entry(id as i32).or_default();
                entry.applied = entry
                    .applied
                    .max(p["committed_offset"].as_i64().unwrap_or(0));
                if let Some(lag) = p["lag_events"].as_i64() {
                    entry.lag = Some(entry.lag.map_or(lag, |known| known.min(lag)));
                }
                if let Some(high) = p["high_watermark"].as_i64() {
                    entry.high = Some(entry.high.map_or(high, |known| known.max(high)));
                }
                if p["assigned_here"].as_bool() == Some(true) {
                    entry.owners.push(name.clone());
                }
            }
        }
        view
    }

    /// Whether every one of `partitions` partitions is consumed by a live replica and has either
    /// applied something since `before` or everything that was published by then: the group
    /// works again.
    pub fn recovered_since(&self, before: &GroupView, partitions: i32) -> bool {
        (0..partitions).all(|id| {
            let Some(now) = self.partitions.get(&id) else {
                return false;
            };
            let then = before.partitions.get(&id);
            let applied_then = then.map_or(-1, |p| p.applied);
            let published_then = then.and_then(|p| p.high).unwrap_or(i64::MAX);
            !now.owners.is_empty() && (now.applied > applied_then || now.applied >= published_then)
        })
    }

    /// Whether every one of `partitions` partitions is consumed by a replica that answered.
    pub fn owned(&self, partitions: i32) -> bool {
        (0..partitions).all(|id| {
            self.partitions
                .get(&id)
                .is_some_and(|p| !p.owners.is_empty())
        })
    }

    /// Whether every partition is applied to its end.
    pub fn caught_up(&self, partitions: i32) -> bool {
        (0..partitions).all(|id| self.partitions.get(&id).is_some_and(|p| p.lag == Some(0)))
    }

    /// One line per partition, for a failed run's report.
    pub fn describe(&self) -> String {
        let mut lines: Vec<String> = self
            .partitions
            .iter()
            .map(|(id, p)| {
                let lag = p.lag.map_or("unknown".to_owned(), |l| l.to_string());
                let owners = if p.owners.is_empty() {
                    "nobody".to_owned()
                } else {
                    p.owners.join(", ")
                };
                format!(
                    "  partition {id}: applied up to {}, lag {lag}, consumed by {owners}",
                    p.applied
                )
            })
            .collect();
        if !self.silent.is_empty() {
            lines.push(format!("  not answering: {}", self.silent.join(", ")));
        }
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Partitions as (id, applied, high watermark, owners).
    fn view(parts: &[(i32, i64, i64, &[&str])]) -> GroupView {
        GroupView {
            partitions: parts
                .iter()
                .map(|(id, applied, high, owners)| {
                    let owners = owners.iter().map(|o| (*o).to_owned()).collect();
                    let lag = Some(high - applied);
                    let partition = PartitionView {
                        applied: *applied,
                        lag,
                        high: Some(*high),
                        owners,
                    };
                    (*id, partition)
                })
                .collect(),
            silent: Vec::new(),
        }
    }

    #[test]
    fn an_orphaned_partition_is_not_recovered() {
        let before = view(&[(0, 10, 15, &["q1"]), (1, 10, 15, &["q2"])]);
        let after = view(&[(0, 12, 15, &["q1"]), (1, 10, 19, &[])]);
        assert!(!after.recovered_since(&before, 2));
    }

    #[test]
    fn a_partition_that_moved_or_had_nothing_to_apply_is_recovered() {
        let before = view(&[(0, 10, 15, &["q1"]), (1, 10, 10, &["q2"])]);
        let after = view(&[(0, 11, 18, &["q1"]), (1, 10, 10, &["q1"])]);
        assert!(after.recovered_since(&before, 2));
        assert!(!after.caught_up(2));
    }

    #[test]
    fn a_lagging_partition_that_did_not_move_is_not_recovered() {
        let before = view(&[(0, 10, 15, &["q1"])]);
        let after = view(&[(0, 10, 18, &["q1"])]);
        assert!(!after.recovered_since(&before, 1));
    }

    #[test]
    fn every_partition_needs_an_owner_for_the_survivors_to_have_taken_over() {
        assert!(view(&[(0, 1, 1, &["q1"]), (1, 1, 1, &["q2"])]).owned(2));
        assert!(!view(&[(0, 1, 1, &["q1"]), (1, 1, 1, &[])]).owned(2));
        assert!(!view(&[(0, 1, 1, &["q1"])]).owned(2));
    }

    #[test]
    fn a_partition_nobody_reported_is_not_recovered() {
        let before = view(&[(0, 10, 10, &["q1"])]);
        assert!(!view(&[]).recovered_since(&before, 1));
    }
}

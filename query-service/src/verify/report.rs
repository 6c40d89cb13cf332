//! What `verify` found: the counts and first examples of every kind of difference, as text for a
//! terminal and as JSON for a pipeline. It decides pass or fail; it reads nothing itself.

use std::fmt;

use chrono::DateTime;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::EXAMPLES;

/// What `verify` found. Passed when every count of a problem is zero (open dead letters up to
/// the allowance).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Nothing differs.
    pub passed: bool,
    /// Events read from the event log.
    pub events: u64,
    /// Events from a newer producer: their versions count, their effects are skipped.
    pub skipped_events: u64,
    /// Events the views can never apply: undecodable, or not the next version of their aggregate.
    pub broken_events: u64,
    /// The first of them.
    pub broken_examples: Vec<BrokenEvent>,
    /// `order_detail` against the orders' events and their customers' names and emails.
    pub order_detail: ViewReport,
    /// `customer_profile` against the customers' events and their orders.
    pub customer_profile: ViewReport,
    /// `daily_sales`; a duplicated effect shows here.
    pub daily_sales: ViewReport,
    /// `applied_versions` against the highest version of every aggregate.
    pub applied_versions: ViewReport,
    /// Dead letters not yet retried or discarded.
    pub dead_letters: DeadLetters,
    /// Events the relay has not published yet (the command side's outbox rows).
    pub unpublished_events: i64,
}

/// The differences of one view.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ViewReport {
    /// Rows the events call for.
    pub expected_rows: u64,
    /// Rows in the view.
    pub actual_rows: u64,
    /// Rows the events call for that the view lacks.
    pub missing: u64,
    /// Rows in the view no event calls for.
    pub unexpected: u64,
    /// Fields that differ, over all rows.
    pub mismatched_fields: u64,
    /// The first differences.
    pub examples: Vec<Difference>,
}

/// One difference: a field (or, without one, a whole row) of a row.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// The row: an order, customer or aggregate id, or `day currency`.
    pub id: String,
    /// The column, or `body.<field>` of the order document; `None` for a missing or an
    /// unexpected row.
    pub field: Option<String>,
    /// What the events say (`null` for an unexpected row).
    pub expected: Value,
    /// What the view holds (`null` for a missing row).
    pub actual: Value,
}

/// An event of the log that the views can never apply.
#[derive(Debug, Clone, Serialize)]
pub struct BrokenEvent {
    /// The event.
    pub event_id: Uuid,
    /// Its aggregate.
    pub aggregate_id: Uuid,
    /// Its version.
    pub aggregate_version: i64,
    /// Why it cannot be applied.
    pub reason: String,
}

/// Open dead letters (`parked` or `waiting`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeadLetters {
    /// How many.
    pub open: u64,
    /// How many may be open without failing the check.
    pub allowed: u64,
    /// The oldest of them.
    pub examples: Vec<OpenDeadLetter>,
}

/// One open dead letter.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct OpenDeadLetter {
    /// Its id (`/admin/dead-letters/{id}`).
    pub id: i64,
    /// Where it was consumed from.
    pub partition: i32,
    /// Its offset there.
    pub kafka_offset: i64,
    /// `parked` or `waiting`.
    pub status: String,
    /// The event type, when its envelope could be read.
    pub event_type: Option<String>,
    /// The aggregate, when its envelope could be read.
    pub aggregate_id: Option<Uuid>,
    /// The version, when its envelope could be read.
    pub aggregate_version: Option<i64>,
    /// Why it was parked.
    pub error: String,
}

impl ViewReport {
    fn problems(&self) -> u64 {
        self.missing + self.unexpected + self.mismatched_fields
    }

    fn example(&mut self, difference: Difference) {
        if self.examples.len() < EXAMPLES {
            self.examples.push(difference);
        }
    }

    pub(super) fn missing(&mut self, id: impl fmt::Display, expected: Value) {
        self.missing += 1;
        self.example(Difference {
            id: id.to_string(),
            field: None,
            expected,
            actual: Value::Null,
        });
    }

    pub(super) fn unexpected(&mut self, id: impl fmt::Display, actual: Value) {
        self.unexpected += 1;
        self.example(Difference {
            id: id.to_string(),
            field: None,
            expected: Value::Null,
            actual,
        });
    }

    /// Compares one row's fields, given as `(field, expected)` and `(field, actual)` in the
    /// same order.
    pub(super) fn compare(
        &mut self,
        id: impl fmt::Display,
        expected: impl IntoIterator<Item = (&'static str, Value)>,
        actual: impl IntoIterator<Item = (&'static str, Value)>,
    ) {
        for ((field, expected), (named, actual)) in expected.into_iter().zip(actual) {
            debug_assert_eq!(field, named, "fields compared out of step");
            if !same(&expected, &actual) {
                self.mismatched_fields += 1;
                self.example(Difference {
                    id: id.to_string(),
                    field: Some(field.to_owned()),
                    expected,
                    actual,
                });
            }
        }
    }
}

/// Equal values; two strings that are the same instant in different RFC 3339 spellings too.
fn same(expected: &Value, actual: &Value) -> bool {
    let instant = |v: &Value| {
        v.as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
    };
    expected == actual
        || matches!((instant(expected), instant(actual)), (Some(a), Some(b)) if a == b)
}

impl Report {
    /// Everything that fails the check: broken events, differences in the views, dead letters
    /// beyond the allowance and unpublished events.
    pub fn problems(&self) -> u64 {
        self.broken_events
            + self.views().map(|(_, view)| view.problems()).sum::<u64>()
            + self
                .dead_letters
                .open
                .saturating_sub(self.dead_letters.allowed)
            + u64::try_from(self.unpublished_events).unwrap_or_default()
    }

    fn views(&self) -> impl Iterator<Item = (&'static str, &ViewReport)> {
        [
            ("order_detail", &self.order_detail),
            ("customer_profile", &self.customer_profile),
            ("daily_sales", &self.daily_sales),
            ("applied_versions", &self.applied_versions),
        ]
        .into_iter()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "event log          {} events, {} from a newer producer, {} broken",
            self.events, self.skipped_events, self.broken_events
        )?;
        for broken in &self.broken_examples {
            writeln!(
                f,
                "    event {} (aggregate {} version {}): {}",
                broken.event_id, broken.aggregate_id, broken.aggregate_version, broken.reason
            )?;
        }
        for (name, view) in self.views() {
            writeln!(
                f,
                "{name:<18} {} expected, {} present: {} missing, {} unexpected, {} mismatched fields",
                view.expected_rows,
                view.actual_rows,
                view.missing,
                view.unexpected,
                view.mismatched_fields
            )?;
            for d in &view.examples {
                let field = d.field.as_deref().unwrap_or("row");
                writeln!(
                    f,
                    "    {} {field}: expected {}, actual {}",
                    d.id, d.expected, d.actual
                )?;
            }
        }
        let letters = &self.dead_letters;
        writeln!(
            f,
            "dead letters       {} open ({} allowed)",
            letters.open, letters.allowed
        )?;
        for l in &letters.examples {
            let about = match (&l.event_type, l.aggregate_id, l.aggregate_version) {
                (Some(kind), Some(id), Some(version)) => format!("{kind} {id} v{version}"),
                _ => "unreadable envelope".into(),
            };
            writeln!(
                f,
                "    #{} {} partition {} offset {}, {about}: {}",
                l.id, l.status, l.partition, l.kafka_offset, l.error
            )?;
        }
        writeln!(
            f,
            "outbox             {} unpublished events",
            self.unpublished_events
        )?;
        match self.problems() {
            0 => writeln!(f, "PASSED: the views match the event log"),
            n => writeln!(f, "FAILED: {n} problems"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    #[test]
    fn a_report_counts_every_difference_keeps_the_first_and_passes_only_when_clean() {
        let mut view = ViewReport::default();
        let at = Utc.with_ymd_and_hms(2026, 11, 1, 1, 59, 0).unwrap();
        view.compare("x", [("at", json!(at))], [("at", json!(at.to_rfc3339()))]);
        assert_eq!(view.problems(), 0, "one instant, two spellings");
        for i in 0..15 {
            view.compare(
                i,
                [("total_cents", json!(100))],
                [("total_cents", json!(101))],
            );
        }
        view.missing("gone", json!({ "version": 1 }));
        assert_eq!(
            (view.mismatched_fields, view.missing, view.examples.len()),
            (15, 1, EXAMPLES)
        );

        let mut report = Report {
            dead_letters: DeadLetters {
                open: 2,
                allowed: 1,
                examples: Vec::new(),
            },
            ..Report::default()
        };
        assert_eq!(report.problems(), 1, "one dead letter beyond the allowance");
        report.dead_letters.allowed = 2;
        assert_eq!(report.problems(), 0);
        report.daily_sales = view;
        report.unpublished_events = 1;
        assert_eq!(report.problems(), 17);
        assert!(
            report.to_string().contains("FAILED: 17 problems"),
            "{report}"
        );
    }
}

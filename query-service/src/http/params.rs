//! Query-string parameters of the list screens, parsed with field-level errors (422) instead
//! of serde's one-line rejections.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use platform::problem::{FieldErrors, Problem};
use shared_events::order::OrderStatus;
use uuid::Uuid;

use crate::projections::dead_letters::LetterStatus;
use crate::projections::order_lists::Cursor;

/// Default and largest page size of the list screens.
pub const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;

/// The parameters of one request, parsed into domain values, with every invalid one recorded.
#[derive(Debug, Default)]
pub struct Params(FieldErrors);

impl Params {
    fn field<T>(
        &mut self,
        name: &str,
        raw: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        self.0.check(|| name.to_owned(), parse(raw?))
    }

    /// `limit`: 1–100, default 20.
    pub fn limit(&mut self, raw: Option<&str>) -> i64 {
        self.field("limit", raw, |r| {
            r.parse::<i64>()
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(l))
                .ok_or_else(|| format!("must be an integer from 1 to {MAX_LIMIT}"))
        })
        .unwrap_or(DEFAULT_LIMIT)
    }

    /// `status`: one of the order statuses; empty (a form's "any") is no filter.
    pub fn status(&mut self, raw: Option<&str>) -> Option<OrderStatus> {
        self.one_of("status", raw, &OrderStatus::ALL, OrderStatus::as_str)
    }

    /// `status` of a dead letter; empty is no filter.
    pub fn letter_status(&mut self, raw: Option<&str>) -> Option<LetterStatus> {
        self.one_of("status", raw, &LetterStatus::ALL, LetterStatus::as_str)
    }

    /// One word of a vocabulary (`all`, written by `name_of`); empty is none.
    fn one_of<T: Copy>(
        &mut self,
        name: &str,
        raw: Option<&str>,
        all: &[T],
        name_of: fn(T) -> &'static str,
    ) -> Option<T> {
        self.field(name, raw.filter(|r| !r.is_empty()), |r| {
            all.iter()
                .copied()
                .find(|v| name_of(*v) == r)
                .ok_or_else(|| {
                    let names: Vec<&str> = all.iter().map(|v| name_of(*v)).collect();
                    format!("must be one of {}", names.join(", "))
                })
        })
    }

    /// `cursor`: a `next_cursor` from an earlier page; empty is the first page.
    pub fn cursor(&mut self, raw: Option<&str>) -> Option<Cursor> {
        self.field("cursor", raw.filter(|r| !r.is_empty()), |r| {
            r.parse::<Cursor>()
                .map_err(|_| "must be a next_cursor from an earlier page".to_owned())
        })
    }

    /// An RFC 3339 timestamp.
    pub fn time(&mut self, name: &str, raw: Option<&str>) -> Option<DateTime<Utc>> {
        self.field(name, raw, |r| {
            DateTime::parse_from_rfc3339(r)
                .ok()
                .map(|t| t.to_utc())
                .filter(|t| (1..=9999).contains(&t.year()))
                .ok_or_else(|| {
                    "must be an RFC 3339 timestamp such as 2026-11-23T00:00:00Z".to_owned()
                })
        })
    }

    /// A calendar date `YYYY-MM-DD`.
    pub fn date(&mut self, name: &str, raw: Option<&str>) -> Option<NaiveDate> {
        self.field(name, raw, |r| {
            NaiveDate::parse_from_str(r, "%Y-%m-%d")
                .ok()
                .filter(|d| (1..=9999).contains(&d.year()))
                .ok_or_else(|| "must be a date such as 2026-11-23".to_owned())
        })
    }

    /// A UUID.
    pub fn uuid(&mut self, name: &str, raw: Option<&str>) -> Option<Uuid> {
        self.field(name, raw, |r| {
            Uuid::try_parse(r).map_err(|_| "must be a UUID".to_owned())
        })
    }

    /// A positive aggregate version.
    pub fn version(&mut self, name: &str, raw: Option<&str>) -> Option<i64> {
        self.field(name, raw, |r| {
            r.parse::<i64>()
                .ok()
                .filter(|v| *v >= 1)
                .ok_or_else(|| "must be a positive integer".to_owned())
        })
    }

    /// Records an error that involves several parameters.
    pub fn refuse(&mut self, name: &str, message: &str) {
        self.0.refuse(name, message);
    }

    /// `Ok` when every parameter was valid, otherwise a 422 listing them.
    pub fn finish(self) -> Result<(), Problem> {
        self.0.finish(Some(()))
    }
}

//! The query parameters of the views, on top of [`platform::params::QueryParams`]: paging,
//! the status filters, versions, times and dates.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use platform::params::QueryParams;
use shared_events::order::OrderStatus;

use crate::projections::dead_letters::LetterStatus;
use crate::projections::order_lists::Cursor;

/// The query string of a view request.
pub type Params = QueryParams;

/// Default and largest page size of the list screens.
pub const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;

/// Keyset paging: a list is read with one row more than `limit`, so its page knows whether
/// another follows; `next_cursor` (from the last row shown) is `None` on the last page, also
/// when that page is full.
pub fn keyset<T>(
    mut rows: Vec<T>,
    limit: i64,
    cursor: impl Fn(&T) -> Cursor,
) -> (Vec<T>, Option<String>) {
    if rows.len() as i64 <= limit {
        return (rows, None);
    }
    rows.truncate(limit as usize);
    let next = rows.last().map(|row| cursor(row).to_string());
    (rows, next)
}

/// The parameters the views share.
pub trait ViewParams {
    /// `limit`: 1–100, default 20.
    fn limit(&mut self) -> i64;
    /// `status`: one of the order statuses; empty (a form's "any") is no filter.
    fn status(&mut self) -> Option<OrderStatus>;
    /// `status` of a dead letter; empty is no filter.
    fn letter_status(&mut self) -> Option<LetterStatus>;
    /// `cursor`: a `next_cursor` from an earlier page; empty is the first page.
    fn cursor(&mut self) -> Option<Cursor>;
    /// An RFC 3339 timestamp.
    fn time(&mut self, name: &str) -> Option<DateTime<Utc>>;
    /// A calendar date `YYYY-MM-DD`.
    fn date(&mut self, name: &str) -> Option<NaiveDate>;
    /// A positive aggregate version.
    fn version(&mut self, name: &str) -> Option<i64>;
}

impl ViewParams for QueryParams {
    fn limit(&mut self) -> i64 {
        self.integer("limit", 1..=MAX_LIMIT)
            .unwrap_or(DEFAULT_LIMIT)
    }

    fn status(&mut self) -> Option<OrderStatus> {
        self.one_of("status", &OrderStatus::ALL, OrderStatus::as_str)
    }

    fn letter_status(&mut self) -> Option<LetterStatus> {
        self.one_of("status", &LetterStatus::ALL, LetterStatus::as_str)
    }

    fn cursor(&mut self) -> Option<Cursor> {
        self.non_empty("cursor", |r| {
            r.parse::<Cursor>()
                .map_err(|_| "must be a next_cursor from an earlier page".to_owned())
        })
    }

    fn time(&mut self, name: &str) -> Option<DateTime<Utc>> {
        self.field(name, |r| {
            DateTime::parse_from_rfc3339(r)
                .ok()
                .map(|t| t.to_utc())
                .filter(|t| (1..=9999).contains(&t.year()))
                .ok_or_else(|| {
                    "must be an RFC 3339 timestamp such as 2026-11-23T00:00:00Z".to_owned()
                })
        })
    }

    fn date(&mut self, name: &str) -> Option<NaiveDate> {
        self.field(name, |r| {
            NaiveDate::parse_from_str(r, "%Y-%m-%d")
                .ok()
                .filter(|d| (1..=9999).contains(&d.year()))
                .ok_or_else(|| "must be a date such as 2026-11-23".to_owned())
        })
    }

    fn version(&mut self, name: &str) -> Option<i64> {
        self.field(name, |r| {
            r.parse::<i64>()
                .ok()
                .filter(|v| *v >= 1)
                .ok_or_else(|| "must be a positive integer".to_owned())
        })
    }
}

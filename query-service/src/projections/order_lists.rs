//! The list screens read from the order rows' summary columns: a customer's orders, the
//! back-office search and the shipping dashboard. Keyset pagination only (no OFFSET): a page
//! starts strictly after the last row of the previous one, so rows inserted meanwhile never
//! shift or repeat what a client already saw.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;
use shared_events::order::OrderStatus;
use uuid::Uuid;

/// Where a page ends: the sort key of its last row. Clients treat it as opaque text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The time the list is sorted by (placed or confirmed).
    pub at: DateTime<Utc>,
    /// The order id that breaks ties.
    pub id: Uuid,
}

/// The text is not a cursor this service issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid cursor")]
pub struct InvalidCursor;

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "k1.{}.{}", self.at.timestamp_micros(), self.id.simple())
    }
}

impl FromStr for Cursor {
    type Err = InvalidCursor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix("k1.").ok_or(InvalidCursor)?;
        let (micros, id) = rest.split_once('.').ok_or(InvalidCursor)?;
        let at = micros
            .parse()
            .ok()
            .and_then(DateTime::from_timestamp_micros)
            .filter(|t| (1..=9999).contains(&t.year()))
            .ok_or(InvalidCursor)?;
        let id = Uuid::try_parse(id).map_err(|_| InvalidCursor)?;
        Ok(Cursor { at, id })
    }
}

/// One order in a list.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct OrderSummary {
    /// The order.
    pub order_id: Uuid,
    /// Its customer.
    pub customer_id: Uuid,
    /// The customer's current name.
    pub customer_name: Option<String>,
    /// Where it is in its lifecycle.
    pub status: OrderStatus,
    /// ISO 4217 code.
    pub currency: String,
    /// Sum of quantities.
    pub item_count: i64,
    /// Order total, minor units.
    pub total_cents: i64,
    /// When it was placed.
    pub placed_at: DateTime<Utc>,
    /// When its last event happened.
    pub updated_at: DateTime<Utc>,
    /// The order's version.
    pub version: i64,
}

impl OrderSummary {
    /// The cursor that continues after this row (newest-first lists).
    pub fn cursor(&self) -> Cursor {
        Cursor {
            at: self.placed_at,
            id: self.order_id,
        }
    }
}

/// Filters of the back-office search; `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Only this customer's orders.
    pub customer_id: Option<Uuid>,
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
    /// Placed at or after.
    pub placed_after: Option<DateTime<Utc>>,
    /// Placed before.
    pub placed_before: Option<DateTime<Utc>>,
}

/// A customer's orders, newest first, optionally in one status.
pub async fn customer_orders(
    db: impl sqlx::PgExecutor<'_>,
    customer_id: Uuid,
    status: Option<OrderStatus>,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<OrderSummary>, sqlx::Error> {
    sqlx::query_as(
        "SELECT order_id, customer_id, customer_name, status, currency, item_count, total_cents, placed_at, updated_at, version
         FROM order_detail
         WHERE customer_id = $1 AND ($2::text IS NULL OR status = $2)
           AND ($3::timestamptz IS NULL OR (placed_at, order_id) < ($3, $4))
         ORDER BY placed_at DESC, order_id DESC
         LIMIT $5",
    )
    .bind(customer_id)
    .bind(status)
    .bind(after.map(|c| c.at))
    .bind(after.map(|c| c.id))
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Orders matching `search`, newest first.
pub async fn search(
    db: impl sqlx::PgExecutor<'_>,
    search: &Search,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<OrderSummary>, sqlx::Error> {
    sqlx::query_as(
        "SELECT order_id, customer_id, customer_name, status, currency, item_count, total_cents, placed_at, updated_at, version
         FROM order_detail
         WHERE ($1::uuid IS NULL OR customer_id = $1) AND ($2::text IS NULL OR status = $2)
           AND ($3::timestamptz IS NULL OR placed_at >= $3) AND ($4::timestamptz IS NULL OR placed_at < $4)
           AND ($5::timestamptz IS NULL OR (placed_at, order_id) < ($5, $6))
         ORDER BY placed_at DESC, order_id DESC
         LIMIT $7",
    )
    .bind(search.customer_id)
    .bind(search.status)
    .bind(search.placed_after)
    .bind(search.placed_before)
    .bind(after.map(|c| c.at))
    .bind(after.map(|c| c.id))
    .bind(limit)
    .fetch_all(db)
    .await
}

/// A confirmed order waiting to be shipped.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AwaitingShipment {
    /// The order.
    pub order_id: Uuid,
    /// Its customer.
    pub customer_id: Uuid,
    /// The customer's current name.
    pub customer_name: Option<String>,
    /// When it was confirmed.
    pub confirmed_at: DateTime<Utc>,
    /// Seconds since confirmation, when the page was read.
    #[sqlx(skip)]
    pub age_seconds: i64,
    /// Sum of quantities.
    pub item_count: i64,
    /// Order total, minor units.
    pub total_cents: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Where to ship it.
    #[schema(value_type = Option<shared_events::order::ShippingAddress>)]
    pub shipping_address: Option<sqlx::types::Json<serde_json::Value>>,
    /// The order's version: send it in the ship command's `If-Match`, so that an order changed
    /// by someone else meanwhile is refused (412) rather than shipped as it was not shown.
    pub version: i64,
}

/// Confirmed orders, longest waiting first.
pub async fn awaiting_shipment(
    db: impl sqlx::PgExecutor<'_>,
    after: Option<Cursor>,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<AwaitingShipment>, sqlx::Error> {
    let mut rows: Vec<AwaitingShipment> = sqlx::query_as(
        "SELECT order_id, customer_id, customer_name, confirmed_at, item_count, total_cents, currency,
                body -> 'shipping_address' AS shipping_address, version
         FROM order_detail
         WHERE status = 'confirmed' AND ($1::timestamptz IS NULL OR (confirmed_at, order_id) > ($1, $2))
         ORDER BY confirmed_at, order_id
         LIMIT $3",
    )
    .bind(after.map(|c| c.at))
    .bind(after.map(|c| c.id))
    .bind(limit)
    .fetch_all(db)
    .await?;
    for row in &mut rows {
        row.age_seconds = (now - row.confirmed_at).num_seconds().max(0);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_foreign_text() {
        let cursor = Cursor {
            at: DateTime::from_timestamp_micros(1_763_900_000_123_456).unwrap(),
            id: Uuid::now_v7(),
        };
        assert_eq!(cursor.to_string().parse::<Cursor>(), Ok(cursor));
        for bad in [
            "",
            "k1.",
            "k1.x.y",
            "k2.1.0190a3c6f2c47c4a8f3a2b1c0d9e8f7a",
            "k1.99999999999999999999.0190a3c6f2c47c4a8f3a2b1c0d9e8f7a",
        ] {
            assert_eq!(bad.parse::<Cursor>(), Err(InvalidCursor), "{bad}");
        }
    }
}

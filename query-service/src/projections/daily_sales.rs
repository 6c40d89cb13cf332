//! The daily sales report (`GET /reports/daily-sales`), per UTC day and currency.
//!
//! A sale is made when an order is confirmed (its lines are fixed then): `gross` is the total of
//! orders confirmed that day, `cancelled` the total of confirmed orders cancelled that day, and
//! `items_sold` the items confirmed minus those cancelled after confirmation. Placed and
//! cancelled counts count every order. Each event adds its deltas once: the per-aggregate
//! versions guarantee it is applied exactly once.

use std::collections::BTreeMap;

use anyhow::Context;
use chrono::NaiveDate;
use serde::Serialize;
use shared_events::DomainEvent;
use shared_events::order::OrderStatus;
use sqlx::PgConnection;

use super::Applicable;

/// The changes of one day and currency.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delta {
    placed: i64,
    confirmed: i64,
    cancelled: i64,
    gross_cents: i64,
    cancelled_cents: i64,
    items_sold: i64,
}

/// The deltas of `events`, by day and currency. Pure.
pub fn deltas(events: &[Applicable]) -> BTreeMap<(NaiveDate, String), Delta> {
    let mut deltas: BTreeMap<(NaiveDate, String), Delta> = BTreeMap::new();
    for (envelope, event) in events {
        let day = envelope.occurred_at.date_naive();
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let (currency, change) = match event {
            DomainEvent::OrderPlaced(e) => (
                &e.currency,
                Delta {
                    placed: 1,
                    ..Delta::default()
                },
            ),
            DomainEvent::OrderConfirmed(e) => (
                &e.currency,
                Delta {
                    confirmed: 1,
                    gross_cents: e.total_cents,
                    items_sold: count(e.item_count),
                    ..Delta::default()
                },
            ),
            DomainEvent::OrderCancelled(e) if e.previous_status == OrderStatus::Confirmed => (
                &e.currency,
                Delta {
                    cancelled: 1,
                    cancelled_cents: e.total_cents,
                    items_sold: -count(e.item_count),
                    ..Delta::default()
                },
            ),
            DomainEvent::OrderCancelled(e) => (
                &e.currency,
                Delta {
                    cancelled: 1,
                    ..Delta::default()
                },
            ),
            _ => continue,
        };
        let sum = deltas.entry((day, currency.clone())).or_default();
        sum.placed += change.placed;
        sum.confirmed += change.confirmed;
        sum.cancelled += change.cancelled;
        sum.gross_cents += change.gross_cents;
        sum.cancelled_cents += change.cancelled_cents;
        sum.items_sold += change.items_sold;
    }
    deltas
}

/// Adds the deltas of `events` to the report.
pub async fn apply(tx: &mut PgConnection, events: &[Applicable]) -> anyhow::Result<()> {
    let deltas = deltas(events);
    if deltas.is_empty() {
        return Ok(());
    }
    let (keys, values): (Vec<_>, Vec<_>) = deltas.into_iter().unzip();
    let (days, currencies): (Vec<NaiveDate>, Vec<String>) = keys.into_iter().unzip();
    let column = |f: fn(&Delta) -> i64| values.iter().map(f).collect::<Vec<i64>>();
    sqlx::query(
        "INSERT INTO daily_sales AS s (day, currency, orders_placed, orders_confirmed, orders_cancelled, gross_cents, cancelled_cents, items_sold)
         SELECT * FROM UNNEST($1::date[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])
         ON CONFLICT (day, currency) DO UPDATE SET
             orders_placed = s.orders_placed + EXCLUDED.orders_placed,
             orders_confirmed = s.orders_confirmed + EXCLUDED.orders_confirmed,
             orders_cancelled = s.orders_cancelled + EXCLUDED.orders_cancelled,
             gross_cents = s.gross_cents + EXCLUDED.gross_cents,
             cancelled_cents = s.cancelled_cents + EXCLUDED.cancelled_cents,
             items_sold = s.items_sold + EXCLUDED.items_sold",
    )
    .bind(days)
    .bind(currencies)
    .bind(column(|d| d.placed))
    .bind(column(|d| d.confirmed))
    .bind(column(|d| d.cancelled))
    .bind(column(|d| d.gross_cents))
    .bind(column(|d| d.cancelled_cents))
    .bind(column(|d| d.items_sold))
    .execute(tx)
    .await
    .context("add daily sales")?;
    Ok(())
}

/// One day and currency of the report.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DaySales {
    /// The UTC day.
    pub date: NaiveDate,
    /// ISO 4217 code.
    pub currency: String,
    /// Orders placed that day.
    pub orders_placed: i64,
    /// Orders confirmed that day.
    pub orders_confirmed: i64,
    /// Orders cancelled that day (before or after confirmation).
    pub orders_cancelled: i64,
    /// Total of orders confirmed that day, minor units.
    pub gross_cents: i64,
    /// Total of confirmed orders cancelled that day, minor units.
    pub cancelled_cents: i64,
    /// `gross_cents - cancelled_cents`.
    pub net_cents: i64,
    /// Items confirmed minus items of confirmed orders cancelled, that day.
    pub items_sold: i64,
}

/// The report from `from` to `to` (inclusive), by day then currency.
pub async fn report(
    db: impl sqlx::PgExecutor<'_>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DaySales>, sqlx::Error> {
    sqlx::query_as(
        "SELECT day AS date, currency, orders_placed, orders_confirmed, orders_cancelled, gross_cents, cancelled_cents,
                gross_cents - cancelled_cents AS net_cents, items_sold
         FROM daily_sales WHERE day BETWEEN $1 AND $2 ORDER BY day, currency",
    )
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use shared_events::EventEnvelope;
    use shared_events::order::{OrderCancelled, OrderConfirmed, OrderPlaced};
    use uuid::Uuid;

    fn at(day: u32, event: DomainEvent) -> Applicable {
        let at = Utc.with_ymd_and_hms(2026, 11, day, 23, 59, 0).unwrap();
        let envelope = EventEnvelope::new(&event, 1, at);
        (envelope, event)
    }

    #[test]
    fn sales_count_at_confirmation_and_cancellations_after_it_are_refunds() {
        let (order, customer) = (Uuid::now_v7(), Uuid::now_v7());
        let placed = OrderPlaced {
            order_id: order,
            customer_id: customer,
            currency: "EUR".into(),
            items: vec![],
            item_count: 0,
            total_cents: 0,
            shipping_address: None,
            placed_at: Utc::now(),
        };
        let confirmed = OrderConfirmed {
            order_id: order,
            customer_id: customer,
            item_count: 3,
            total_cents: 3000,
            currency: "EUR".into(),
        };
        let cancelled = OrderCancelled {
            order_id: order,
            customer_id: customer,
            reason: "r".into(),
            previous_status: OrderStatus::Confirmed,
            item_count: 3,
            total_cents: 3000,
            currency: "EUR".into(),
        };
        let early = OrderCancelled {
            previous_status: OrderStatus::Pending,
            ..cancelled.clone()
        };
        let events = [
            at(1, DomainEvent::OrderPlaced(placed)),
            at(1, DomainEvent::OrderConfirmed(confirmed)),
            at(2, DomainEvent::OrderCancelled(cancelled)),
            at(2, DomainEvent::OrderCancelled(early)),
        ];
        let deltas = deltas(&events);
        let day = |d| {
            (
                NaiveDate::from_ymd_opt(2026, 11, d).unwrap(),
                "EUR".to_owned(),
            )
        };
        assert_eq!(
            deltas[&day(1)],
            Delta {
                placed: 1,
                confirmed: 1,
                gross_cents: 3000,
                items_sold: 3,
                ..Delta::default()
            }
        );
        assert_eq!(
            deltas[&day(2)],
            Delta {
                cancelled: 2,
                cancelled_cents: 3000,
                items_sold: -3,
                ..Delta::default()
            }
        );
    }
}

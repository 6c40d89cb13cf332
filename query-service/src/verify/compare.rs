//! The query side of `verify`: reads every row of the live views, a page at a time, compares it
//! field by field with what the fold expects, and reads the open dead letters. Which rows the
//! events call for is decided in [`super::fold`]; this module only reads and counts differences.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};
use shared_events::AggregateType;
use sqlx::PgConnection;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::fold::{DaySales, ExpectedCustomer, ExpectedOrder, ExpectedProfile};
use super::{DeadLetters, EXAMPLES, PAGE, ViewReport};

/// Calls `visit` with every row of `sql` (which selects rows with an id above `$1`, ordered
/// by it, at most `$2`), a page at a time.
async fn scan<T>(
    tx: &mut PgConnection,
    sql: &'static str,
    id: fn(&T) -> Uuid,
    mut visit: impl FnMut(T),
) -> anyhow::Result<()>
where
    T: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
{
    let mut after: Option<Uuid> = None;
    loop {
        let rows: Vec<T> = sqlx::query_as(sql)
            .bind(after)
            .bind(PAGE)
            .fetch_all(&mut *tx)
            .await
            .with_context(|| format!("read the views: {sql}"))?;
        let full = rows.len() as i64 == PAGE;
        for row in rows {
            after = Some(id(&row));
            visit(row);
        }
        if !full {
            return Ok(());
        }
    }
}

/// A row of `order_detail`.
#[derive(Debug, sqlx::FromRow)]
struct OrderRow {
    order_id: Uuid,
    customer_id: Uuid,
    customer_name: Option<String>,
    customer_email: Option<String>,
    customer_version: i64,
    status: String,
    currency: String,
    item_count: i64,
    total_cents: i64,
    placed_at: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    version: i64,
    body: String,
    summary: String,
}

/// The fields of an order's list item (`order_detail.summary`) and their names in its document.
const SUMMARY_FIELDS: [(&str, &str); 10] = [
    ("summary.order_id", "order_id"),
    ("summary.customer_id", "customer_id"),
    ("summary.customer_name", "customer_name"),
    ("summary.status", "status"),
    ("summary.currency", "currency"),
    ("summary.item_count", "item_count"),
    ("summary.total_cents", "total_cents"),
    ("summary.placed_at", "created_at"),
    ("summary.updated_at", "updated_at"),
    ("summary.version", "version"),
];

pub(super) async fn compare_orders(
    tx: &mut PgConnection,
    mut orders: HashMap<Uuid, ExpectedOrder>,
    customers: &HashMap<Uuid, ExpectedCustomer>,
) -> anyhow::Result<ViewReport> {
    let mut report = ViewReport {
        expected_rows: orders.len() as u64,
        ..ViewReport::default()
    };
    let sql = "SELECT order_id, customer_id, customer_name, customer_email, customer_version, status, currency,
                      item_count, total_cents, placed_at, confirmed_at, updated_at, version, body::text AS body,
                      summary::text AS summary
               FROM views.order_detail WHERE $1::uuid IS NULL OR order_id > $1 ORDER BY order_id LIMIT $2";
    scan(
        tx,
        sql,
        |r: &OrderRow| r.order_id,
        |row| {
            report.actual_rows += 1;
            let Some(order) = orders.remove(&row.order_id) else {
                let actual = json!({ "status": row.status, "version": row.version });
                return report.unexpected(row.order_id, actual);
            };
            let customer = customers.get(&order.customer_id);
            report.compare(row.order_id, order.columns(customer), row.columns());
            let expected = order.body(row.order_id, customer);
            let body: Value = serde_json::from_str(&row.body).unwrap_or_default();
            let actual: Vec<_> = expected
                .iter()
                .map(|(field, _)| {
                    let name = field.strip_prefix("body.").unwrap_or(field);
                    (*field, body.get(name).cloned().unwrap_or_default())
                })
                .collect();
            // The order's item in the lists, stored with it, against the same fold.
            let summary: Value = serde_json::from_str(&row.summary).unwrap_or_default();
            let (expected_summary, actual_summary): (Vec<_>, Vec<_>) = SUMMARY_FIELDS
                .iter()
                .map(|(field, in_body)| {
                    let name = field.strip_prefix("summary.").unwrap_or(field);
                    let folded = expected
                        .iter()
                        .find(|(f, _)| f.strip_prefix("body.") == Some(*in_body))
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    (
                        (*field, folded),
                        (*field, summary.get(name).cloned().unwrap_or_default()),
                    )
                })
                .unzip();
            report.compare(row.order_id, expected, actual);
            report.compare(row.order_id, expected_summary, actual_summary);
        },
    )
    .await?;
    for (id, order) in orders {
        report.missing(
            id,
            json!({ "status": order.status, "version": order.version }),
        );
    }
    Ok(report)
}

impl OrderRow {
    fn columns(&self) -> [(&'static str, Value); 12] {
        [
            ("customer_id", json!(self.customer_id)),
            ("customer_name", json!(self.customer_name)),
            ("customer_email", json!(self.customer_email)),
            ("customer_version", json!(self.customer_version)),
            ("status", json!(self.status)),
            ("currency", json!(self.currency)),
            ("item_count", json!(self.item_count)),
            ("total_cents", json!(self.total_cents)),
            ("placed_at", json!(self.placed_at)),
            ("confirmed_at", json!(self.confirmed_at)),
            ("updated_at", json!(self.updated_at)),
            ("version", json!(self.version)),
        ]
    }
}

/// A row of `customer_profile`.
#[derive(Debug, sqlx::FromRow)]
struct ProfileRow {
    customer_id: Uuid,
    name: Option<String>,
    email: Option<String>,
    version: i64,
    order_count: i64,
    open_orders: i64,
    lifetime_value: sqlx::types::Json<Value>,
    last_order_at: Option<DateTime<Utc>>,
}

pub(super) async fn compare_profiles(
    tx: &mut PgConnection,
    mut profiles: HashMap<Uuid, ExpectedProfile>,
) -> anyhow::Result<ViewReport> {
    let mut report = ViewReport {
        expected_rows: profiles.len() as u64,
        ..ViewReport::default()
    };
    let sql = "SELECT customer_id, name, email, version, order_count, open_orders, lifetime_value, last_order_at
               FROM views.customer_profile WHERE $1::uuid IS NULL OR customer_id > $1 ORDER BY customer_id LIMIT $2";
    scan(
        tx,
        sql,
        |r: &ProfileRow| r.customer_id,
        |row| {
            report.actual_rows += 1;
            let actual = [
                ("name", json!(row.name)),
                ("email", json!(row.email)),
                ("version", json!(row.version)),
                ("order_count", json!(row.order_count)),
                ("open_orders", json!(row.open_orders)),
                ("lifetime_value", row.lifetime_value.0),
                ("last_order_at", json!(row.last_order_at)),
            ];
            match profiles.remove(&row.customer_id) {
                Some(profile) => report.compare(row.customer_id, profile.fields(), actual),
                None => report.unexpected(row.customer_id, json!({ "version": row.version })),
            }
        },
    )
    .await?;
    for (id, profile) in profiles {
        report.missing(
            id,
            json!({ "name": profile.name, "version": profile.version }),
        );
    }
    Ok(report)
}

/// A row of `daily_sales`.
#[derive(Debug, sqlx::FromRow)]
struct SalesRow {
    day: NaiveDate,
    currency: String,
    #[sqlx(flatten)]
    sales: DaySales,
}

pub(super) async fn compare_daily_sales(
    tx: &mut PgConnection,
    mut expected: BTreeMap<(NaiveDate, String), DaySales>,
) -> anyhow::Result<ViewReport> {
    // One row per day and currency: small enough to read at once.
    let rows: Vec<SalesRow> = sqlx::query_as(
        "SELECT day, currency, orders_placed, orders_confirmed, orders_cancelled, gross_cents, cancelled_cents, items_sold
         FROM views.daily_sales ORDER BY day, currency",
    )
    .fetch_all(&mut *tx)
    .await
    .context("read daily_sales")?;
    let mut report = ViewReport {
        expected_rows: expected.len() as u64,
        actual_rows: rows.len() as u64,
        ..ViewReport::default()
    };
    for row in rows {
        let id = format!("{} {}", row.day, row.currency);
        match expected.remove(&(row.day, row.currency)) {
            Some(sales) => report.compare(id, sales.fields(), row.sales.fields()),
            None => report.unexpected(id, json!(row.sales)),
        }
    }
    for ((day, currency), sales) in expected {
        report.missing(format!("{day} {currency}"), json!(sales));
    }
    Ok(report)
}

/// A row of `applied_versions`.
#[derive(Debug, sqlx::FromRow)]
struct VersionRow {
    aggregate_id: Uuid,
    aggregate_type: String,
    version: i64,
}

pub(super) async fn compare_versions(
    tx: &mut PgConnection,
    mut expected: HashMap<Uuid, (AggregateType, i64)>,
) -> anyhow::Result<ViewReport> {
    let mut report = ViewReport {
        expected_rows: expected.len() as u64,
        ..ViewReport::default()
    };
    let sql = "SELECT aggregate_id, aggregate_type, version FROM views.applied_versions
               WHERE $1::uuid IS NULL OR aggregate_id > $1 ORDER BY aggregate_id LIMIT $2";
    scan(
        tx,
        sql,
        |r: &VersionRow| r.aggregate_id,
        |row| {
            report.actual_rows += 1;
            let actual = [
                ("aggregate_type", json!(row.aggregate_type)),
                ("version", json!(row.version)),
            ];
            match expected.remove(&row.aggregate_id) {
                Some((kind, version)) => {
                    let expected = [
                        ("aggregate_type", json!(kind.as_str())),
                        ("version", json!(version)),
                    ];
                    report.compare(row.aggregate_id, expected, actual);
                }
                None => report.unexpected(row.aggregate_id, json!(row.version)),
            }
        },
    )
    .await?;
    for (id, (_, version)) in expected {
        report.missing(id, json!(version));
    }
    Ok(report)
}

pub(super) async fn dead_letters(
    tx: &mut PgConnection,
    allowed: u64,
) -> anyhow::Result<DeadLetters> {
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM views.dead_letters WHERE status IN ('parked', 'waiting')",
    )
    .fetch_one(&mut *tx)
    .await
    .context("count open dead letters")?;
    let examples = sqlx::query_as(
        "SELECT id, partition, kafka_offset, status, event_type, aggregate_id, aggregate_version, error
         FROM views.dead_letters WHERE status IN ('parked', 'waiting') ORDER BY id LIMIT $1",
    )
    .bind(EXAMPLES as i64)
    .fetch_all(&mut *tx)
    .await
    .context("read open dead letters")?;
    Ok(DeadLetters {
        open: u64::try_from(open).unwrap_or_default(),
        allowed,
        examples,
    })
}

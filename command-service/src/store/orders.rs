//! The orders and order_items tables: the current state of each order.

use std::sync::LazyLock;

use anyhow::Context;
use chrono::{DateTime, Utc};
use shared_events::order::{OrderLine, ShippingAddress};
use sqlx::types::Json;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::Lock;
use super::event_log::{self, EventColumns};
use crate::domain::order::{Order, OrderStatus};
use crate::domain::values::{CustomerId, OrderId};

/// The foreign key from an order to its customer: an order for a customer who is not
/// registered violates it.
pub const CUSTOMER_FK: &str = "orders_customer_fk";

/// Inserts a newly placed order, its lines and its events (with their outbox rows), in one
/// statement: one round trip, and atomic without a transaction around it. Fails with a
/// violation of [`CUSTOMER_FK`] when the customer is not registered; the key's check holds the
/// customer's row until commit.
pub async fn insert(
    conn: &mut PgConnection,
    order: &Order,
    events: EventColumns,
) -> anyhow::Result<()> {
    static INSERT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH placed AS (
                INSERT INTO orders (id, customer_id, status, currency, shipping_address, version, placed_at, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
                RETURNING id
            ),
            placed_lines AS (
                INSERT INTO order_items (order_id, line_no, sku, name, quantity, unit_price_cents)
                SELECT placed.id, line.*
                FROM placed, UNNEST($8::int[], $9::text[], $10::text[], $11::bigint[], $12::bigint[]) AS line
            ),
            {}",
            event_log::appending(13)
        )
    });
    let lines = LineColumns::of(order);
    let query = sqlx::query(&INSERT)
        .bind(order.id.0)
        .bind(order.customer_id.0)
        .bind(order.status)
        .bind(&order.currency)
        .bind(order.shipping_address.as_ref().map(Json))
        .bind(order.version)
        .bind(order.placed_at)
        .bind(lines.line_no)
        .bind(lines.sku)
        .bind(lines.name)
        .bind(lines.quantity)
        .bind(lines.unit_price_cents);
    events
        .bind(query)
        .execute(conn)
        .await
        .context("insert order")?;
    Ok(())
}

/// Loads an order and locks its row until the transaction ends, so commands on one order run
/// one after the other. `FOR NO KEY UPDATE` still lets other transactions reference the row.
///
/// The lines are read in a second statement, after the lock is held: under READ COMMITTED a
/// statement that waited for the lock sees the locked row's new version but reads everything
/// else from the snapshot taken before it waited, which would be the previous command's lines.
pub async fn load_for_update(tx: &mut PgConnection, id: OrderId) -> anyhow::Result<Option<Order>> {
    load(tx, id, Lock::ForUpdate).await
}

/// Loads an order as it is, without locking it: for a strict read, inside a read-only
/// transaction whose snapshot keeps the row and its lines consistent.
pub async fn load_current(tx: &mut PgConnection, id: OrderId) -> anyhow::Result<Option<Order>> {
    load(tx, id, Lock::None).await
}

async fn load(tx: &mut PgConnection, id: OrderId, lock: Lock) -> anyhow::Result<Option<Order>> {
    const SELECT: &str = "SELECT customer_id, status, currency, shipping_address, carrier,
                tracking_number, cancellation_reason, version, placed_at
         FROM orders WHERE id = $1";
    const SELECT_FOR_UPDATE: &str = "SELECT customer_id, status, currency, shipping_address,
                carrier, tracking_number, cancellation_reason, version, placed_at
         FROM orders WHERE id = $1 FOR NO KEY UPDATE";
    let statement = match lock {
        Lock::ForUpdate => SELECT_FOR_UPDATE,
        Lock::None => SELECT,
    };
    let Some(row) = sqlx::query(statement)
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await
        .context("read order")?
    else {
        return Ok(None);
    };
    let lines: Vec<(String, String, i32, i64)> = sqlx::query_as(
        "SELECT sku, name, quantity, unit_price_cents FROM order_items WHERE order_id = $1 ORDER BY line_no",
    )
    .bind(id.0)
    .fetch_all(&mut *tx)
    .await
    .context("load order lines")?;
    let carrier: Option<String> = row.try_get("carrier")?;
    let tracking_number: Option<String> = row.try_get("tracking_number")?;
    Ok(Some(Order {
        id,
        customer_id: CustomerId(row.try_get::<Uuid, _>("customer_id")?),
        status: row.try_get::<OrderStatus, _>("status")?,
        currency: row.try_get("currency")?,
        lines: lines
            .into_iter()
            .map(|(sku, name, quantity, unit_price_cents)| {
                let quantity = u32::try_from(quantity).context("stored quantity")?;
                Ok(OrderLine {
                    sku,
                    name,
                    quantity,
                    unit_price_cents,
                })
            })
            .collect::<anyhow::Result<_>>()?,
        shipping_address: row
            .try_get::<Option<Json<ShippingAddress>>, _>("shipping_address")?
            .map(|j| j.0),
        shipment: carrier.zip(tracking_number),
        cancellation_reason: row.try_get("cancellation_reason")?,
        version: row.try_get("version")?,
        placed_at: row.try_get::<DateTime<Utc>, _>("placed_at")?,
    }))
}

/// Writes the order's new state over `previous_version`. Returns false when the stored version
/// was not `previous_version` (another transaction changed it), in which case nothing was
/// written.
pub async fn update(
    tx: &mut PgConnection,
    previous_version: i64,
    order: &Order,
    now: DateTime<Utc>,
    lines_changed: bool,
) -> anyhow::Result<bool> {
    let (carrier, tracking_number) = order.shipment.clone().unzip();
    let updated = sqlx::query(
        "UPDATE orders SET status = $3, shipping_address = $4, carrier = $5, tracking_number = $6,
                           cancellation_reason = $7, version = $8, updated_at = $9
         WHERE id = $1 AND version = $2",
    )
    .bind(order.id.0)
    .bind(previous_version)
    .bind(order.status)
    .bind(order.shipping_address.as_ref().map(Json))
    .bind(carrier)
    .bind(tracking_number)
    .bind(&order.cancellation_reason)
    .bind(order.version)
    .bind(now)
    .execute(&mut *tx)
    .await
    .context("update order")?
    .rows_affected();
    if updated == 1 && lines_changed {
        sqlx::query("DELETE FROM order_items WHERE order_id = $1")
            .bind(order.id.0)
            .execute(&mut *tx)
            .await
            .context("delete order lines")?;
        insert_lines(tx, order).await?;
    }
    Ok(updated == 1)
}

async fn insert_lines(tx: &mut PgConnection, order: &Order) -> anyhow::Result<()> {
    if order.lines.is_empty() {
        return Ok(());
    }
    let lines = LineColumns::of(order);
    sqlx::query(
        "INSERT INTO order_items (order_id, line_no, sku, name, quantity, unit_price_cents)
         SELECT $1, * FROM UNNEST($2::int[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])",
    )
    .bind(order.id.0)
    .bind(lines.line_no)
    .bind(lines.sku)
    .bind(lines.name)
    .bind(lines.quantity)
    .bind(lines.unit_price_cents)
    .execute(tx)
    .await
    .context("insert order lines")?;
    Ok(())
}

/// An order's lines as one array per column, for `UNNEST`.
struct LineColumns<'a> {
    line_no: Vec<i32>,
    sku: Vec<&'a str>,
    name: Vec<&'a str>,
    quantity: Vec<i64>,
    unit_price_cents: Vec<i64>,
}

impl<'a> LineColumns<'a> {
    fn of(order: &'a Order) -> LineColumns<'a> {
        let lines = &order.lines;
        LineColumns {
            line_no: (0..).take(lines.len()).collect(),
            sku: lines.iter().map(|l| l.sku.as_str()).collect(),
            name: lines.iter().map(|l| l.name.as_str()).collect(),
            quantity: lines.iter().map(|l| i64::from(l.quantity)).collect(),
            unit_price_cents: lines.iter().map(|l| l.unit_price_cents).collect(),
        }
    }
}

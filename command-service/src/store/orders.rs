//! The orders and order_items tables: the current state of each order.

use sqlx::PgConnection;

use crate::domain::order::Order;

/// Inserts a newly placed order and its lines.
pub async fn insert(tx: &mut PgConnection, order: &Order) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO orders (id, customer_id, status, currency, shipping_address, version, placed_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(order.id.0)
    .bind(order.customer_id.0)
    .bind(order.status.as_str())
    .bind(&order.currency)
    .bind(order.shipping_address.as_ref().map(sqlx::types::Json))
    .bind(order.version)
    .bind(order.placed_at)
    .execute(&mut *tx)
    .await?;
    insert_lines(tx, order).await
}

async fn insert_lines(tx: &mut PgConnection, order: &Order) -> Result<(), sqlx::Error> {
    if order.lines.is_empty() {
        return Ok(());
    }
    let line_no: Vec<i32> = (0..).take(order.lines.len()).collect();
    let sku: Vec<&str> = order.lines.iter().map(|l| l.sku.as_str()).collect();
    let name: Vec<&str> = order.lines.iter().map(|l| l.name.as_str()).collect();
    let quantity: Vec<i32> = order.lines.iter().map(|l| l.quantity as i32).collect();
    let price: Vec<i64> = order.lines.iter().map(|l| l.unit_price_cents).collect();
    sqlx::query(
        "INSERT INTO order_items (order_id, line_no, sku, name, quantity, unit_price_cents)
         SELECT $1, * FROM UNNEST($2::int[], $3::text[], $4::text[], $5::int[], $6::bigint[])",
    )
    .bind(order.id.0)
    .bind(line_no)
    .bind(sku)
    .bind(name)
    .bind(quantity)
    .bind(price)
    .execute(tx)
    .await?;
    Ok(())
}

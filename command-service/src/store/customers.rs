//! The customers table: the current state of each customer.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::Lock;
use crate::domain::customer::Customer;
use crate::domain::values::CustomerId;

/// The unique index that keeps email addresses unique (case-insensitively).
pub const EMAIL_UNIQUE: &str = "customers_email_unique";
/// The primary key: one customer per id (a customer registering twice under their token's id).
pub const PRIMARY_KEY: &str = "customers_pkey";

/// Inserts a newly registered customer. Fails with a violation of [`EMAIL_UNIQUE`] when the
/// address is taken.
pub async fn insert(
    tx: &mut PgConnection,
    customer: &Customer,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO customers (id, name, email, version, registered_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(customer.id.0)
    .bind(&customer.name)
    .bind(&customer.email)
    .bind(customer.version)
    .bind(now)
    .execute(tx)
    .await
    .context("insert customer")?;
    Ok(())
}

/// Loads a customer and locks its row until the transaction ends. `FOR NO KEY UPDATE` still
/// lets concurrent orders reference the customer.
pub async fn load_for_update(
    tx: &mut PgConnection,
    id: CustomerId,
) -> anyhow::Result<Option<Customer>> {
    load(tx, id, Lock::ForUpdate).await
}

/// Loads a customer as it is, without locking it (a strict read).
pub async fn load_current(
    conn: &mut PgConnection,
    id: CustomerId,
) -> anyhow::Result<Option<Customer>> {
    load(conn, id, Lock::None).await
}

async fn load(
    conn: &mut PgConnection,
    id: CustomerId,
    lock: Lock,
) -> anyhow::Result<Option<Customer>> {
    let statement = match lock {
        Lock::ForUpdate => {
            "SELECT name, email, version FROM customers WHERE id = $1 FOR NO KEY UPDATE"
        }
        Lock::None => "SELECT name, email, version FROM customers WHERE id = $1",
    };
    let row: Option<(String, String, i64)> = sqlx::query_as(statement)
        .bind(id.0)
        .fetch_optional(conn)
        .await
        .context("read customer")?;
    Ok(row.map(|(name, email, version)| Customer {
        id,
        name,
        email,
        version,
    }))
}

/// True when the customer exists. The orders' foreign key makes this hold until commit.
pub async fn exists(tx: &mut PgConnection, id: CustomerId) -> anyhow::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM customers WHERE id = $1)")
        .bind(id.0)
        .fetch_one(tx)
        .await
        .context("look up customer")
}

/// Writes the customer's new state over `previous_version`; false when the stored version was
/// another (nothing written). Fails with a violation of [`EMAIL_UNIQUE`] when the new address is
/// taken.
pub async fn update(
    tx: &mut PgConnection,
    previous_version: i64,
    customer: &Customer,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let updated = sqlx::query(
        "UPDATE customers SET name = $3, email = $4, version = $5, updated_at = $6
         WHERE id = $1 AND version = $2",
    )
    .bind(customer.id.0)
    .bind(previous_version)
    .bind(&customer.name)
    .bind(&customer.email)
    .bind(customer.version)
    .bind(now)
    .execute(tx)
    .await
    .context("update customer")?
    .rows_affected();
    Ok(updated == 1)
}

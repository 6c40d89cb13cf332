//! The customer profile view (`GET /customers/{id}`): name and email from the customer's events,
//! order figures recomputed from the customer's order rows.
//!
//! The same rows are the query side's directory of customers: order views copy the name and
//! email from here, whichever of the customer's and the order's events arrived first.

use std::collections::{BTreeSet, HashMap};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared_events::DomainEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use super::Applicable;

/// What the query side knows about a customer from their own events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerFacts {
    /// Current name, once registered.
    pub name: Option<String>,
    /// Current email, once registered.
    pub email: Option<String>,
    /// The customer's aggregate version (0 before their registration arrived).
    pub version: i64,
}

/// Facts of every customer a batch touches, and which of them changed.
#[derive(Debug, Default)]
pub struct Customers {
    /// By customer id.
    pub facts: HashMap<Uuid, CustomerFacts>,
    /// Customers whose name or email changed in this batch.
    pub changed: BTreeSet<Uuid>,
}

impl CustomerFacts {
    /// The facts after `event`; events of other kinds leave them unchanged.
    pub fn apply(&mut self, event: &DomainEvent, version: i64) -> bool {
        match event {
            DomainEvent::CustomerRegistered(e) => {
                (self.name, self.email) = (Some(e.name.clone()), Some(e.email.clone()));
            }
            DomainEvent::CustomerRenamed(e) => self.name = Some(e.name.clone()),
            DomainEvent::CustomerEmailChanged(e) => self.email = Some(e.email.clone()),
            _ => return false,
        }
        self.version = version;
        true
    }
}

/// Loads the facts of every customer in `events`, applies the customer events and saves them.
pub async fn apply_customer_events(
    tx: &mut PgConnection,
    events: &[Applicable],
) -> anyhow::Result<Customers> {
    let ids: Vec<Uuid> = events
        .iter()
        .map(|(_, e)| e.customer_id())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Ok(Customers::default());
    }
    let rows: Vec<(Uuid, Option<String>, Option<String>, i64)> =
        sqlx::query_as("SELECT customer_id, name, email, version FROM customer_profile WHERE customer_id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await
            .context("load customer facts")?;
    let mut customers = Customers {
        facts: rows
            .into_iter()
            .map(|(id, name, email, version)| {
                (
                    id,
                    CustomerFacts {
                        name,
                        email,
                        version,
                    },
                )
            })
            .collect(),
        changed: BTreeSet::new(),
    };
    for (envelope, event) in events {
        let facts = customers.facts.entry(event.customer_id()).or_default();
        if facts.apply(event, envelope.aggregate_version) {
            customers.changed.insert(event.customer_id());
        }
    }
    if !customers.changed.is_empty() {
        let changed: Vec<(&Uuid, &CustomerFacts)> = customers
            .changed
            .iter()
            .filter_map(|id| customers.facts.get_key_value(id))
            .collect();
        let ids: Vec<Uuid> = changed.iter().map(|(id, _)| **id).collect();
        let names: Vec<Option<&str>> = changed.iter().map(|(_, f)| f.name.as_deref()).collect();
        let emails: Vec<Option<&str>> = changed.iter().map(|(_, f)| f.email.as_deref()).collect();
        let versions: Vec<i64> = changed.iter().map(|(_, f)| f.version).collect();
        sqlx::query(
            "INSERT INTO customer_profile (customer_id, name, email, version)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::bigint[])
             ON CONFLICT (customer_id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email,
                 version = EXCLUDED.version, updated_at = now()",
        )
        .bind(ids)
        .bind(names)
        .bind(emails)
        .bind(versions)
        .execute(&mut *tx)
        .await
        .context("save customer facts")?;
    }
    Ok(customers)
}

/// Recomputes order count, open orders, lifetime value and last order time of `customers` from
/// their order rows. Recomputing (rather than adding deltas) makes the figures right whatever
/// order the events came in.
pub async fn recompute_order_figures(
    tx: &mut PgConnection,
    customers: &BTreeSet<Uuid>,
) -> anyhow::Result<()> {
    if customers.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = customers.iter().copied().collect();
    sqlx::query(
        "WITH figures AS (
             SELECT customer_id, count(*) AS order_count,
                    count(*) FILTER (WHERE status IN ('pending', 'confirmed', 'shipped')) AS open_orders,
                    max(placed_at) AS last_order_at
             FROM order_detail WHERE customer_id = ANY($1) GROUP BY customer_id
         ), value AS (
             SELECT customer_id, jsonb_agg(jsonb_build_object('currency', currency, 'amount_cents', amount) ORDER BY currency) AS lifetime_value
             FROM (SELECT customer_id, currency, sum(total_cents) AS amount FROM order_detail
                   WHERE customer_id = ANY($1) AND status IN ('confirmed', 'shipped', 'delivered')
                   GROUP BY customer_id, currency) sums
             GROUP BY customer_id
         )
         INSERT INTO customer_profile (customer_id, order_count, open_orders, last_order_at, lifetime_value)
         SELECT f.customer_id, f.order_count, f.open_orders, f.last_order_at, COALESCE(v.lifetime_value, '[]')
         FROM figures f LEFT JOIN value v USING (customer_id)
         ON CONFLICT (customer_id) DO UPDATE SET order_count = EXCLUDED.order_count, open_orders = EXCLUDED.open_orders,
             last_order_at = EXCLUDED.last_order_at, lifetime_value = EXCLUDED.lifetime_value, updated_at = now()",
    )
    .bind(ids)
    .execute(tx)
    .await
    .context("recompute customer order figures")?;
    Ok(())
}

/// The profile as served.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Profile {
    /// The customer.
    pub customer_id: Uuid,
    /// Current name.
    pub name: Option<String>,
    /// Current email.
    pub email: Option<String>,
    /// Orders ever placed.
    pub order_count: i64,
    /// Orders pending, confirmed or shipped.
    pub open_orders: i64,
    /// Sum of confirmed, shipped and delivered orders, per currency:
    /// `[{"currency": "EUR", "amount_cents": 12345}]`.
    #[schema(value_type = Vec<Object>)]
    pub lifetime_value: sqlx::types::Json<serde_json::Value>,
    /// When their newest order was placed.
    pub last_order_at: Option<DateTime<Utc>>,
    /// The customer's aggregate version.
    pub version: i64,
}

/// The profile of a registered customer (`None` until their registration was applied).
pub async fn find(db: impl sqlx::PgExecutor<'_>, id: Uuid) -> Result<Option<Profile>, sqlx::Error> {
    sqlx::query_as(
        "SELECT customer_id, name, email, order_count, open_orders, lifetime_value, last_order_at, version
         FROM customer_profile WHERE customer_id = $1 AND version > 0",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

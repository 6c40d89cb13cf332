//! The customer profile view (`GET /customers/{id}`): name and email from the customer's events,
//! order figures kept from the changes of the customer's orders.
//!
//! The same rows are the query side's directory of customers: order views copy the name and
//! email from here, whichever of the customer's and the order's events arrived first.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared_events::DomainEvent;
use shared_events::order::OrderStatus;
use sqlx::PgConnection;
use uuid::Uuid;

use super::Applicable;
use super::order_detail::OrderDetail;

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
            .persistent(false) // planned with its keys: see `projections`
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

/// What one order adds to its customer's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFigures {
    /// Pending, confirmed or shipped.
    open: bool,
    /// Its currency and total while confirmed, shipped or delivered.
    valued: Option<(String, i64)>,
}

impl OrderFigures {
    /// The figures of `order` as it stands.
    pub fn of(order: &OrderDetail) -> OrderFigures {
        use OrderStatus::{Confirmed, Delivered, Pending, Shipped};
        OrderFigures {
            open: matches!(order.status, Pending | Confirmed | Shipped),
            valued: matches!(order.status, Confirmed | Shipped | Delivered)
                .then(|| (order.currency.clone(), order.total_cents)),
        }
    }
}

/// How a batch changed a customer's order figures: each touched order's figures after the
/// batch less its figures before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FiguresDelta {
    orders: i64,
    open: i64,
    last_order_at: Option<DateTime<Utc>>,
    /// An order entered or left the valued statuses, or its total changed while in them.
    revalued: bool,
}

impl FiguresDelta {
    /// Adds the change of one order, from `before` (`None`: new in this batch) to `after`.
    pub fn add(
        &mut self,
        before: Option<&OrderFigures>,
        after: &OrderFigures,
        placed_at: DateTime<Utc>,
    ) {
        if before.is_none() {
            self.orders += 1;
            self.last_order_at = self.last_order_at.max(Some(placed_at));
        }
        self.open += i64::from(after.open) - i64::from(before.is_some_and(|b| b.open));
        self.revalued |= before.map_or(after.valued.is_some(), |b| b.valued != after.valued);
    }
}

/// Adds each customer's delta to their order count, open orders and last order time, which
/// costs the same however many orders the customer has. The lifetime value of a customer whose
/// valued orders changed is summed again from their order rows: it lists every currency of a
/// valued order, also at a zero total, and a delta cannot tell when the last one left.
pub async fn apply_order_figures(
    tx: &mut PgConnection,
    deltas: &BTreeMap<Uuid, FiguresDelta>,
) -> anyhow::Result<()> {
    let counted: Vec<(&Uuid, &FiguresDelta)> = deltas
        .iter()
        .filter(|(_, d)| d.orders != 0 || d.open != 0)
        .collect();
    if !counted.is_empty() {
        sqlx::query(
            "INSERT INTO customer_profile (customer_id, order_count, open_orders, last_order_at)
             SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::bigint[], $4::timestamptz[])
             ON CONFLICT (customer_id) DO UPDATE SET
                 order_count = customer_profile.order_count + EXCLUDED.order_count,
                 open_orders = customer_profile.open_orders + EXCLUDED.open_orders,
                 last_order_at = GREATEST(customer_profile.last_order_at, EXCLUDED.last_order_at),
                 updated_at = now()",
        )
        .bind(counted.iter().map(|(id, _)| **id).collect::<Vec<_>>())
        .bind(counted.iter().map(|(_, d)| d.orders).collect::<Vec<_>>())
        .bind(counted.iter().map(|(_, d)| d.open).collect::<Vec<_>>())
        .bind(
            counted
                .iter()
                .map(|(_, d)| d.last_order_at)
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await
        .context("add to customer order figures")?;
    }
    let revalued: Vec<Uuid> = deltas
        .iter()
        .filter(|(_, d)| d.revalued)
        .map(|(id, _)| *id)
        .collect();
    if !revalued.is_empty() {
        // The statuses filter the aggregate, not the rows: with them in the WHERE clause, the
        // planner reads the status index whenever the statistics were taken while few orders
        // were valued (after a run of placements, say), and then scans every valued order of
        // every customer for each customer, which made a catch-up 6 times slower.
        sqlx::query(
            "UPDATE customer_profile p SET updated_at = now(), lifetime_value = COALESCE((
                 SELECT jsonb_agg(jsonb_build_object('currency', currency, 'amount_cents', amount)
                                  ORDER BY currency)
                 FROM (SELECT currency,
                              sum(total_cents) FILTER (WHERE status IN ('confirmed', 'shipped', 'delivered'))
                                  AS amount
                       FROM order_detail WHERE customer_id = p.customer_id
                       GROUP BY currency
                       HAVING bool_or(status IN ('confirmed', 'shipped', 'delivered'))) sums), '[]')
             WHERE p.customer_id = ANY($1)",
        )
        .persistent(false) // planned with its keys: see `projections`
        .bind(revalued)
        .execute(&mut *tx)
        .await
        .context("recompute customer lifetime values")?;
    }
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
    Ok(find_many(db, &[id]).await?.pop())
}

/// The profiles of those of `ids` who are registered.
pub async fn find_many(
    db: impl sqlx::PgExecutor<'_>,
    ids: &[Uuid],
) -> Result<Vec<Profile>, sqlx::Error> {
    sqlx::query_as(
        "SELECT customer_id, name, email, order_count, open_orders, lifetime_value, last_order_at, version
         FROM customer_profile WHERE customer_id = ANY($1) AND version > 0",
    )
    .bind(ids)
    .fetch_all(db)
    .await
}

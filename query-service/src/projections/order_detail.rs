//! The order detail view (`GET /orders/{id}`): one JSON document per order, folded from the
//! order's events.
//!
//! The fold ([`OrderDetail::apply`]) is pure; `apply` loads the affected documents of a batch
//! in one query, folds every event in memory and writes them back in one statement, so a batch
//! costs the same few round trips whatever its size.

use std::collections::HashMap;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared_events::order::{OrderLine, ShippingAddress};
use shared_events::{AggregateType, DomainEvent, EventEnvelope};
use sqlx::PgConnection;
use uuid::Uuid;

use super::Applicable;

/// One line as shown on the order screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemView {
    /// Stock keeping unit.
    pub sku: String,
    /// Product name.
    pub name: String,
    /// Units ordered.
    pub quantity: u32,
    /// Price of one unit, minor units.
    pub unit_price_cents: i64,
    /// `quantity × unit_price_cents`.
    pub line_total_cents: i64,
}

/// The order detail document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDetail {
    /// The order.
    pub order_id: Uuid,
    /// Who placed it.
    pub customer_id: Uuid,
    /// `pending`, `confirmed`, `shipped`, `delivered` or `cancelled`.
    pub status: String,
    /// ISO 4217 code of every amount.
    pub currency: String,
    /// The lines.
    pub items: Vec<ItemView>,
    /// Sum of quantities.
    pub item_count: u64,
    /// Sum of line totals, minor units.
    pub total_cents: i64,
    /// Where to ship, if known.
    pub shipping_address: Option<ShippingAddress>,
    /// Carrier, once shipped.
    pub carrier: Option<String>,
    /// Tracking number, once shipped.
    pub tracking_number: Option<String>,
    /// Why it was cancelled, once cancelled.
    pub cancellation_reason: Option<String>,
    /// Version of the order this document reflects.
    pub version: i64,
    /// When the order was placed.
    pub created_at: DateTime<Utc>,
    /// When it was confirmed.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// When it was shipped.
    pub shipped_at: Option<DateTime<Utc>>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// When it was cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// When the last event was applied (the event's time, not the projector's).
    pub updated_at: DateTime<Utc>,
}

impl ItemView {
    fn of(line: &OrderLine) -> ItemView {
        ItemView {
            sku: line.sku.clone(),
            name: line.name.clone(),
            quantity: line.quantity,
            unit_price_cents: line.unit_price_cents,
            line_total_cents: line.line_total_cents(),
        }
    }
}

impl OrderDetail {
    /// The document after `event`. Events of other orders or of customers leave it as it is;
    /// an order event before the order's `OrderPlaced` (impossible in version order) too.
    pub fn apply(
        view: Option<OrderDetail>,
        envelope: &EventEnvelope,
        event: &DomainEvent,
    ) -> Option<OrderDetail> {
        let at = envelope.occurred_at;
        if let DomainEvent::OrderPlaced(placed) = event {
            return Some(OrderDetail {
                order_id: placed.order_id,
                customer_id: placed.customer_id,
                status: "pending".into(),
                currency: placed.currency.clone(),
                items: placed.items.iter().map(ItemView::of).collect(),
                item_count: placed.item_count,
                total_cents: placed.total_cents,
                shipping_address: placed.shipping_address.clone(),
                carrier: None,
                tracking_number: None,
                cancellation_reason: None,
                version: envelope.aggregate_version,
                created_at: placed.placed_at,
                confirmed_at: None,
                shipped_at: None,
                delivered_at: None,
                cancelled_at: None,
                updated_at: at,
            });
        }
        let mut view = view?;
        match event {
            DomainEvent::OrderItemAdded(e) => {
                match view.items.iter_mut().find(|i| i.sku == e.line.sku) {
                    Some(item) => *item = ItemView::of(&e.line),
                    None => view.items.push(ItemView::of(&e.line)),
                }
                (view.item_count, view.total_cents) = (e.item_count, e.total_cents);
            }
            DomainEvent::OrderItemRemoved(e) => {
                view.items.retain(|i| i.sku != e.line.sku);
                (view.item_count, view.total_cents) = (e.item_count, e.total_cents);
            }
            DomainEvent::OrderConfirmed(_) => {
                view.status = "confirmed".into();
                view.confirmed_at = Some(at);
            }
            DomainEvent::OrderShipped(e) => {
                view.status = "shipped".into();
                view.carrier = Some(e.carrier.clone());
                view.tracking_number = Some(e.tracking_number.clone());
                view.shipped_at = Some(at);
            }
            DomainEvent::OrderDelivered(_) => {
                view.status = "delivered".into();
                view.delivered_at = Some(at);
            }
            DomainEvent::OrderCancelled(e) => {
                view.status = "cancelled".into();
                view.cancellation_reason = Some(e.reason.clone());
                view.cancelled_at = Some(at);
            }
            _ => return Some(view),
        }
        view.version = envelope.aggregate_version;
        view.updated_at = at;
        Some(view)
    }
}

/// The order an event is about, when it is about an order.
fn order_id(event: &DomainEvent) -> Option<Uuid> {
    (event.aggregate_type() == AggregateType::Order).then(|| event.aggregate_id())
}

/// Folds `events` into the stored documents.
pub async fn apply(tx: &mut PgConnection, events: &[Applicable]) -> anyhow::Result<()> {
    let mut ids: Vec<Uuid> = events.iter().filter_map(|(_, e)| order_id(e)).collect();
    if ids.is_empty() {
        return Ok(());
    }
    ids.sort_unstable();
    ids.dedup();
    let mut views = load(tx, &ids).await?;
    for (envelope, event) in events {
        if let Some(id) = order_id(event)
            && let Some(view) = OrderDetail::apply(views.remove(&id), envelope, event)
        {
            views.insert(id, view);
        }
    }
    save(tx, views.values()).await
}

async fn load(tx: &mut PgConnection, ids: &[Uuid]) -> anyhow::Result<HashMap<Uuid, OrderDetail>> {
    let bodies: Vec<String> =
        sqlx::query_scalar("SELECT body::text FROM order_detail WHERE order_id = ANY($1)")
            .bind(ids)
            .fetch_all(tx)
            .await
            .context("load order details")?;
    bodies
        .iter()
        .map(|body| {
            let view: OrderDetail = serde_json::from_str(body).context("stored order detail")?;
            Ok((view.order_id, view))
        })
        .collect()
}

async fn save(
    tx: &mut PgConnection,
    views: impl Iterator<Item = &OrderDetail>,
) -> anyhow::Result<()> {
    let (mut ids, mut customers, mut statuses, mut placed, mut versions, mut bodies) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for view in views {
        ids.push(view.order_id);
        customers.push(view.customer_id);
        statuses.push(view.status.as_str());
        placed.push(view.created_at);
        versions.push(view.version);
        bodies.push(serde_json::to_string(view).context("serialize order detail")?);
    }
    sqlx::query(
        "INSERT INTO order_detail (order_id, customer_id, status, placed_at, version, body)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::bigint[], $6::text[]::json[])
         ON CONFLICT (order_id) DO UPDATE SET
             customer_id = EXCLUDED.customer_id, status = EXCLUDED.status, placed_at = EXCLUDED.placed_at,
             version = EXCLUDED.version, body = EXCLUDED.body",
    )
    .bind(ids)
    .bind(customers)
    .bind(statuses)
    .bind(placed)
    .bind(versions)
    .bind(bodies)
    .execute(tx)
    .await
    .context("save order details")?;
    Ok(())
}

/// The stored document of `order_id` as JSON text, with its version.
pub async fn find(
    pool: &sqlx::PgPool,
    order_id: Uuid,
) -> Result<Option<(i64, String)>, sqlx::Error> {
    sqlx::query_as("SELECT version, body::text FROM order_detail WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(pool)
        .await
}

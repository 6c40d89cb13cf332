//! The order detail view (`GET /orders/{id}`): one JSON document per order, folded from the
//! order's events.
//!
//! The fold ([`OrderDetail::apply`]) is pure; `apply` loads the affected documents of a batch
//! in one query, folds every event in memory and writes them back in one statement, so a batch
//! costs the same few round trips whatever its size.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared_events::order::{OrderLine, OrderStatus, ShippingAddress};
use shared_events::{AggregateType, DomainEvent, EventEnvelope};
use sqlx::PgConnection;
use uuid::Uuid;

use super::Applicable;
use super::customer_profile::{Customers, FiguresDelta, OrderFigures};
use super::order_lists::OrderSummary;

/// One line as shown on the order screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderDetail {
    /// The order.
    pub order_id: Uuid,
    /// Who placed it.
    pub customer_id: Uuid,
    /// The customer's current name (copied from their events; `null` until known).
    pub customer_name: Option<String>,
    /// The customer's current email (copied from their events; `null` until known).
    pub customer_email: Option<String>,
    /// Where it is in its lifecycle.
    pub status: OrderStatus,
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
                customer_name: None,
                customer_email: None,
                status: OrderStatus::Pending,
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
                view.status = OrderStatus::Confirmed;
                view.confirmed_at = Some(at);
            }
            DomainEvent::OrderShipped(e) => {
                view.status = OrderStatus::Shipped;
                view.carrier = Some(e.carrier.clone());
                view.tracking_number = Some(e.tracking_number.clone());
                view.shipped_at = Some(at);
            }
            DomainEvent::OrderDelivered(_) => {
                view.status = OrderStatus::Delivered;
                view.delivered_at = Some(at);
            }
            DomainEvent::OrderCancelled(e) => {
                view.status = OrderStatus::Cancelled;
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

/// Folds `events` into the stored documents and copies the customers' current name and email
/// into every document of a customer whose facts changed. Returns how the orders' changes
/// changed each customer's order figures.
pub async fn apply(
    tx: &mut PgConnection,
    events: &[Applicable],
    customers: &Customers,
) -> anyhow::Result<BTreeMap<Uuid, FiguresDelta>> {
    let mut ids: BTreeSet<Uuid> = events.iter().filter_map(|(_, e)| order_id(e)).collect();
    if !customers.changed.is_empty() {
        let renamed: Vec<Uuid> = customers.changed.iter().copied().collect();
        let of_renamed: Vec<Uuid> =
            sqlx::query_scalar("SELECT order_id FROM order_detail WHERE customer_id = ANY($1)")
                .persistent(false) // planned with its keys: see `projections`
                .bind(renamed)
                .fetch_all(&mut *tx)
                .await
                .context("find orders of changed customers")?;
        ids.extend(of_renamed);
    }
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let ids: Vec<Uuid> = ids.into_iter().collect();
    let mut views = load(tx, &ids).await?;
    let before: HashMap<Uuid, OrderFigures> = views
        .iter()
        .map(|(id, view)| (*id, OrderFigures::of(view)))
        .collect();
    for (envelope, event) in events {
        if let Some(id) = order_id(event)
            && let Some(view) = OrderDetail::apply(views.remove(&id), envelope, event)
        {
            views.insert(id, view);
        }
    }
    let mut deltas: BTreeMap<Uuid, FiguresDelta> = BTreeMap::new();
    for view in views.values_mut() {
        deltas.entry(view.customer_id).or_default().add(
            before.get(&view.order_id),
            &OrderFigures::of(view),
            view.created_at,
        );
        let facts = customers.facts.get(&view.customer_id);
        view.customer_name = facts.and_then(|f| f.name.clone());
        view.customer_email = facts.and_then(|f| f.email.clone());
    }
    let versions = customers
        .facts
        .iter()
        .map(|(id, f)| (*id, f.version))
        .collect();
    save(tx, views.values(), &versions).await?;
    Ok(deltas)
}

async fn load(tx: &mut PgConnection, ids: &[Uuid]) -> anyhow::Result<HashMap<Uuid, OrderDetail>> {
    let bodies: Vec<String> =
        sqlx::query_scalar("SELECT body::text FROM order_detail WHERE order_id = ANY($1)")
            .persistent(false) // planned with its keys: see `projections`
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
    customer_versions: &HashMap<Uuid, i64>,
) -> anyhow::Result<()> {
    let mut rows = Rows::default();
    for view in views {
        rows.order_id.push(view.order_id);
        rows.customer_id.push(view.customer_id);
        rows.customer_name.push(view.customer_name.clone());
        rows.customer_email.push(view.customer_email.clone());
        rows.customer_version.push(
            customer_versions
                .get(&view.customer_id)
                .copied()
                .unwrap_or(0),
        );
        rows.status.push(view.status);
        rows.currency.push(view.currency.clone());
        rows.item_count
            .push(i64::try_from(view.item_count).unwrap_or(i64::MAX));
        rows.total_cents.push(view.total_cents);
        rows.placed_at.push(view.created_at);
        rows.confirmed_at.push(view.confirmed_at);
        rows.updated_at.push(view.updated_at);
        rows.version.push(view.version);
        rows.body
            .push(serde_json::to_string(view).context("serialize order detail")?);
        rows.summary.push(
            serde_json::to_string(&OrderSummary::from(view)).context("serialize order summary")?,
        );
    }
    sqlx::query(
        "INSERT INTO order_detail (order_id, customer_id, customer_name, customer_email, customer_version, status, currency,
                                   item_count, total_cents, placed_at, confirmed_at, updated_at, version, body, summary)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[],
                              $8::bigint[], $9::bigint[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[],
                              $13::bigint[], $14::text[]::json[], $15::text[]::json[])
         ON CONFLICT (order_id) DO UPDATE SET
             customer_id = EXCLUDED.customer_id, customer_name = EXCLUDED.customer_name,
             customer_email = EXCLUDED.customer_email, customer_version = EXCLUDED.customer_version,
             status = EXCLUDED.status, currency = EXCLUDED.currency, item_count = EXCLUDED.item_count,
             total_cents = EXCLUDED.total_cents, placed_at = EXCLUDED.placed_at, confirmed_at = EXCLUDED.confirmed_at,
             updated_at = EXCLUDED.updated_at, version = EXCLUDED.version, body = EXCLUDED.body,
             summary = EXCLUDED.summary",
    )
    .bind(rows.order_id)
    .bind(rows.customer_id)
    .bind(rows.customer_name)
    .bind(rows.customer_email)
    .bind(rows.customer_version)
    .bind(rows.status)
    .bind(rows.currency)
    .bind(rows.item_count)
    .bind(rows.total_cents)
    .bind(rows.placed_at)
    .bind(rows.confirmed_at)
    .bind(rows.updated_at)
    .bind(rows.version)
    .bind(rows.body)
    .bind(rows.summary)
    .execute(tx)
    .await
    .context("save order details")?;
    Ok(())
}

/// Column arrays for one set-based upsert.
#[derive(Default)]
struct Rows {
    order_id: Vec<Uuid>,
    customer_id: Vec<Uuid>,
    customer_name: Vec<Option<String>>,
    customer_email: Vec<Option<String>>,
    customer_version: Vec<i64>,
    status: Vec<OrderStatus>,
    currency: Vec<String>,
    item_count: Vec<i64>,
    total_cents: Vec<i64>,
    placed_at: Vec<DateTime<Utc>>,
    confirmed_at: Vec<Option<DateTime<Utc>>>,
    updated_at: Vec<DateTime<Utc>>,
    version: Vec<i64>,
    body: Vec<String>,
    summary: Vec<String>,
}

/// The customer and the stored document (JSON text) of `order_id`.
pub async fn find(
    db: impl sqlx::PgExecutor<'_>,
    order_id: Uuid,
) -> Result<Option<(Uuid, String)>, sqlx::Error> {
    Ok(find_many(db, &[order_id]).await?.remove(&order_id))
}

/// The customer and the stored document (JSON text) of each of `order_ids` the view has.
pub async fn find_many(
    db: impl sqlx::PgExecutor<'_>,
    order_ids: &[Uuid],
) -> Result<HashMap<Uuid, (Uuid, String)>, sqlx::Error> {
    let rows: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
        "SELECT order_id, customer_id, body::text FROM order_detail WHERE order_id = ANY($1)",
    )
    .bind(order_ids)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(order, customer, body)| (order, (customer, body)))
        .collect())
}

//! Order commands: place a new order, or change one under its row lock.

use shared_events::{AggregateType, DomainEvent};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{
    Accepted, CommandContext, CommandError, OnConstraint, append, check_expected, envelopes,
};
use crate::domain::order::{Order, OrderRuleViolation, PlaceOrder};
use crate::domain::values::OrderId;
use crate::store;
use crate::store::event_log::EventColumns;

/// Places a new order for a registered customer, in one statement (see
/// [`super::Command::is_one_statement`]).
pub async fn place(
    conn: &mut PgConnection,
    command: &PlaceOrder,
    ctx: &CommandContext,
) -> Result<Accepted, CommandError> {
    let unknown_customer = CommandError::UnknownCustomer(command.customer_id.0);
    if !ctx.caller.acts_for(command.customer_id.0) {
        return Err(unknown_customer);
    }
    let id = OrderId(Uuid::now_v7());
    let events = Order::place(id, command, ctx.now);
    let order = Order::apply_all(None, &events)
        .ok_or_else(|| anyhow::anyhow!("placing order {id} produced no order"))?;
    // The customer's registration is checked by the order's foreign key, not by a query of its
    // own, and the events are appended by the same statement: one round trip in all.
    let envelopes = EventColumns::of(
        envelopes(0, &events, ctx).into_iter(),
        ctx.traceparent.as_deref(),
    );
    store::orders::insert(conn, &order, envelopes)
        .await
        .on_constraint(store::orders::CUSTOMER_FK, || unknown_customer)?;
    Ok(Accepted::after(id.0, 0, &events))
}

/// Loads order `id` (locking it), checks `If-Match`, lets `decide` rule, and saves the result.
pub async fn change(
    tx: &mut PgConnection,
    id: OrderId,
    expected: Option<&[i64]>,
    ctx: &CommandContext,
    decide: impl FnOnce(&Order) -> Result<Vec<DomainEvent>, OrderRuleViolation>,
) -> Result<Accepted, CommandError> {
    let order = store::orders::load_for_update(tx, id)
        .await?
        // Another customer's order is answered as if it did not exist.
        .filter(|order| ctx.caller.acts_for(order.customer_id.0))
        .ok_or(CommandError::NotFound {
            aggregate: AggregateType::Order,
            id: id.0,
        })?;
    check_expected(expected, order.version)?;
    let ctx = &ctx.after_lock();
    let events = decide(&order).map_err(|violation| CommandError::OrderRule {
        violation,
        status: order.status,
        version: order.version,
    })?;
    let after = Order::apply_all(Some(order.clone()), &events)
        .ok_or_else(|| anyhow::anyhow!("order {id} vanished while applying its events"))?;
    if !store::orders::update(
        tx,
        order.version,
        &after,
        ctx.now,
        after.lines != order.lines,
    )
    .await?
    {
        return Err(CommandError::ConcurrentModification);
    }
    append(tx, id.0, order.version, &events, ctx).await
}

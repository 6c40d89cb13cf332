//! The application layer: one function per command. Each runs one transaction that loads what
//! the command needs, lets the domain decide, and saves the new state together with the events.
//!
//! What must be atomic, and why: the state change and its events (with their outbox rows) commit
//! together or not at all. An accepted command can therefore never lose its events, and an event
//! can never describe a change that did not happen.

use chrono::{DateTime, Utc};
use shared_events::{AggregateType, DomainEvent, EventEnvelope};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::order::{Order, PlaceOrder};
use crate::domain::values::OrderId;
use crate::relay::CommitSignal;
use crate::store;

/// Facts about the request a command came in, carried into its events.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// Shared by everything one user action causes (trace id or request id).
    pub correlation_id: String,
    /// Id of this command (the request id).
    pub causation_id: String,
    /// W3C trace context to forward with the events.
    pub traceparent: Option<String>,
    /// When the command is accepted; every event of the command carries it.
    pub now: DateTime<Utc>,
}

/// A command that was accepted and committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// The aggregate it changed or created.
    pub aggregate_id: Uuid,
    /// The aggregate's version after it.
    pub version: i64,
}

/// Why a command was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Anything the caller did not cause (database down, bug); logged, answered with a bare 500.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for CommandError {
    fn from(e: sqlx::Error) -> Self {
        CommandError::Unexpected(e.into())
    }
}

/// The command service's handle on its database and relay.
#[derive(Debug, Clone)]
pub struct Commands {
    pool: PgPool,
    committed: CommitSignal,
}

impl Commands {
    /// Commands on `pool`, ringing `committed` after each commit so the relay publishes at once.
    pub fn new(pool: PgPool, committed: CommitSignal) -> Self {
        Commands { pool, committed }
    }

    /// Places a new order.
    pub async fn place_order(
        &self,
        command: PlaceOrder,
        ctx: &CommandContext,
    ) -> Result<Accepted, CommandError> {
        let id = OrderId(Uuid::now_v7());
        let events = Order::place(id, &command, ctx.now);
        let order = Order::apply_all(None, &events)
            .ok_or_else(|| anyhow::anyhow!("placing order {id} produced no order"))?;
        let envelopes = envelopes(
            AggregateType::Order,
            id.0,
            command.customer_id.0,
            0,
            &events,
            ctx,
        );

        let mut tx = self.pool.begin().await?;
        store::orders::insert(&mut tx, &order).await?;
        store::event_log::append(&mut tx, &envelopes, ctx.traceparent.as_deref()).await?;
        tx.commit().await?;
        self.committed.ring();

        Ok(Accepted {
            aggregate_id: id.0,
            version: order.version,
        })
    }
}

/// Wraps the events of one command on one aggregate, numbering them from `version_before + 1`.
fn envelopes(
    aggregate_type: AggregateType,
    aggregate_id: Uuid,
    customer_id: Uuid,
    version_before: i64,
    events: &[DomainEvent],
    ctx: &CommandContext,
) -> Vec<EventEnvelope> {
    (version_before + 1..)
        .zip(events)
        .map(|(version, event)| EventEnvelope {
            event_id: Uuid::now_v7(),
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            aggregate_type,
            aggregate_id,
            aggregate_version: version,
            partition_key: customer_id.to_string(),
            occurred_at: ctx.now,
            correlation_id: Some(ctx.correlation_id.clone()),
            causation_id: Some(ctx.causation_id.clone()),
            data: event.to_data(),
        })
        .collect()
}

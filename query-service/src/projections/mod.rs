//! Applying consumed messages to the views.
//!
//! One transaction per batch holds the view changes, the per-aggregate versions applied and the
//! next offset of each partition. Because they commit together, a message is applied exactly
//! when its offset is recorded: redeliveries after a crash or rebalance (offset below the
//! recorded one) and relay duplicates (version at or below the applied one) change nothing.
//! Each view module folds events in memory and writes with a few set-based statements, so a
//! batch costs about the same number of round trips whatever its size.
//!
//! The statements that look rows up by a batch's keys (`… = ANY($1)`) are planned at each call
//! (`persistent(false)`), with the keys and the table's size at that moment. A view table grows
//! from empty, and the plan PostgreSQL caches for a prepared statement on a connection that ran it
//! while the table was small is a sequential scan, kept until the table is next analyzed: under a
//! 64-connection command load on a fresh database it read a batch's applied versions in 56 ms on
//! average over 50 s, most of PostgreSQL's time (docs/benchmark.md, "Plans of the projector's
//! lookups"). The reads' lookups stay prepared: planning at each read would add to every
//! request's cost, and PostgreSQL plans a prepared statement again once the table's statistics
//! change, which autovacuum does as the table grows.

mod batch;
pub mod checkpoint;
pub mod continuity;
pub mod customer_profile;
pub mod daily_sales;
pub mod dead_letters;
pub mod order_detail;
pub mod order_lists;
pub mod retry;

use std::collections::BTreeMap;

use shared_events::{DecodeError, DomainEvent, EventEnvelope};
use sqlx::PgConnection;

pub use batch::{
    Applied, ApplyError, BatchSummary, Incoming, Parked, apply_batch, describe_metrics,
    park_refused,
};

use crate::changes::Changed;

/// The migrations of the read database (`migrations/query`), embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/query");

/// Decodes a message payload into its envelope and typed event.
pub fn decode(payload: &[u8]) -> Result<Applicable, DecodeError> {
    let envelope = EventEnvelope::from_slice(payload)?;
    let event = DomainEvent::from_envelope(&envelope)?;
    Ok((envelope, event))
}

/// A decoded event ready to apply.
pub type Applicable = (EventEnvelope, DomainEvent);

/// Applies events that are the next version of their aggregates to every view and records
/// their versions. The caller owns the transaction and has checked the versions.
pub async fn apply_events(tx: &mut PgConnection, events: &[Applicable]) -> anyhow::Result<Changed> {
    let customers = customer_profile::apply_customer_events(tx, events).await?;
    let figures = order_detail::apply(tx, events, &customers).await?;
    customer_profile::apply_order_figures(tx, &figures).await?;
    checkpoint::save_versions(tx, events).await?;
    // Last: a day's row is shared by every partition, so concurrent batches (lanes, replicas)
    // wait for each other from here to their commit.
    daily_sales::apply(tx, events).await?;
    let mut versions = BTreeMap::new();
    for (envelope, _) in events {
        let version = versions.entry(envelope.aggregate_id).or_default();
        *version = envelope.aggregate_version.max(*version);
    }
    Ok(Changed {
        customers: events
            .iter()
            .map(|(_, event)| event.customer_id())
            .collect(),
        versions,
    })
}

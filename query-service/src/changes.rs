//! View change notifications. The projector of whichever replica applies a batch issues
//! `NOTIFY views_changed` in the batch's transaction; every replica listens once and fans the
//! notifications out in-process to read-your-writes waiters and live streams. A replica that is
//! not consuming the partition still learns of the change, through PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The notification channel that says "views changed"; its payload lists the customers whose
/// views changed (comma-separated ids) or is `*` for "any".
pub const CHANNEL: &str = "views_changed";

/// Which views changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A batch was applied.
    Applied {
        /// Customers whose views (their profile, their orders) changed.
        customers: Arc<[Uuid]>,
        /// Aggregates and the version they are at now.
        versions: Arc<[(Uuid, i64)]>,
    },
    /// Any view may have changed (too many to list, a rebuild, or notifications were missed).
    Any,
}

/// Notification payloads stay below PostgreSQL's 8000-byte limit; a bigger change is `*`.
const MAX_PAYLOAD: usize = 7900;

impl Change {
    /// The notification payload of `changed`: comma-separated items, `<customer id>` or
    /// `<aggregate id>=<version>`; `*` when too long.
    pub fn payload(changed: &Changed) -> String {
        let items: Vec<String> = changed
            .customers
            .iter()
            .map(Uuid::to_string)
            .chain(
                changed
                    .versions
                    .iter()
                    .map(|(id, version)| format!("{id}={version}")),
            )
            .collect();
        let payload = items.join(",");
        if payload.len() > MAX_PAYLOAD {
            "*".to_owned()
        } else {
            payload
        }
    }

    /// Parses a notification payload; anything it cannot read means "any view may have changed".
    pub fn parse(payload: &str) -> Change {
        let (mut customers, mut versions) = (Vec::new(), Vec::new());
        for item in payload.split(',') {
            match item.split_once('=') {
                Some((id, version)) => match (Uuid::try_parse(id), version.parse()) {
                    (Ok(id), Ok(version)) => versions.push((id, version)),
                    _ => return Change::Any,
                },
                None => match Uuid::try_parse(item) {
                    Ok(id) => customers.push(id),
                    Err(_) => return Change::Any,
                },
            }
        }
        Change::Applied {
            customers: customers.into(),
            versions: versions.into(),
        }
    }

    /// True when views of `customer` may have changed.
    pub fn concerns(&self, customer: Uuid) -> bool {
        match self {
            Change::Applied { customers, .. } => customers.contains(&customer),
            Change::Any => true,
        }
    }

    /// Whether the views now include version `version` of `aggregate`: `Some(true)` when the
    /// change says so, `Some(false)` when it does not concern the aggregate, `None` when only
    /// the database can tell.
    pub fn includes(&self, aggregate: Uuid, version: i64) -> Option<bool> {
        match self {
            Change::Applied { versions, .. } => Some(
                versions
                    .iter()
                    .any(|(id, v)| *id == aggregate && *v >= version),
            ),
            Change::Any => None,
        }
    }
}

/// Which customers' views an application changed (for notifications and live streams).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changed {
    /// The customers (partition keys) of every applied event.
    pub customers: BTreeSet<Uuid>,
    /// The version each changed aggregate is at now.
    pub versions: BTreeMap<Uuid, i64>,
}

impl Changed {
    /// What applying `envelopes` changed: their customers (partition keys) and versions.
    pub fn of_envelopes(envelopes: &[shared_events::EventEnvelope]) -> Changed {
        let mut changed = Changed::default();
        for envelope in envelopes {
            changed
                .customers
                .insert(envelope.partition_key.parse().unwrap_or_default());
            let version = changed.versions.entry(envelope.aggregate_id).or_default();
            *version = envelope.aggregate_version.max(*version);
        }
        changed
    }

    /// Adds what `other` changed.
    pub fn extend(&mut self, other: Changed) {
        self.customers.extend(other.customers);
        for (id, version) in other.versions {
            let current = self.versions.entry(id).or_default();
            *current = (*current).max(version);
        }
    }
}

/// Tells every replica's waiters and live streams which customers' views changed. Inside the
/// transaction, so it is delivered exactly when the change becomes visible.
pub async fn notify(tx: &mut PgConnection, changed: &Changed) -> anyhow::Result<()> {
    if changed.customers.is_empty() && changed.versions.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(Change::payload(changed))
        .execute(tx)
        .await
        .context("notify view changes")?;
    Ok(())
}

/// Tells every replica that any view may have changed (after a rebuild's swap).
pub async fn notify_all(tx: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::query("SELECT pg_notify($1, '*')")
        .bind(CHANNEL)
        .execute(tx)
        .await
        .context("notify view changes")?;
    Ok(())
}

/// The in-process fan-out of view changes. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ViewChanges(broadcast::Sender<Change>);

impl Default for ViewChanges {
    fn default() -> Self {
        ViewChanges(broadcast::channel(1024).0)
    }
}

impl ViewChanges {
    /// Receives every change from now on. A receiver that falls behind gets `Lagged`, which
    /// callers treat as [`Change::Any`].
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.0.subscribe()
    }

    /// Listens on PostgreSQL until `shutdown`, reconnecting with backoff. After a reconnect it
    /// announces [`Change::Any`], since notifications may have been missed meanwhile.
    pub async fn listen(self, pool: PgPool, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            let listening = async {
                let mut listener = PgListener::connect_with(&pool).await?;
                listener.listen(CHANNEL).await?;
                let _ = self.0.send(Change::Any);
                loop {
                    let notification = listener.recv().await?;
                    let _ = self.0.send(Change::parse(notification.payload()));
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                result = listening => {
                    let error: sqlx::Error = match result { Err(e) => e, Ok(()) => continue };
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "view change listener lost its connection");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

/// Waits for the next change from `receiver`; a lagged receiver counts as [`Change::Any`].
/// `None` when the sender is gone.
pub async fn next(receiver: &mut broadcast::Receiver<Change>) -> Option<Change> {
    match receiver.recv().await {
        Ok(change) => Some(change),
        Err(broadcast::error::RecvError::Lagged(_)) => Some(Change::Any),
        Err(broadcast::error::RecvError::Closed) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_customers_and_versions_or_say_anything() {
        let (customer, order) = (Uuid::now_v7(), Uuid::now_v7());
        let changed = Changed {
            customers: [customer].into(),
            versions: [(order, 3)].into(),
        };
        let change = Change::parse(&Change::payload(&changed));
        assert!(change.concerns(customer) && !change.concerns(order));
        assert_eq!(change.includes(order, 3), Some(true));
        assert_eq!(change.includes(order, 4), Some(false));
        assert_eq!(change.includes(customer, 1), Some(false));
        assert_eq!(Change::parse("*"), Change::Any);
        assert_eq!(Change::parse("garbage"), Change::Any);
        assert_eq!(Change::Any.includes(order, 1), None);
        let many = Changed {
            customers: (0..300).map(|_| Uuid::now_v7()).collect(),
            versions: Default::default(),
        };
        assert_eq!(Change::payload(&many), "*");
    }
}

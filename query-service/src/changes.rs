//! View change notifications. The projector of whichever replica applies a batch issues
//! `NOTIFY views_changed` in the batch's transaction; every replica listens once and fans the
//! notifications out in-process to read-your-writes waiters and live streams. A replica that is
//! not consuming the partition still learns of the change, through PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::projections::CHANNEL;

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
    pub fn payload(changed: &crate::projections::Changed) -> String {
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
        let changed = crate::projections::Changed {
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
        let many = crate::projections::Changed {
            customers: (0..300).map(|_| Uuid::now_v7()).collect(),
            versions: Default::default(),
        };
        assert_eq!(Change::payload(&many), "*");
    }
}

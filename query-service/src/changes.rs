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
    /// Views of these customers (and their orders) changed.
    Customers(Arc<[Uuid]>),
    /// Any view may have changed (too many to list, a rebuild, or notifications were missed).
    Any,
}

impl Change {
    /// Parses a notification payload: comma-separated customer ids, or `*`.
    pub fn parse(payload: &str) -> Change {
        let ids: Option<Vec<Uuid>> = payload
            .split(',')
            .map(|id| Uuid::try_parse(id.trim()).ok())
            .collect();
        match ids {
            Some(ids) if !ids.is_empty() => Change::Customers(ids.into()),
            _ => Change::Any,
        }
    }

    /// True when views of `customer` may have changed.
    pub fn concerns(&self, customer: Uuid) -> bool {
        match self {
            Change::Customers(ids) => ids.contains(&customer),
            Change::Any => true,
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
    fn payloads_name_customers_or_anything() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let change = Change::parse(&format!("{a},{b}"));
        assert!(change.concerns(a) && change.concerns(b) && !change.concerns(Uuid::now_v7()));
        assert_eq!(Change::parse("*"), Change::Any);
        assert_eq!(Change::parse(""), Change::Any);
        assert_eq!(Change::parse("garbage"), Change::Any);
    }
}

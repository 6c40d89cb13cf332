//! Stream tickets: how a browser opens a live view. `EventSource` cannot send `Authorization`,
//! and a bearer token in a URL would sit in logs and browser history for as long as it is
//! valid; so an authenticated caller exchanges its token for a ticket that opens one stream, as
//! that caller, for a short time (`POST /stream-tickets`, see `http::streams`).
//!
//! A ticket may open its stream any number of times until it expires, so `EventSource`'s own
//! reconnects work; an open stream is not cut when its ticket expires. Tickets are stored in the
//! read database (only their SHA-256), so any replica redeems what another issued.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::auth::{Caller, Redeemed, Tickets};
use platform::problem::Problem;
use sqlx::PgPool;
use uuid::Uuid;

/// The tickets of one read database.
#[derive(Debug, Clone)]
pub struct TicketStore {
    pool: PgPool,
    lifetime: Duration,
}

/// A ticket as issued: the secret and when it stops opening its stream.
#[derive(Debug)]
pub struct Issued {
    /// The ticket, to send as `?ticket=`.
    pub ticket: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

impl TicketStore {
    /// Tickets in `pool`'s database, each valid for `lifetime`.
    pub fn new(pool: PgPool, lifetime: Duration) -> TicketStore {
        TicketStore { pool, lifetime }
    }

    /// A new ticket opening `stream` as `caller` (counted against `subject`). Forgets tickets
    /// that expired a while ago, so the table stays the size of the last minutes' tickets.
    pub async fn issue(
        &self,
        caller: Caller,
        subject: &str,
        stream: &str,
    ) -> anyhow::Result<Issued> {
        let ticket = platform::auth::new_secret()?;
        let customer = match caller {
            Caller::Admin => None,
            Caller::Customer(id) => Some(id),
        };
        let lifetime_ms = i64::try_from(self.lifetime.as_millis()).unwrap_or(i64::MAX);
        let (expires_at,): (DateTime<Utc>,) = sqlx::query_as(
            "WITH forgotten AS (DELETE FROM stream_tickets WHERE expires_at < now() - interval '1 minute')
             INSERT INTO stream_tickets (fingerprint, stream, customer_id, subject, expires_at)
             VALUES ($1, $2, $3, $4, now() + $5 * interval '1 millisecond')
             RETURNING expires_at",
        )
        .bind(platform::auth::fingerprint(&ticket).as_slice())
        .bind(stream)
        .bind(customer)
        .bind(subject)
        .bind(lifetime_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(Issued { ticket, expires_at })
    }

    async fn find(&self, ticket: &str, stream: &str) -> Result<Redeemed, sqlx::Error> {
        let row: Option<(Option<Uuid>, String)> = sqlx::query_as(
            "SELECT customer_id, subject FROM stream_tickets
             WHERE fingerprint = $1 AND stream = $2 AND expires_at > now()",
        )
        .bind(platform::auth::fingerprint(ticket).as_slice())
        .bind(stream)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(customer, subject)| {
            let caller = customer.map_or(Caller::Admin, Caller::Customer);
            (caller, subject)
        }))
    }
}

impl Tickets for TicketStore {
    fn redeem<'a>(
        &'a self,
        ticket: &'a str,
        path: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Redeemed, Problem>> + Send + 'a>> {
        Box::pin(async move { self.find(ticket, path).await.map_err(Problem::from) })
    }
}

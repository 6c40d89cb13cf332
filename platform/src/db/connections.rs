//! A pool for the hot paths (the query service's view reads, the command service's command
//! transactions). sqlx's pool pings every connection it takes back (a round trip, on a task of
//! its own) in case it was left inside a transaction, which for a one-statement read doubles
//! the round trips. This pool hands a connection back as it is, and only when its user settles
//! it with a success (a read done, a transaction committed or rolled back); a connection whose
//! use failed or was cancelled is closed instead, and PostgreSQL rolls back whatever it had
//! open. A connection idle for a second is pinged before it is used again, as after a server
//! restart it may be closed.
//!
//! Not for anything that leaves session state behind (`SET`, `LISTEN`, prepared transactions).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use sqlx::postgres::{PgConnectOptions, PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Connection, Either, Execute, Executor, PgConnection, Postgres};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{DbSettings, IDLE_CHECK_AFTER};

/// A pool of connections settled by their users; cheap to clone. `&Connections` is a sqlx
/// executor for one-statement reads.
#[derive(Debug, Clone)]
pub struct Connections(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    options: PgConnectOptions,
    idle: Mutex<Vec<(PgConnection, Instant)>>,
    permits: Arc<Semaphore>,
    acquire_timeout: Duration,
}

/// A connection of a [`Connections`]: handed back by [`Lent::settle`] when the read
/// succeeded, closed when it failed or was dropped unsettled (cancelled).
#[derive(Debug)]
pub struct Lent {
    connection: Option<PgConnection>,
    pool: Connections,
    _permit: OwnedSemaphorePermit,
}

impl Connections {
    /// At most `settings.max_connections` connections; `settings.min_connections` of them are
    /// opened now (as sqlx's pool does, so requests under load do not wait for handshakes), the
    /// rest as reads need them.
    pub async fn connect(settings: &DbSettings) -> anyhow::Result<Connections> {
        let options = settings.connect_options()?;
        let mut idle = Vec::new();
        for _ in 0..settings.min_connections.min(settings.max_connections) {
            let connection = PgConnection::connect_with(&options)
                .await
                .with_context(|| format!("open a connection to {}", settings.url))?;
            idle.push((connection, Instant::now()));
        }
        Ok(Connections(Arc::new(Shared {
            options,
            idle: Mutex::new(idle),
            permits: Arc::new(Semaphore::new(settings.max_connections.max(1) as usize)),
            acquire_timeout: settings.acquire_timeout,
        })))
    }

    /// A connection: an idle one (pinged first when idle for a while), or a new one. Waits at
    /// most the acquire timeout for one to come free (then [`sqlx::Error::PoolTimedOut`]).
    pub async fn acquire(&self) -> Result<Lent, sqlx::Error> {
        let shared = &self.0;
        let permit = tokio::time::timeout(
            shared.acquire_timeout,
            shared.permits.clone().acquire_owned(),
        )
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
        .map_err(|_| sqlx::Error::PoolClosed)?;
        loop {
            let idle = shared.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some((mut connection, since)) = idle else {
                break;
            };
            if since.elapsed() < IDLE_CHECK_AFTER || connection.ping().await.is_ok() {
                return Ok(self.lend(connection, permit));
            }
        }
        let connection = PgConnection::connect_with(&shared.options).await?;
        Ok(self.lend(connection, permit))
    }

    fn lend(&self, connection: PgConnection, permit: OwnedSemaphorePermit) -> Lent {
        Lent {
            connection: Some(connection),
            pool: self.clone(),
            _permit: permit,
        }
    }
}

impl Lent {
    /// Hands the connection back if `result` is a success, closes it otherwise; returns
    /// `result`. For a connection outside any transaction whatever the result.
    pub fn settle<T, E>(self, result: Result<T, E>) -> Result<T, E> {
        if result.is_ok() {
            self.release();
        }
        result
    }

    /// Hands the connection back: its user ended every transaction it began.
    pub fn release(mut self) {
        if let Some(connection) = self.connection.take() {
            let mut idle = self.pool.0.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.push((connection, Instant::now()));
        }
    }

    /// The connection, for statements and transactions.
    pub fn connection(&mut self) -> &mut PgConnection {
        self.connection
            .as_mut()
            .expect("a lent connection is only taken by settle, which consumes it")
    }
}

impl<'p> Executor<'p> for &'_ Connections {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
    where
        E: 'q + Execute<'q, Postgres>,
    {
        let pool = self.clone();
        // The rows are collected before the stream yields them, so the connection is settled
        // in one place; the views' reads are bounded pages.
        let rows = async move {
            let mut lent = pool.acquire().await?;
            let rows = lent.connection().fetch_many(query).try_collect().await;
            lent.settle(rows)
        };
        stream::once(rows)
            .map_ok(|rows: Vec<_>| stream::iter(rows.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        E: 'q + Execute<'q, Postgres>,
    {
        let pool = self.clone();
        Box::pin(async move {
            let mut lent = pool.acquire().await?;
            let row = lent.connection().fetch_optional(query).await;
            lent.settle(row)
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement<'q>, sqlx::Error>> {
        let pool = self.clone();
        Box::pin(async move {
            let mut lent = pool.acquire().await?;
            let statement = lent.connection().prepare_with(sql, parameters).await;
            lent.settle(statement)
        })
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<sqlx::Describe<Postgres>, sqlx::Error>> {
        let pool = self.clone();
        Box::pin(async move {
            let mut lent = pool.acquire().await?;
            let description = lent.connection().describe(sql).await;
            lent.settle(description)
        })
    }
}

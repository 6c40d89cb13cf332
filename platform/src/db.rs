//! Connecting to PostgreSQL: wait for the server with backoff, create the service's database if
//! it is missing, open the pool and apply the service's migrations.
//!
//! Every connection gets a `statement_timeout`, so no query can hang a request forever.

pub mod connections;

use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::causes::Causes;
use crate::config::{self, ConfigError, DatabaseUrl};

/// Connections of the pool for what is not a service's hot path.
pub const OPERATIONS_CONNECTIONS: u32 = 4;

/// A pooled connection idle at least this long is pinged before it is handed out.
const IDLE_CHECK_AFTER: Duration = Duration::from_secs(1);

/// How a service connects to its database.
#[derive(Debug, Clone)]
pub struct DbSettings {
    /// The service's database.
    pub url: DatabaseUrl,
    /// Upper bound of the connection pool.
    pub max_connections: u32,
    /// Connections the pool opens at start and keeps open (at most `max_connections`). Opening
    /// one costs a TLS handshake and session set-up; a pool that grows under load does that
    /// work in the middle of requests, on the threads that serve them.
    pub min_connections: u32,
    /// Longest any single statement may run before PostgreSQL cancels it.
    pub statement_timeout: Duration,
    /// Longest a request waits for a free pooled connection.
    pub acquire_timeout: Duration,
    /// The schemas unqualified names resolve in, when not the server's default.
    pub search_path: Option<String>,
    /// Whether a commit waits for its WAL to reach the disk (PostgreSQL's `synchronous_commit`).
    /// Only for data that can be derived again: a server crash may lose the last few hundred
    /// milliseconds of commits, whole transactions, never part of one.
    pub synchronous_commit: bool,
}

impl DbSettings {
    /// Reads `{prefix}DATABASE_URL`, `DB_MAX_CONNECTIONS`, `DB_MIN_CONNECTIONS` (default: the
    /// maximum, a fixed-size pool), `DB_STATEMENT_TIMEOUT_MS` and `DB_ACQUIRE_TIMEOUT_MS`.
    pub fn from_env(url_var: &str, default_url: &str) -> Result<Self, ConfigError> {
        let default_url: DatabaseUrl = default_url.parse().map_err(|reason| ConfigError {
            name: url_var.to_owned(),
            reason,
        })?;
        let max_connections = config::var("DB_MAX_CONNECTIONS", 16)?;
        Ok(DbSettings {
            url: config::var(url_var, default_url)?,
            max_connections,
            min_connections: config::var("DB_MIN_CONNECTIONS", max_connections)?,
            statement_timeout: Duration::from_millis(config::var(
                "DB_STATEMENT_TIMEOUT_MS",
                5_000,
            )?),
            acquire_timeout: Duration::from_millis(config::var("DB_ACQUIRE_TIMEOUT_MS", 3_000)?),
            search_path: None,
            synchronous_commit: true,
        })
    }

    /// The same database with at most [`OPERATIONS_CONNECTIONS`] connections, one kept open:
    /// the sqlx pool for what is not a service's hot path (readiness, the relay, `/admin`), when
    /// the hot path has a [`connections::Connections`] pool of its own.
    pub fn for_operations(&self) -> DbSettings {
        DbSettings {
            max_connections: self.max_connections.min(OPERATIONS_CONNECTIONS),
            min_connections: 1,
            ..self.clone()
        }
    }

    /// Connection options with the statement timeout (and commit mode) applied.
    pub fn connect_options(&self) -> anyhow::Result<PgConnectOptions> {
        let options: PgConnectOptions = self
            .url
            .expose()
            .parse()
            .with_context(|| format!("parse database URL {}", self.url))?;
        let timeout = format!("{}ms", self.statement_timeout.as_millis());
        let options = options.options([("statement_timeout", timeout.as_str())]);
        let options = match self.synchronous_commit {
            true => options,
            false => options.options([("synchronous_commit", "off")]),
        };
        Ok(match &self.search_path {
            Some(path) => options.options([("search_path", path.as_str())]),
            None => options,
        })
    }
}

/// Whether `error` says the database could not be reached: no connection came free in time,
/// the pool is closed, the connection failed, or the server is shutting down or restarting
/// (SQLSTATE classes 08 and 57P). A caller answers those with 503, not 500.
pub fn unreachable(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| match cause.downcast_ref::<sqlx::Error>() {
            Some(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)) => true,
            Some(sqlx::Error::Database(error)) => error
                .code()
                .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
            _ => false,
        })
}

/// Waits until the server answers, creates the database when missing, opens the pool and
/// migrates. Retries with backoff (logging each failure) until it succeeds or `shutdown` fires.
pub async fn connect_and_migrate(
    settings: &DbSettings,
    migrator: &Migrator,
    shutdown: &CancellationToken,
) -> anyhow::Result<PgPool> {
    let mut backoff = Duration::from_millis(250);
    loop {
        match try_connect_and_migrate(settings, migrator).await {
            Ok(pool) => return Ok(pool),
            Err(error) => {
                tracing::warn!(database = %settings.url, error = %Causes::from(&error), retry_in_ms = backoff.as_millis() as u64, "database not ready");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => anyhow::bail!("shut down while waiting for the database {}", settings.url),
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn try_connect_and_migrate(
    settings: &DbSettings,
    migrator: &Migrator,
) -> anyhow::Result<PgPool> {
    create_database_if_missing(settings).await?;
    let pool = connect(settings).await?;
    migrator.run(&pool).await.context("apply migrations")?;
    Ok(pool)
}

/// Opens a pool on an existing, migrated database; it opens its minimum of connections in the
/// background.
pub async fn connect(settings: &DbSettings) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections.min(settings.max_connections))
        .acquire_timeout(settings.acquire_timeout)
        // sqlx pings every connection it hands out, a round trip per request as dear as the
        // query itself; only a connection that sat idle for a while (and may have been closed
        // by a restarted server or a proxy) is worth that check.
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_CHECK_AFTER {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_with(settings.connect_options()?)
        .await
        .with_context(|| format!("open connection pool to {}", settings.url))
}

/// Creates the database named in the URL through the server's `postgres` database, so that a
/// fresh server (a developer's, a test's) needs no manual step. Where the role may not create
/// databases, the database must exist already and this does nothing.
async fn create_database_if_missing(settings: &DbSettings) -> anyhow::Result<()> {
    let Some(name) = settings.url.database() else {
        return Ok(());
    };
    let options = settings.connect_options()?;
    if let Ok(connection) = PgConnection::connect_with(&options).await {
        connection.close().await.ok();
        return Ok(());
    }
    let admin_options: PgConnectOptions = settings
        .url
        .with_database("postgres")
        .expose()
        .parse()
        .context("parse maintenance database URL")?;
    let mut admin = PgConnection::connect_with(&admin_options)
        .await
        .with_context(|| format!("connect to {}", settings.url.with_database("postgres")))?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        // Identifiers cannot be bound as parameters; quoting doubles any embedded quote.
        let statement = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        match sqlx::query(&statement).execute(&mut admin).await {
            Ok(_) => tracing::info!(database = name, "created database"),
            // Another replica created it at the same moment.
            Err(sqlx::Error::Database(e))
                if matches!(e.code().as_deref(), Some("42P04" | "23505")) => {}
            Err(e) => return Err(e).with_context(|| format!("create database {name}")),
        }
    }
    admin.close().await.ok();
    Ok(())
}

/// True when the pool can run a trivial query within a second.
pub async fn is_reachable(pool: &PgPool) -> bool {
    let ping = sqlx::query("SELECT 1").execute(pool);
    matches!(
        tokio::time::timeout(Duration::from_secs(1), ping).await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
mod tests {
    use super::unreachable;
    use anyhow::Context;

    #[test]
    fn an_unreachable_database_is_told_apart_from_other_failures() {
        let timed_out = Err::<(), _>(sqlx::Error::PoolTimedOut).context("read the order");
        assert!(unreachable(&timed_out.unwrap_err()));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(unreachable(&sqlx::Error::Io(refused).into()));
        assert!(!unreachable(&sqlx::Error::RowNotFound.into()));
        assert!(!unreachable(&anyhow::anyhow!("no sqlx error at all")));
    }
}

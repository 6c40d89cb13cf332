//! Building and running the command service: connect, migrate, create the topic, bind, then
//! serve HTTP beside the relay until shutdown.

use std::time::Duration;

use anyhow::Context;
use platform::causes::Causes;
use platform::db::connections::Connections;
use platform::shutdown::{Tasks, supervise};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::commands::Commands;
use crate::config::Config;
use crate::http::{self, AppState, Resources};
use crate::relay::{self, CommitSignal, Relay};
use crate::store::MIGRATOR;

/// How long shutdown waits for in-flight requests and the relay's batch.
const DRAIN: Duration = Duration::from_secs(10);

/// A command service ready to run: its database is migrated, its topic exists and its port is
/// bound.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    connections: platform::serve::ConnectionLimits,
    relay: Relay,
    notifier: (sqlx::PgPool, CommitSignal),
    shutdown: CancellationToken,
}

impl Application {
    /// Connects to the database and the broker (waiting for both with backoff), migrates,
    /// creates the topic if missing and binds the HTTP port. `shutdown` stops everything.
    pub async fn build(config: Config, shutdown: CancellationToken) -> anyhow::Result<Self> {
        relay::describe_metrics();
        // Commands and the strict reads have a pool of their own; this one serves the relay and
        // readiness.
        let operations = config.db.for_operations();
        let pool = platform::db::connect_and_migrate(&operations, &MIGRATOR, &shutdown).await?;
        let connections = Connections::connect(&config.db).await?;
        let topic = &config.kafka.topic;
        platform::kafka::wait_for_topic(
            &config.kafka,
            topic,
            config.topic_partitions,
            config.topic_replication,
            &shutdown,
        )
        .await?;
        let producer = relay::producer(&config.kafka, config.producer_linger)?;
        let (kafka, linger) = (config.kafka.clone(), config.producer_linger);
        let committed = CommitSignal::default();
        let state = AppState::new(Resources {
            commands: Commands::new(connections, committed.clone(), config.idempotency_ttl),
            pool: pool.clone(),
            producer,
            topic: config.kafka.topic.clone(),
        });
        let listener = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("bind {}", config.http_addr))?;
        Ok(Application {
            listener,
            router: http::router(state, &config.edge),
            connections: config.edge.connections.clone(),
            relay: Relay::new(
                pool.clone(),
                move || relay::producer(&kafka, linger),
                config.kafka.topic.clone(),
                config.relay.clone(),
                committed.clone(),
            )?,
            notifier: (pool, committed),
            shutdown,
        })
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// Serves until `shutdown` fires: HTTP stops accepting and finishes in-flight requests, the
    /// relay finishes its batch. Returns an error naming the part that failed, if one did.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Application {
            listener,
            router,
            connections,
            relay,
            notifier: (pool, committed),
            shutdown,
        } = self;
        tracing::info!(addr = %listener.local_addr()?, "command service listening");
        let server = platform::serve::serve(listener, router, connections, shutdown.clone());
        let relay_task = relay.run(shutdown.clone());
        let notifier_task = relay::notify_commits(pool.clone(), committed, shutdown.clone());
        let outbox_task = relay::observe_outbox(pool.clone(), shutdown.clone());
        let janitor_task = forget_expired_idempotency_keys(pool, shutdown.clone());
        let tasks = Tasks::default()
            .fallible(
                "HTTP server",
                async move { server.await.context("serve HTTP") },
            )
            .until_shutdown("relay", relay_task)
            .until_shutdown("relay notifier", notifier_task)
            .until_shutdown("outbox gauge", outbox_task)
            .until_shutdown("idempotency janitor", janitor_task);
        let outcome = supervise(shutdown, tasks, DRAIN).await;
        tracing::info!("command service stopped");
        outcome
    }
}

/// Deletes expired idempotency records every minute, in small batches so it never holds locks
/// for long. Expired records are already ignored by lookups; this only reclaims space.
async fn forget_expired_idempotency_keys(pool: sqlx::PgPool, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        loop {
            match crate::store::idempotency::delete_expired(&pool, 1_000).await {
                Ok(1_000) => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(
                        error = %Causes::from(&error),
                        "could not delete expired idempotency keys"
                    );
                    break;
                }
            }
        }
    }
}

/// `command-service migrate`: applies the migrations and returns.
pub async fn migrate(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    platform::db::connect_and_migrate(&config.db, &MIGRATOR, &shutdown).await?;
    tracing::info!("write database migrated");
    Ok(())
}

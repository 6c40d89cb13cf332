//! Building and running the query service: connect, migrate, join the consumer group, bind,
//! then serve HTTP beside the projector until shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use platform::shutdown::{Task, supervise};
use rdkafka::consumer::StreamConsumer;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::consumer::{self, ConsumerSettings};
use crate::http::{self, AppState};
use crate::projections::MIGRATOR;

/// How long shutdown waits for in-flight requests and the projector's batch.
const DRAIN: Duration = Duration::from_secs(10);

/// A query service ready to run: its database is migrated and its port is bound.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    consumer: Arc<StreamConsumer>,
    pool: PgPool,
    topic: String,
    settings: ConsumerSettings,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects to the database (waiting with backoff), migrates, subscribes to the topic and
    /// binds the HTTP port. `shutdown` stops everything.
    pub async fn build(config: Config, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let pool = platform::db::connect_and_migrate(&config.db, &MIGRATOR, &shutdown).await?;
        let consumer = Arc::new(consumer::subscribe(&config.kafka, &config.consumer)?);
        let state = AppState {
            pool: pool.clone(),
            consumer: consumer.clone(),
            topic: config.kafka.topic.clone(),
        };
        let listener = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("bind {}", config.http_addr))?;
        Ok(Application {
            listener,
            router: http::router(state),
            consumer,
            pool,
            topic: config.kafka.topic,
            settings: config.consumer,
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
    /// projector finishes and commits its batch. Returns an error naming the part that failed,
    /// if one did.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Application {
            listener,
            router,
            consumer,
            pool,
            topic,
            settings,
            shutdown,
        } = self;
        tracing::info!(addr = %listener.local_addr()?, "query service listening");
        let server = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let projector = consumer::run(consumer, pool, topic, settings, shutdown.clone());
        let tasks: Vec<Task> = vec![
            (
                "HTTP server",
                Box::pin(async move { server.await.context("serve HTTP") }),
            ),
            (
                "projector",
                Box::pin(async move {
                    projector.await;
                    Ok(())
                }),
            ),
        ];
        let outcome = supervise(shutdown, tasks, DRAIN).await;
        tracing::info!("query service stopped");
        outcome
    }
}

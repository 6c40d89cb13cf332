//! Building and running the query service: connect, migrate, join the consumer group, bind,
//! then serve HTTP beside the projector and the view change listener until shutdown. Also the
//! one-shot operations behind the CLI: `migrate` and `rebuild`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use platform::db::connections::Connections;
use platform::shutdown::{Tasks, supervise};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::changes::ViewChanges;
use crate::config::Config;
use crate::consumer::progress::Progress;
use crate::consumer::rebuild::Rebuild;
use crate::consumer::{self, Projector, ProjectorConsumer};
use crate::http::{self, AppState, OpenStreams, Resources, Views};
use crate::projections::{MIGRATOR, checkpoint};
use crate::tickets::TicketStore;

/// How long shutdown waits for in-flight requests and the projector's batch.
const DRAIN: Duration = Duration::from_secs(10);

/// A query service ready to run: its database is migrated and its port is bound.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    connections: platform::serve::ConnectionLimits,
    /// The pool the HTTP handlers read from; the view change listener takes a connection of it.
    pool: PgPool,
    projector: Projector,
    consumer: Arc<ProjectorConsumer>,
    changes: ViewChanges,
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
    /// Connects to the database and the broker (waiting for both with backoff), migrates,
    /// subscribes to the topic and binds the HTTP port. `shutdown` stops everything.
    pub async fn build(config: Config, shutdown: CancellationToken) -> anyhow::Result<Self> {
        crate::projections::describe_metrics();
        crate::http::consistency::describe_metrics();
        // The views' reads have a pool of their own; this one serves the rest (readiness,
        // tickets, the back office's operations) and needs few connections.
        let operations = config.db.for_operations();
        let pool = platform::db::connect_and_migrate(&operations, &MIGRATOR, &shutdown).await?;
        let reads = Connections::connect(&config.db).await?;
        platform::kafka::wait_for_topic(
            &config.kafka,
            &config.consumer.dead_letter_topic,
            1,
            config.topic_replication,
            &shutdown,
        )
        .await?;
        let progress = Progress::default();
        let mut conn = pool.acquire().await?;
        let recorded = checkpoint::offsets(&mut conn, &config.kafka.topic).await?;
        drop(conn);
        progress.set_recorded(
            recorded
                .into_iter()
                .map(|(partition, next, _)| (partition, next)),
        );
        let consumer = Arc::new(consumer::subscribe(
            &config.kafka,
            &config.consumer,
            progress.clone(),
        )?);
        let changes = ViewChanges::default();
        let state = AppState::new(Resources {
            pool: pool.clone(),
            views: Views::start(&reads),
            reads,
            consumer: consumer.clone(),
            topic: config.kafka.topic.clone(),
            changes: changes.clone(),
            progress: progress.clone(),
            rebuild: rebuild(&config, pool.clone()),
            consistency_wait: config.consistency_wait,
            shutdown: shutdown.clone(),
            ready_max_lag: config.ready_max_lag,
            tickets: TicketStore::new(pool.clone(), config.stream_ticket_lifetime),
            streams: OpenStreams::new(config.streams_per_client),
        });
        let listener = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("bind {}", config.http_addr))?;
        let projector = Projector {
            pool: projector_pool(&config).await?,
            topic: config.kafka.topic.clone(),
            dead_letters: Some(
                config
                    .kafka
                    .client_config()
                    .create()
                    .context("create the dead-letter producer")?,
            ),
            settings: config.consumer,
            progress,
            notify: true,
        };
        Ok(Application {
            listener,
            router: http::router(state, &config.edge),
            connections: config.edge.connections.clone(),
            pool,
            projector,
            consumer,
            changes,
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

    /// Serves until `shutdown` fires: HTTP stops accepting and finishes in-flight requests (live
    /// streams end), the projector finishes and commits its batch. Returns an error naming the
    /// part that failed, if one did.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Application {
            listener,
            router,
            connections,
            pool,
            projector,
            consumer,
            changes,
            shutdown,
        } = self;
        tracing::info!(addr = %listener.local_addr()?, "query service listening");
        let server = platform::serve::serve(listener, router, connections, shutdown.clone());
        let listening = changes.listen(pool, shutdown.clone());
        let projecting = projector.run(consumer, shutdown.clone());
        let tasks = Tasks::default()
            .fallible(
                "HTTP server",
                async move { server.await.context("serve HTTP") },
            )
            .until_shutdown("projector", projecting)
            .until_shutdown("view change listener", listening);
        let outcome = supervise(shutdown, tasks, DRAIN).await;
        tracing::info!("query service stopped");
        outcome
    }
}

/// The projector's own connections (one per lane, and one for the offsets refresher), opened
/// at start: reads cannot starve the projector of connections, and the large messages of its
/// batches (up to 1,000 events) grow the buffers of these connections only, not of every
/// connection in the serving pool (a 16-connection pool that all took turns carrying batches
/// added 12 MiB to the benchmark's peak RSS).
///
/// Its commits do not wait for the WAL flush: the views and the offsets they were applied up
/// to commit in one transaction, so a server crash that loses the last batches loses both
/// together, and the projector reads those messages again from the topic (`consumer::holes`).
/// Waiting would add a disk flush to every batch, to the catch-up's time and to every
/// command's way to the views, and protect nothing the topic does not hold.
async fn projector_pool(config: &Config) -> anyhow::Result<PgPool> {
    // A connection per lane, and one for the position refresher.
    let connections = u32::try_from(config.consumer.lanes + 1)?;
    platform::db::connect(&platform::db::DbSettings {
        max_connections: connections,
        min_connections: connections,
        synchronous_commit: false,
        ..config.db.clone()
    })
    .await
}

fn rebuild(config: &Config, pool: PgPool) -> Rebuild {
    Rebuild {
        pool,
        db: config.db.clone(),
        kafka: config.kafka.clone(),
        settings: config.consumer.clone(),
    }
}

/// `query-service migrate`: applies the migrations and returns.
pub async fn migrate(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    platform::db::connect_and_migrate(&config.db, &MIGRATOR, &shutdown).await?;
    tracing::info!("read database migrated");
    Ok(())
}

/// `query-service rebuild`: rebuilds the views from the start of the topic and swaps them in,
/// beside running query services, then returns.
pub async fn rebuild_views(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let pool = platform::db::connect_and_migrate(&config.db, &MIGRATOR, &shutdown).await?;
    let rebuild = rebuild(&config, pool);
    let id = rebuild.start().await?;
    rebuild.run(id, shutdown).await
}

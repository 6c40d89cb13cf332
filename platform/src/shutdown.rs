//! Turning SIGTERM and Ctrl-C into a cancellation every task of a service observes.

use tokio_util::sync::CancellationToken;

use crate::causes::Causes;

/// Cancels `token` on SIGTERM (Kubernetes, docker stop) or Ctrl-C. Spawned once by `main`.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => tracing::info!("Ctrl-C received, shutting down"),
            () = terminate => tracing::info!("SIGTERM received, shutting down"),
        }
        token.cancel();
    });
}

/// A long-running part of a service, named for the log.
type Task = (
    &'static str,
    std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>,
);

/// The long-running parts of a service (the HTTP server, the relay, the projector), for
/// [`supervise`].
#[derive(Default)]
pub struct Tasks(Vec<Task>);

impl std::fmt::Debug for Tasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

impl Tasks {
    /// Adds a part that can fail (the HTTP server): its error stops the service.
    pub fn fallible(
        mut self,
        name: &'static str,
        task: impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    ) -> Self {
        self.0.push((name, Box::pin(task)));
        self
    }

    /// Adds a part that retries its own failures and returns only once shutdown began; if it
    /// returns before, the service stops.
    pub fn until_shutdown(
        self,
        name: &'static str,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Self {
        self.fallible(name, async move {
            task.await;
            Ok(())
        })
    }
}

/// Runs `tasks` until `shutdown` fires or one of them ends on its own, which is a failure that
/// stops the others (its name and cause are in the error). Then gives every task up to `drain` to
/// finish what it is doing (in-flight requests, the batch in progress) before abandoning it.
pub async fn supervise(
    shutdown: CancellationToken,
    tasks: Tasks,
    drain: std::time::Duration,
) -> anyhow::Result<()> {
    let mut running = tokio::task::JoinSet::new();
    for (name, task) in tasks.0 {
        running.spawn(async move { (name, task.await) });
    }
    let failure = tokio::select! {
        biased;
        () = shutdown.cancelled() => None,
        // A task that ended because shutdown began is not a failure.
        Some(ended) = running.join_next(), if !shutdown.is_cancelled() => Some(match ended {
            Ok((name, Ok(()))) => anyhow::anyhow!("{name} ended unexpectedly"),
            Ok((name, Err(error))) => error.context(format!("{name} failed")),
            Err(join_error) => anyhow::anyhow!("a task panicked: {join_error}"),
        }),
    };
    if let Some(error) = &failure {
        tracing::error!(error = %Causes::from(error), "stopping the service");
    }
    shutdown.cancel();
    let drained = tokio::time::timeout(drain, async {
        while let Some(ended) = running.join_next().await {
            match ended {
                Ok((name, Err(error))) => tracing::warn!(
                    task = name,
                    error = %Causes::from(&error),
                    "task failed while stopping"
                ),
                Ok((name, Ok(()))) => tracing::debug!(task = name, "task stopped"),
                Err(join_error) => tracing::warn!(%join_error, "task panicked while stopping"),
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            ?drain,
            "tasks still running after the drain period; abandoning them"
        );
        running.abort_all();
    }
    failure.map_or(Ok(()), Err)
}

//! The HTTP server's connection loop: what a connection may cost before it has sent a request.
//!
//! Each connection gets [`ConnectionLimits::header_timeout`] to send a request's headers,
//! counted from when it opened or finished its previous response, so one bound covers both a
//! slow (or stalled) request head and an idle keep-alive connection; at most
//! [`ConnectionLimits::max_connections`] are open at once, and past that the server stops
//! accepting until one closes, so file descriptors never run out. A client that sends half a
//! request and stalls (slowloris) thus holds a slot for seconds, not forever.
//!
//! Routes and their layers are [`crate::http`]'s; this module only accepts and drives
//! connections, and drains them on shutdown.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// What one connection may cost.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Most connections open at once (`HTTP_MAX_CONNECTIONS`, default 1024); the server stops
    /// accepting above it.
    pub max_connections: usize,
    /// Longest a connection may take to send a request's headers, from when it opened or its
    /// previous response ended (`HTTP_HEADER_TIMEOUT_MS`, default 10000); closed after it.
    pub header_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
        }
    }
}

impl ConnectionLimits {
    /// Reads `HTTP_MAX_CONNECTIONS` and `HTTP_HEADER_TIMEOUT_MS`.
    pub fn from_env() -> Result<Self, crate::config::ConfigError> {
        let defaults = ConnectionLimits::default();
        Ok(ConnectionLimits {
            max_connections: crate::config::var("HTTP_MAX_CONNECTIONS", defaults.max_connections)?,
            header_timeout: Duration::from_millis(crate::config::var(
                "HTTP_HEADER_TIMEOUT_MS",
                10_000,
            )?),
        })
    }
}

/// Serves `router` on `listener` until `shutdown` fires, then stops accepting and waits for the
/// open connections to finish their requests (the caller bounds that wait). Handlers see the
/// peer's address as [`ConnectInfo<SocketAddr>`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let connections = GracefulShutdown::new();
    loop {
        let slot = tokio::select! {
            () = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => slot.map_err(std::io::Error::other)?,
        };
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors or a connection reset before it was accepted:
                    // wait a little instead of spinning, and go on.
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let response = router.clone().oneshot(request);
            async move { Ok::<_, Infallible>(response.await.unwrap_or_else(|e| match e {})) }
        });
        let connection = connections.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // A header timeout, a reset or a malformed request: the connection's own affair.
                tracing::debug!(%error, %peer, "connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    connections.shutdown().await;
    Ok(())
}

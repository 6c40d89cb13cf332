//! The shape every service binary shares: telemetry first, configuration from the environment
//! (one clear line and exit 1 when it is wrong), SIGTERM/Ctrl-C into a cancellation, then the
//! subcommand. `healthcheck` is handled here for every service: it asks the service's own
//! `/healthz` over loopback, so container images need no curl.
//!
//! `serve` logs to stdout; every other subcommand logs to stderr, so that what it prints on
//! stdout (`verify --json`) can be piped on as it is.

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::causes::Causes;
use crate::config::ConfigError;
use crate::telemetry::LogOutput;

/// Runs subcommand `std::env::args().nth(1)` (default `serve`) of a service. `run` gets the
/// command, the configuration and the shutdown token, and answers `None` for a command it does
/// not know.
pub async fn main<C, F, Fut>(
    service: &'static str,
    version: &'static str,
    load: impl FnOnce() -> Result<C, ConfigError>,
    http_addr: impl FnOnce(&C) -> SocketAddr,
    run: F,
) -> ExitCode
where
    F: FnOnce(String, C, CancellationToken) -> Fut,
    Fut: Future<Output = Option<anyhow::Result<()>>>,
{
    let command = std::env::args().nth(1).unwrap_or_else(|| "serve".into());
    let output = if command == "serve" {
        LogOutput::Stdout
    } else {
        LogOutput::Stderr
    };
    // Flushes exported spans when main returns.
    let _telemetry =
        (command != "healthcheck").then(|| crate::telemetry::init(service, version, output));
    let config = match load() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{service}: {error}");
            tracing::error!("{error}");
            return ExitCode::FAILURE;
        }
    };
    if command == "healthcheck" {
        return healthcheck(http_addr(&config)).await;
    }
    let shutdown = CancellationToken::new();
    crate::shutdown::cancel_on_signal(shutdown.clone());
    match run(command.clone(), config, shutdown).await {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(error)) => {
            tracing::error!(error = %Causes::from(&error), "{service} {command} failed");
            ExitCode::FAILURE
        }
        None => {
            tracing::error!("unknown command {command:?}; see `{service} help` in the README");
            ExitCode::FAILURE
        }
    }
}

/// Exit 0 when `GET /healthz` on the service's port answers 200 within two seconds.
async fn healthcheck(addr: SocketAddr) -> ExitCode {
    let target = SocketAddr::from(([127, 0, 0, 1], addr.port()));
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(target).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await?;
        std::io::Result::Ok(head.starts_with(b"HTTP/1.") && &head[9..12] == b"200")
    };
    match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(Ok(true)) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

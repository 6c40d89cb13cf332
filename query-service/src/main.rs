//! `query-service`: runs the query API and the projector until SIGTERM or Ctrl-C.

use std::process::ExitCode;

use query_service::{Application, Config};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    platform::telemetry::init("query-service", env!("CARGO_PKG_VERSION"));
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            tracing::error!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    platform::shutdown::cancel_on_signal(shutdown.clone());
    let result = match Application::build(config, shutdown).await {
        Ok(app) => app.run_until_stopped().await,
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "query service failed");
            ExitCode::FAILURE
        }
    }
}

//! `query-service`: runs the query API and the projector until SIGTERM or Ctrl-C.
//!
//! ```text
//! query-service            serve (default)
//! query-service migrate    apply the read database's migrations and exit
//! query-service rebuild    rebuild the views from the start of the topic, swap them in, exit
//! ```

use std::process::ExitCode;

use query_service::{Application, Config, startup};
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
    let result = match std::env::args().nth(1).as_deref() {
        None | Some("serve") => match Application::build(config, shutdown).await {
            Ok(app) => app.run_until_stopped().await,
            Err(error) => Err(error),
        },
        Some("migrate") => startup::migrate(config, shutdown).await,
        Some("rebuild") => startup::rebuild_views(config, shutdown).await,
        Some(other) => Err(anyhow::anyhow!(
            "unknown command {other:?}; expected serve, migrate or rebuild"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "query service failed");
            ExitCode::FAILURE
        }
    }
}

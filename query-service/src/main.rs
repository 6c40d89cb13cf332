//! `query-service`: the query API and the projector.
//!
//! ```text
//! query-service [serve]      serve until SIGTERM or Ctrl-C
//! query-service migrate      apply the read database's migrations and exit
//! query-service rebuild      rebuild the views from the start of the topic, swap them in, exit
//! query-service healthcheck  exit 0 when the local /healthz answers (container HEALTHCHECK)
//! query-service verify [--json] [--allow-dead-letters N]
//!                            compare every view with the event log of COMMAND_DATABASE_URL;
//!                            exit 0 when they match, 1 when anything differs
//! ```

use std::process::ExitCode;

use query_service::{Application, Config, startup, verify};

#[tokio::main]
async fn main() -> ExitCode {
    platform::cli::main(
        "query-service",
        env!("CARGO_PKG_VERSION"),
        Config::from_env,
        |config| config.http_addr,
        |command, config, shutdown| async move {
            Some(match command.as_str() {
                "serve" => match Application::build(config, shutdown).await {
                    Ok(app) => app.run_until_stopped().await,
                    Err(error) => Err(error),
                },
                "migrate" => startup::migrate(config, shutdown).await,
                "rebuild" => startup::rebuild_views(config, shutdown).await,
                "verify" => verify::run(config, shutdown).await,
                _ => return None,
            })
        },
    )
    .await
}

//! `command-service`: the command API and the relay.
//!
//! ```text
//! command-service [serve]      serve until SIGTERM or Ctrl-C
//! command-service migrate      apply the write database's migrations and exit
//! command-service healthcheck  exit 0 when the local /healthz answers (container HEALTHCHECK)
//! ```

use std::process::ExitCode;

use command_service::{Application, Config, startup};

/// mimalloc rather than glibc's malloc, whose malloc and free took a sixth of the command
/// service's CPU under load (docs/benchmark.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    platform::cli::main(
        "command-service",
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
                _ => return None,
            })
        },
    )
    .await
}

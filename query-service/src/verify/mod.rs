//! `query-service verify`: proves the views are what the command side's event log says they must
//! be. Every event of the log is folded in memory (`fold`), a second implementation of the
//! views' rules that shares nothing with [`crate::projections`] but the event types, and the
//! result is compared (`compare`) with every row of the live views (schema `views`), beside the
//! open dead letters and the command side's unpublished outbox rows.
//!
//! Each database is read in one repeatable-read snapshot, the event log first. Run it while no
//! commands arrive: an event committed in between is expected before the views could show it.

mod compare;
mod fold;
mod report;

use std::io::Write;

use anyhow::Context;
use platform::config::DatabaseUrl;
use platform::db::DbSettings;
use shared_events::EventEnvelope;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, PgPool, Row};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::Config;
use compare::{
    compare_daily_sales, compare_orders, compare_profiles, compare_versions, dead_letters,
};
use fold::Expected;

pub use report::{BrokenEvent, DeadLetters, Difference, OpenDeadLetter, Report, ViewReport};

/// Examples kept per view (and of broken events and dead letters); the counts are complete.
const EXAMPLES: usize = 10;
/// Rows per query: every statement stays far below the statement timeout, however many rows.
const PAGE: i64 = 5_000;
/// Each side is read as of one moment, whatever the projector commits meanwhile.
const SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

/// The command line of `verify`: `[--json] [--allow-dead-letters N]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Print the report as one JSON object instead of text.
    pub json: bool,
    /// Open dead letters that do not fail the check (poison injected on purpose).
    pub allowed_dead_letters: u64,
}

impl Options {
    /// Parses the arguments after the subcommand.
    pub fn parse(args: impl IntoIterator<Item = String>) -> anyhow::Result<Options> {
        let mut options = Options::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let count = match arg.as_str() {
                "--json" => {
                    options.json = true;
                    continue;
                }
                "--allow-dead-letters" => args.next().unwrap_or_default(),
                _ => match arg.strip_prefix("--allow-dead-letters=") {
                    Some(count) => count.to_owned(),
                    None => anyhow::bail!(
                        "unknown argument {arg:?}; usage: query-service verify [--json] [--allow-dead-letters N]"
                    ),
                },
            };
            options.allowed_dead_letters = count
                .parse()
                .with_context(|| format!("--allow-dead-letters needs a count, got {count:?}"))?;
        }
        Ok(options)
    }
}

/// `query-service verify`: reads the event log of `COMMAND_DATABASE_URL` and the views of the
/// configured read database, prints the report on stdout and fails when anything differs. Logs
/// go to stderr (see [`platform::cli`]), so `--json` output is a single JSON object.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let options = Options::parse(std::env::args().skip(2))?;
    let url: DatabaseUrl = platform::config::var_opt("COMMAND_DATABASE_URL")?
        .context("COMMAND_DATABASE_URL (the command service's database) is required by verify")?;
    let small = |db: DbSettings| DbSettings {
        max_connections: 2,
        ..db
    };
    let command_db = platform::db::connect(&small(DbSettings {
        url,
        search_path: None,
        ..config.db.clone()
    }))
    .await?;
    let query_db = platform::db::connect(&small(config.db)).await?;
    let report = tokio::select! {
        report = verify(&command_db, &query_db, options.allowed_dead_letters) => report?,
        () = shutdown.cancelled() => anyhow::bail!("interrupted before the check finished"),
    };
    // Written, not printed: a closed pipe (`| head`) is an error to report, not a panic.
    let mut stdout = std::io::stdout().lock();
    if options.json {
        writeln!(stdout, "{}", serde_json::to_string(&report)?)?;
    } else {
        write!(stdout, "{report}")?;
    }
    anyhow::ensure!(
        report.passed,
        "the views differ from the event log: {} problems",
        report.problems()
    );
    Ok(())
}

/// Compares every view in `query_db` with the events of the event log in `command_db`.
/// `allowed_dead_letters` open dead letters do not fail the check.
pub async fn verify(
    command_db: &PgPool,
    query_db: &PgPool,
    allowed_dead_letters: u64,
) -> anyhow::Result<Report> {
    let mut log = command_db
        .begin_with(SNAPSHOT)
        .await
        .context("begin reading the event log")?;
    let expected = read_event_log(&mut log).await?;
    let unpublished_events: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&mut *log)
        .await
        .context("count the outbox")?;
    log.commit().await?;

    let profiles = expected.profiles();
    let Expected {
        events,
        skipped,
        broken,
        broken_examples,
        orders,
        customers,
        daily_sales,
        versions,
    } = expected;

    let mut views = query_db
        .begin_with(SNAPSHOT)
        .await
        .context("begin reading the views")?;
    let mut report = Report {
        events,
        skipped_events: skipped,
        broken_events: broken,
        broken_examples,
        order_detail: compare_orders(&mut views, orders, &customers).await?,
        customer_profile: compare_profiles(&mut views, profiles).await?,
        daily_sales: compare_daily_sales(&mut views, daily_sales).await?,
        applied_versions: compare_versions(&mut views, versions).await?,
        dead_letters: dead_letters(&mut views, allowed_dead_letters).await?,
        unpublished_events,
        passed: false,
    };
    views.commit().await?;
    report.passed = report.problems() == 0;
    Ok(report)
}

/// Folds the whole event log, page by page, one aggregate's events at a time in version order.
async fn read_event_log(tx: &mut PgConnection) -> anyhow::Result<Expected> {
    let mut expected = Expected::default();
    let mut after = (Uuid::nil(), 0_i64);
    loop {
        let rows: Vec<PgRow> = sqlx::query(
            "SELECT event_id, event_type, schema_version, aggregate_type, aggregate_id, aggregate_version,
                    partition_key, occurred_at, correlation_id, causation_id, data
             FROM event_log WHERE (aggregate_id, aggregate_version) > ($1, $2)
             ORDER BY aggregate_id, aggregate_version LIMIT $3",
        )
        .bind(after.0)
        .bind(after.1)
        .bind(PAGE)
        .fetch_all(&mut *tx)
        .await
        .context("read the event log")?;
        let full = rows.len() as i64 == PAGE;
        for row in rows {
            let id: Uuid = row.try_get("aggregate_id")?;
            let version: i64 = row.try_get("aggregate_version")?;
            after = (id, version);
            match EventEnvelope::from_row(&row) {
                Ok(envelope) => expected.apply(&envelope),
                // A row no envelope can hold (unknown aggregate type, negative schema version).
                Err(error) => {
                    expected.events += 1;
                    let event_id: Uuid = row.try_get("event_id")?;
                    expected.refuse(event_id, id, version, error.to_string());
                }
            }
        }
        if !full {
            return Ok(expected);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_take_json_and_a_dead_letter_allowance() {
        let parse = |args: &[&str]| Options::parse(args.iter().map(|a| (*a).to_owned()));
        assert_eq!(parse(&[]).unwrap(), Options::default());
        assert_eq!(
            parse(&["--json", "--allow-dead-letters", "2"]).unwrap(),
            Options {
                json: true,
                allowed_dead_letters: 2
            }
        );
        assert_eq!(
            parse(&["--allow-dead-letters=3"])
                .unwrap()
                .allowed_dead_letters,
            3
        );
        assert!(parse(&["--allow-dead-letters"]).is_err());
        assert!(parse(&["--allow-dead-letters", "many"]).is_err());
        assert!(parse(&["--jsn"]).unwrap_err().to_string().contains("usage"));
    }
}

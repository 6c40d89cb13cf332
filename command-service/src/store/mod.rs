//! All SQL of the command service: the write model's state tables, the event log with its
//! outbox, and idempotency records. Callers own the transaction; functions here only run
//! statements inside it.

pub mod customers;
pub mod event_log;
pub mod idempotency;
pub mod orders;

/// The migrations of the write database (`migrations/command`), embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/command");

/// Whether loading an aggregate locks its row until the transaction ends (a command) or reads
/// it as it is (a strict read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lock {
    ForUpdate,
    None,
}

/// True when `error` is a violation of the named unique, foreign-key or check constraint.
pub fn violates(error: &sqlx::Error, constraint: &str) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.constraint() == Some(constraint))
}

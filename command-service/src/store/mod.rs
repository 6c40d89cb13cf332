//! All SQL of the command service: the write model's state tables, the event log and the
//! outbox. Callers own the transaction; functions here only run statements inside it.

pub mod event_log;
pub mod orders;

/// The migrations of the write database (`migrations/command`), embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/command");

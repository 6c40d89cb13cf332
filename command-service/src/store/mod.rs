//! All SQL of the command service: the write model's state tables, the event log with its
//! outbox, and idempotency records. Callers own the transaction; functions here only run
//! statements inside it.
//!
//! Every function returns `anyhow::Result` with the context of its step. A write that a named
//! constraint may refuse says so in its comment; the caller that expects the refusal maps it
//! (`commands::OnConstraint`), since only the caller knows what the refusal means.

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

/// True when `error` (or an error it wraps) is a violation of the named unique, foreign-key or
/// check constraint.
pub fn violates(error: &anyhow::Error, constraint: &str) -> bool {
    error.chain().any(|cause| {
        matches!(cause.downcast_ref::<sqlx::Error>(),
            Some(sqlx::Error::Database(e)) if e.constraint() == Some(constraint))
    })
}

//! How the query service's failures become problem responses: a view that does not name the
//! id, the refusals of the dead-letter operations, and a rebuild that runs already. Database
//! and other unexpected errors convert with `?` ([`Problem`]'s `From`): a generic 500, or a
//! 503 when the database cannot be reached, with the cause logged.

use axum::http::StatusCode;
use platform::problem::Problem;
use shared_events::AggregateType;

use crate::consumer::rebuild::AlreadyRunning;
use crate::projections::retry::RetryError;

/// 404 for an order or customer the views do not have (or an id that cannot name one, or one
/// the caller may not see: the answer does not say which).
pub fn not_found(aggregate: AggregateType, id: &str) -> Problem {
    let kind = aggregate.as_str();
    Problem::not_found(
        kind,
        format!("No {kind} with id {id:?} is known to the query service (yet)."),
    )
}

impl From<RetryError> for Problem {
    fn from(error: RetryError) -> Problem {
        let detail = error.to_string();
        let problem = match error {
            RetryError::NotFound => Problem::not_found("dead letter", detail.clone()),
            RetryError::Resolved(_) => Problem::new(
                StatusCode::CONFLICT,
                "dead-letter-resolved",
                "The dead letter was already retried or discarded",
            ),
            RetryError::StillBroken(_) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "dead-letter-still-failing",
                "The event still cannot be applied",
            ),
            RetryError::Mismatch(_) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "dead-letter-mismatch",
                "The corrected payload is another event",
            ),
            RetryError::RebuildRunning => Problem::new(
                StatusCode::CONFLICT,
                "rebuild-running",
                "A rebuild of the views is running",
            ),
            RetryError::Waiting { needed } => Problem::new(
                StatusCode::CONFLICT,
                "dead-letter-waiting",
                "An earlier version must be applied first",
            )
            .with("needed_version", needed),
            RetryError::Unexpected(error) => return error.into(),
        };
        problem.with_detail(detail)
    }
}

/// Starting a rebuild: 409 when one runs already, anything else unexpected.
pub fn rebuild_refused(error: anyhow::Error) -> Problem {
    match error.downcast::<AlreadyRunning>() {
        Ok(AlreadyRunning(id)) => Problem::new(
            StatusCode::CONFLICT,
            "rebuild-running",
            "A rebuild is already running",
        )
        .with("rebuild_id", id),
        Err(error) => error.into(),
    }
}

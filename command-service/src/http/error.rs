//! How refused commands become problem responses. Unexpected errors answer a generic 500 and log
//! their whole cause chain inside the request's span.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::problem::{FieldError, Problem};
use shared_events::AggregateType;

use crate::commands::CommandError;
use crate::domain::order::OrderRuleViolation;

impl IntoResponse for CommandError {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}

impl From<CommandError> for Problem {
    fn from(error: CommandError) -> Problem {
        let detail = error.to_string();
        let problem = match error {
            CommandError::NotFound { aggregate, id } => not_found(aggregate, &id.to_string()),
            CommandError::VersionMismatch { current, .. } => Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "version-mismatch",
                "The resource is not at the version in If-Match",
            )
            .with("current_version", current)
            .with_header(header::ETAG, etag(current)),
            CommandError::OrderRule {
                violation,
                status,
                version,
            } => {
                let http_status = match violation {
                    OrderRuleViolation::NoSuchLine(_) => StatusCode::NOT_FOUND,
                    _ => StatusCode::CONFLICT,
                };
                Problem::new(
                    http_status,
                    "rule-violation",
                    "The order's current state does not allow this",
                )
                .with("rule", violation.rule())
                .with("current_status", status.as_str())
                .with("current_version", version)
            }
            CommandError::UnknownCustomer(_) => Problem::validation(vec![FieldError::new(
                "customer_id",
                "no customer with this id is registered",
            )]),
            CommandError::AlreadyRegistered => Problem::new(
                StatusCode::CONFLICT,
                "already-registered",
                "This customer is registered already",
            ),
            CommandError::AdminOnly(_) => Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "This command is for administrators",
            ),
            CommandError::EmailTaken => Problem::new(
                StatusCode::CONFLICT,
                "email-taken",
                "The email address is taken",
            )
            .with_errors(vec![FieldError::new(
                "email",
                "another customer has this email address",
            )]),
            CommandError::ConcurrentModification => Problem::new(
                StatusCode::CONFLICT,
                "concurrent-modification",
                "The resource was changed concurrently; retry",
            ),
            CommandError::IdempotencyKeyInUse => Problem::new(
                StatusCode::CONFLICT,
                "idempotency-key-in-use",
                "A request with this Idempotency-Key is still running",
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1")),
            CommandError::IdempotencyKeyReused => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "This Idempotency-Key was used with a different request",
            ),
            CommandError::Unexpected(error) => return error.into(),
        };
        match problem.detail() {
            Some(_) => problem,
            None => problem.with_detail(detail),
        }
    }
}

/// 404 for an aggregate that does not exist (or an id that cannot name one).
pub fn not_found(aggregate: AggregateType, id: &str) -> Problem {
    let kind = aggregate.as_str();
    Problem::not_found(kind, format!("no {kind} with id {id:?}"))
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

//! What several operations of the OpenAPI document share, declared once: the headers every
//! command reads, the answers of an accepted command, and the problems a command can meet.
//! The operations list these types in their `#[utoipa::path]` instead of repeating them.

use platform::openapi::ProblemSchema;
use utoipa::{IntoParams, IntoResponses};

use super::request::{CustomerAccepted, OrderAccepted};

/// The request headers every command reads.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct CommandHeaders {
    /// 1–255 visible ASCII characters (a UUID per logical request). Retrying with the same key and request returns the first response.
    #[param(rename = "Idempotency-Key", pattern = "^[!-~]{1,255}$")]
    pub idempotency_key: Option<String>,
    /// The ETag (version) the aggregate must be at: `"<version>"`, a comma-separated list of them, or `*`.
    #[param(
        rename = "If-Match",
        pattern = r#"^[ \t]*(\*|"\+?0*[1-9][0-9]{0,17}"([ \t]*,[ \t]*"\+?0*[1-9][0-9]{0,17}")*)[ \t]*$"#
    )]
    pub if_match: Option<String>,
    /// W3C trace context; its trace id becomes the events' correlation id.
    #[param(rename = "traceparent")]
    pub traceparent: Option<String>,
    /// Echoed; becomes the events' causation id.
    #[param(rename = "X-Request-Id")]
    pub request_id: Option<String>,
}

/// A command on an existing order was accepted.
#[derive(Debug, IntoResponses)]
#[response(
    status = 200,
    description = "Accepted",
    headers(
        ("ETag" = String, description = "\"<version>\""),
        ("X-Consistency-Token" = String, description = "Send it to the query service to read this write.")
    )
)]
pub struct OrderChanged(pub OrderAccepted);

/// A command on an existing customer was accepted.
#[derive(Debug, IntoResponses)]
#[response(
    status = 200,
    description = "Accepted",
    headers(
        ("ETag" = String, description = "\"<version>\""),
        ("X-Consistency-Token" = String, description = "Send it to the query service to read this write.")
    )
)]
pub struct CustomerChanged(pub CustomerAccepted);

/// What a command with a JSON body can be refused for before it runs.
#[derive(Debug, IntoResponses)]
pub enum BodyRefused {
    /// The body is not valid JSON (or nests too deeply), or If-Match or Idempotency-Key is malformed
    #[response(status = 400, content_type = "application/problem+json")]
    Malformed(ProblemSchema),
    /// Fields are invalid (`errors` names each one), or the Idempotency-Key was used with a different request
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(ProblemSchema),
}

/// What a command without a body can be refused for before it runs.
#[derive(Debug, IntoResponses)]
pub enum HeadersRefused {
    /// If-Match or Idempotency-Key is malformed
    #[response(status = 400, content_type = "application/problem+json")]
    Malformed(ProblemSchema),
    /// The Idempotency-Key was used with a different request
    #[response(status = 422, content_type = "application/problem+json")]
    KeyReused(ProblemSchema),
}

/// What a command on an existing order can be refused for.
#[derive(Debug, IntoResponses)]
pub enum OrderRefused {
    /// No such order
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(ProblemSchema),
    /// A rule forbids it (`rule`, `current_status`), or the same Idempotency-Key is still running
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(ProblemSchema),
    /// If-Match names another version (`current_version`)
    #[response(status = 412, content_type = "application/problem+json")]
    VersionMismatch(ProblemSchema),
}

/// What a command on an existing customer can be refused for.
#[derive(Debug, IntoResponses)]
pub enum CustomerRefused {
    /// No such customer
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(ProblemSchema),
    /// The email address is taken, or the same Idempotency-Key is still running
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(ProblemSchema),
    /// If-Match names another version (`current_version`)
    #[response(status = 412, content_type = "application/problem+json")]
    VersionMismatch(ProblemSchema),
}

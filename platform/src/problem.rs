//! RFC 9457 problem details: the one shape every error response of both services has.
//!
//! `type` is a relative URI naming the kind of problem (documented in the README); `errors`
//! carries field-level detail for validation failures.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::causes::Causes;

/// The media type of problem responses.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Path of the field in the request body, e.g. `items[0].quantity`.
    pub field: String,
    /// What is wrong with it, in words a frontend developer can show or act on.
    pub message: String,
}

impl FieldError {
    /// A field error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The field errors of one request, collected while its body or query string is parsed into
/// domain values, so that one 422 names every invalid field rather than the first.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// `parsed`'s value, or `None` after recording its error under the field `field` names
    /// (a closure, so that paths like `items[3].sku` are only formatted for an error).
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: impl FnOnce() -> String,
        parsed: Result<T, E>,
    ) -> Option<T> {
        parsed
            .map_err(|error| self.refuse(field(), error.to_string()))
            .ok()
    }

    /// Records an error of `field` (or of several fields together).
    pub fn refuse(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// The parsed value when no field was invalid, otherwise a 422 listing every field error.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, Problem> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(Problem::validation(self.0)),
        }
    }
}

/// An RFC 9457 problem response. Boxed, so that `Result<T, Problem>` stays small.
#[derive(Debug, Clone)]
pub struct Problem(Box<Details>);

/// The members of a problem body.
#[derive(Debug, Clone, Serialize)]
struct Details {
    /// Kind of problem, a relative URI such as `/problems/validation`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// HTTP status code, repeated in the body.
    pub status: u16,
    /// What went wrong in this occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Field-level errors of a validation failure.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Further members specific to the kind of problem (e.g. `current_version`).
    #[serde(flatten)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
    #[serde(skip)]
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Problem {
    /// A problem of `kind` (a slug; becomes `/problems/{kind}`) with `status` and `title`.
    pub fn new(status: StatusCode, kind: &str, title: impl Into<String>) -> Self {
        Problem(Box::new(Details {
            kind: format!("/problems/{kind}"),
            title: title.into(),
            status: status.as_u16(),
            detail: None,
            errors: Vec::new(),
            extensions: serde_json::Map::new(),
            headers: Vec::new(),
        }))
    }

    /// A problem that only repeats the status: `about:blank` with the status's reason phrase.
    pub fn from_status(status: StatusCode) -> Self {
        let mut problem = Problem::new(status, "", status.canonical_reason().unwrap_or("Error"));
        problem.0.kind = "about:blank".into();
        problem
    }

    /// 422 with field-level errors.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "The request has invalid fields",
        )
        .with_errors(errors)
    }

    /// 500 that says nothing about the cause; the cause belongs in the log.
    pub fn internal() -> Self {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
        )
        .with_detail("The request could not be completed. It has been logged; retrying may help.")
    }

    /// 404 for a `kind` of resource (`order`, `dead letter`) that the request's id does not
    /// name (or names one the caller may not see); `detail` says what was looked for where.
    pub fn not_found(kind: &str, detail: impl Into<String>) -> Self {
        let mut chars = kind.chars();
        let title: String = chars
            .next()
            .map(|first| first.to_uppercase().chain(chars).collect())
            .unwrap_or_default();
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("{title} not found"),
        )
        .with_detail(detail)
    }

    /// The answer to a failure the caller did not cause, with its cause logged:
    /// [`Problem::unavailable`] when the database cannot be reached
    /// ([`crate::db::unreachable`]), else [`Problem::internal`].
    pub fn unexpected(error: &anyhow::Error) -> Self {
        if crate::db::unreachable(error) {
            tracing::warn!(error = %Causes::from(error), "database unreachable");
            Problem::unavailable()
        } else {
            tracing::error!(error = %Causes::from(error), "request failed");
            Problem::internal()
        }
    }

    /// 503 for a dependency that cannot be reached now (the database): nothing was changed, and
    /// the same request may succeed after `Retry-After` seconds.
    pub fn unavailable() -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "A dependency is unavailable",
        )
        .with_detail("The database could not be reached; nothing was changed. Retry shortly.")
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
    }

    /// Sets the human-readable detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.0.detail = Some(detail.into());
        self
    }

    /// Sets the field errors.
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.0.errors = errors;
        self
    }

    /// Adds a member to the body.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.0.extensions.insert(key.to_owned(), value.into());
        self
    }

    /// Adds a response header (e.g. `Retry-After`).
    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.0.headers.push((name, value));
        self
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The detail, if set.
    pub fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }
}

/// A failure the caller did not cause answers [`Problem::unexpected`], so handlers can use `?`
/// on the database and on anything with context.
impl From<anyhow::Error> for Problem {
    fn from(error: anyhow::Error) -> Self {
        Problem::unexpected(&error)
    }
}

impl From<sqlx::Error> for Problem {
    fn from(error: sqlx::Error) -> Self {
        Problem::unexpected(&error.into())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self.0).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        for (name, value) in self.0.headers {
            headers.insert(name, value);
        }
        response
    }
}

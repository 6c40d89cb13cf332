//! Customer commands: request bodies, their parsing into domain commands, and the handlers.

use axum::extract::{Path, State};
use axum::response::Response;
use platform::problem::Problem;
use serde::Deserialize;
use shared_events::AggregateType;

use super::fields::Fields;
use super::request::{Answer, CommandInput, CustomerAccepted, run};
use super::{AppState, invalid, path_id};
use crate::commands::Command;
use crate::domain::customer::RegisterCustomer;
use crate::domain::values::{CustomerId, EmailAddress, PersonName};

const CHANGED: Answer = Answer::Changed(AggregateType::Customer);

/// Body of `POST /customers`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Full name, 1–200 characters, not blank, no control characters (surrounding space is
    /// trimmed).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$",
        example = "Ada Lovelace"
    )]
    name: String,
    /// Unique across customers (case-insensitively), at most 254 characters.
    #[schema(format = Email, max_length = 254, example = "ada@example.com")]
    email: String,
}

/// Body of `POST /customers/{id}/rename`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameRequest {
    /// Full name, 1–200 characters, not blank, no control characters (surrounding space is
    /// trimmed).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: String,
}

/// Body of `POST /customers/{id}/change-email`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeEmailRequest {
    /// Unique across customers (case-insensitively), at most 254 characters.
    #[schema(format = Email, max_length = 254)]
    email: String,
}

/// `POST /customers`: 201 with `Location`; 409 when the email address is taken.
#[utoipa::path(post, path = "/customers", tag = "customers", summary = "Register a customer", request_body(content = RegisterRequest, content_type = "application/json"), params(("Idempotency-Key" = Option<String>, Header, description = "1–255 visible ASCII characters (a UUID per logical request). Retrying with the same key and request returns the first response.", pattern = "^[!-~]{1,255}$"), ("If-Match" = Option<String>, Header, description = "The ETag (version) the aggregate must be at: `\"<version>\"`, a comma-separated list of them, or `*`.", pattern = r#"^[ \t]*(\*|"\+?0*[1-9][0-9]{0,17}"([ \t]*,[ \t]*"\+?0*[1-9][0-9]{0,17}")*)[ \t]*$"#), ("traceparent" = Option<String>, Header, description = "W3C trace context; its trace id becomes the events' correlation id."), ("X-Request-Id" = Option<String>, Header, description = "Echoed; becomes the events' causation id.")), responses((status = 201, description = "Registered", body = CustomerAccepted, headers(("Location" = String, description = "/customers/{customer_id}"), ("ETag" = String, description = "\"1\""), ("X-Consistency-Token" = String, description = "Send it to the query service to read this write."))), (status = 409, description = "The email address is taken, or the same Idempotency-Key is still running", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 400, description = "The body is not valid JSON (or nests too deeply), or If-Match or Idempotency-Key is malformed", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 422, description = "Fields are invalid (`errors` names each one), or the Idempotency-Key was used with a different request", body = platform::openapi::ProblemSchema, content_type = "application/problem+json")))]
pub async fn register(
    State(state): State<AppState>,
    input: CommandInput,
) -> Result<Response, Problem> {
    let request: RegisterRequest = input.json()?;
    let mut fields = Fields::default();
    let name = fields.check(|| "name".into(), PersonName::parse(&request.name));
    let email = fields.check(|| "email".into(), EmailAddress::parse(&request.email));
    let command = name
        .zip(email)
        .map(|(name, email)| RegisterCustomer { name, email });
    let command = fields.finish(command).map_err(invalid)?;
    let answer = Answer::Created(AggregateType::Customer);
    Ok(run(&state, input, Command::RegisterCustomer(command), answer).await)
}

/// `POST /customers/{id}/rename`.
#[utoipa::path(post, path = "/customers/{id}/rename", tag = "customers", summary = "Rename a customer", request_body(content = RenameRequest, content_type = "application/json"), params(("Idempotency-Key" = Option<String>, Header, description = "1–255 visible ASCII characters (a UUID per logical request). Retrying with the same key and request returns the first response.", pattern = "^[!-~]{1,255}$"), ("If-Match" = Option<String>, Header, description = "The ETag (version) the aggregate must be at: `\"<version>\"`, a comma-separated list of them, or `*`.", pattern = r#"^[ \t]*(\*|"\+?0*[1-9][0-9]{0,17}"([ \t]*,[ \t]*"\+?0*[1-9][0-9]{0,17}")*)[ \t]*$"#), ("traceparent" = Option<String>, Header, description = "W3C trace context; its trace id becomes the events' correlation id."), ("X-Request-Id" = Option<String>, Header, description = "Echoed; becomes the events' causation id."), ("id" = String, Path, format = Uuid, description = "Customer id (UUID)")), responses((status = 200, description = "Accepted", body = CustomerAccepted, headers(("ETag" = String, description = "\"<version>\""), ("X-Consistency-Token" = String, description = "Send it to the query service to read this write."))), (status = 404, description = "No such customer", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 409, description = "The email address is taken, or the same Idempotency-Key is still running", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 412, description = "If-Match names another version (`current_version`)", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 400, description = "The body is not valid JSON (or nests too deeply), or If-Match or Idempotency-Key is malformed", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 422, description = "Fields are invalid (`errors` names each one), or the Idempotency-Key was used with a different request", body = platform::openapi::ProblemSchema, content_type = "application/problem+json")))]
pub async fn rename(
    State(state): State<AppState>,
    Path(id): Path<String>,
    input: CommandInput,
) -> Result<Response, Problem> {
    let id = CustomerId(path_id(&id, AggregateType::Customer)?);
    let request: RenameRequest = input.json()?;
    let mut fields = Fields::default();
    let name = fields.check(|| "name".into(), PersonName::parse(&request.name));
    let name = fields.finish(name).map_err(invalid)?;
    Ok(run(&state, input, Command::RenameCustomer(id, name), CHANGED).await)
}

/// `POST /customers/{id}/change-email`; 409 when the address is taken.
#[utoipa::path(post, path = "/customers/{id}/change-email", tag = "customers", summary = "Change a customer's email address", request_body(content = ChangeEmailRequest, content_type = "application/json"), params(("Idempotency-Key" = Option<String>, Header, description = "1–255 visible ASCII characters (a UUID per logical request). Retrying with the same key and request returns the first response.", pattern = "^[!-~]{1,255}$"), ("If-Match" = Option<String>, Header, description = "The ETag (version) the aggregate must be at: `\"<version>\"`, a comma-separated list of them, or `*`.", pattern = r#"^[ \t]*(\*|"\+?0*[1-9][0-9]{0,17}"([ \t]*,[ \t]*"\+?0*[1-9][0-9]{0,17}")*)[ \t]*$"#), ("traceparent" = Option<String>, Header, description = "W3C trace context; its trace id becomes the events' correlation id."), ("X-Request-Id" = Option<String>, Header, description = "Echoed; becomes the events' causation id."), ("id" = String, Path, format = Uuid, description = "Customer id (UUID)")), responses((status = 200, description = "Accepted", body = CustomerAccepted, headers(("ETag" = String, description = "\"<version>\""), ("X-Consistency-Token" = String, description = "Send it to the query service to read this write."))), (status = 404, description = "No such customer", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 409, description = "The email address is taken, or the same Idempotency-Key is still running", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 412, description = "If-Match names another version (`current_version`)", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 400, description = "The body is not valid JSON (or nests too deeply), or If-Match or Idempotency-Key is malformed", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 422, description = "Fields are invalid (`errors` names each one), or the Idempotency-Key was used with a different request", body = platform::openapi::ProblemSchema, content_type = "application/problem+json")))]
pub async fn change_email(
    State(state): State<AppState>,
    Path(id): Path<String>,
    input: CommandInput,
) -> Result<Response, Problem> {
    let id = CustomerId(path_id(&id, AggregateType::Customer)?);
    let request: ChangeEmailRequest = input.json()?;
    let mut fields = Fields::default();
    let email = fields.check(|| "email".into(), EmailAddress::parse(&request.email));
    let email = fields.finish(email).map_err(invalid)?;
    Ok(run(
        &state,
        input,
        Command::ChangeCustomerEmail(id, email),
        CHANGED,
    )
    .await)
}

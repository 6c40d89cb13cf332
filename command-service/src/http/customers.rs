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

const CHANGED: Answer = Answer::Changed {
    id_field: "customer_id",
};

/// Body of `POST /customers`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RegisterRequest {
    /// Full name, 1–200 characters.
    #[schema(min_length = 1, max_length = 200, example = "Ada Lovelace")]
    name: String,
    /// Unique across customers (case-insensitively), at most 254 characters.
    #[schema(format = Email, max_length = 254, example = "ada@example.com")]
    email: String,
}

/// Body of `POST /customers/{id}/rename`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RenameRequest {
    /// Full name, 1–200 characters.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
}

/// Body of `POST /customers/{id}/change-email`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ChangeEmailRequest {
    /// Unique across customers (case-insensitively), at most 254 characters.
    #[schema(format = Email, max_length = 254)]
    email: String,
}

/// `POST /customers`: 201 with `Location`; 409 when the email address is taken.
#[utoipa::path(post, path = "/customers", tag = "customers", summary = "Register a customer", request_body(content = RegisterRequest, content_type = "application/json"), params(("Idempotency-Key" = Option<String>, Header, description = "Retrying with the same key and request returns the first response."), ("If-Match" = Option<String>, Header, description = "The ETag (version) the aggregate must be at."), ("traceparent" = Option<String>, Header, description = "W3C trace context; its trace id becomes the events' correlation id."), ("X-Request-Id" = Option<String>, Header, description = "Echoed; becomes the events' causation id.")), responses((status = 201, description = "Registered", body = CustomerAccepted, headers(("Location" = String, description = "/customers/{customer_id}"), ("ETag" = String, description = "\"1\""), ("X-Consistency-Token" = String, description = "Send it to the query service to read this write."))), (status = 409, description = "The email address is taken, or the same Idempotency-Key is still running", body = platform::openapi::ProblemSchema, content_type = "application/problem+json")))]
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
    let answer = Answer::Created {
        id_field: "customer_id",
        collection: "/customers",
    };
    Ok(run(&state, input, Command::RegisterCustomer(command), answer).await)
}

/// `POST /customers/{id}/rename`.
#[utoipa::path(post, path = "/customers/{id}/rename", tag = "customers", summary = "Rename a customer", request_body(content = RenameRequest, content_type = "application/json"), params(("Idempotency-Key" = Option<String>, Header, description = "Retrying with the same key and request returns the first response."), ("If-Match" = Option<String>, Header, description = "The ETag (version) the aggregate must be at."), ("traceparent" = Option<String>, Header, description = "W3C trace context; its trace id becomes the events' correlation id."), ("X-Request-Id" = Option<String>, Header, description = "Echoed; becomes the events' causation id."), ("id" = String, Path, description = "Customer id (UUID)")), responses((status = 200, description = "Accepted", body = CustomerAccepted, headers(("ETag" = String, description = "\"<version>\""), ("X-Consistency-Token" = String, description = "Send it to the query service to read this write."))), (status = 404, description = "No such customer", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 409, description = "The email address is taken, or the same Idempotency-Key is still running", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 412, description = "If-Match names another version (`current_version`)", body = platform::openapi::ProblemSchema, content_type = "application/problem+json")))]
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
#[utoipa::path(post, path = "/customers/{id}/change-email", tag = "customers", summary = "Change a customer's email address", request_body(content = ChangeEmailRequest, content_type = "application/json"), params(("Idempotency-Key" = Option<String>, Header, description = "Retrying with the same key and request returns the first response."), ("If-Match" = Option<String>, Header, description = "The ETag (version) the aggregate must be at."), ("traceparent" = Option<String>, Header, description = "W3C trace context; its trace id becomes the events' correlation id."), ("X-Request-Id" = Option<String>, Header, description = "Echoed; becomes the events' causation id."), ("id" = String, Path, description = "Customer id (UUID)")), responses((status = 200, description = "Accepted", body = CustomerAccepted, headers(("ETag" = String, description = "\"<version>\""), ("X-Consistency-Token" = String, description = "Send it to the query service to read this write."))), (status = 404, description = "No such customer", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 409, description = "The email address is taken, or the same Idempotency-Key is still running", body = platform::openapi::ProblemSchema, content_type = "application/problem+json"), (status = 412, description = "If-Match names another version (`current_version`)", body = platform::openapi::ProblemSchema, content_type = "application/problem+json")))]
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

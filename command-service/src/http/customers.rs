//! Customer commands: request bodies, their parsing into domain commands, and the handlers.

use axum::extract::{Path, State};
use axum::response::Response;
use platform::openapi::ProblemSchema;
use platform::problem::{FieldErrors, Problem};
use serde::Deserialize;
use shared_events::AggregateType;

use super::body::Body;
use super::docs::{
    BodyRefused, CommandHeaders, CustomerChanged, CustomerPath, CustomerRefused, fields,
};
use super::request::{Answer, CommandInput, CustomerAccepted, run};
use super::{AppState, path_id};
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
    #[schema(schema_with = fields::registered_name)]
    name: String,
    /// Unique across customers (case-insensitively), at most 254 characters.
    #[schema(schema_with = fields::registered_email)]
    email: String,
}

impl Body for RegisterRequest {
    type Value = RegisterCustomer;

    fn parse(self, fields: &mut FieldErrors) -> Option<RegisterCustomer> {
        let name = fields.check(|| "name".into(), PersonName::parse(&self.name));
        let email = fields.check(|| "email".into(), EmailAddress::parse(&self.email));
        Some(RegisterCustomer {
            name: name?,
            email: email?,
        })
    }
}

/// Body of `POST /customers/{id}/rename`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameRequest {
    /// Full name, 1–200 characters, not blank, no control characters (surrounding space is
    /// trimmed).
    #[schema(schema_with = fields::new_name)]
    name: String,
}

impl Body for RenameRequest {
    type Value = PersonName;

    fn parse(self, fields: &mut FieldErrors) -> Option<PersonName> {
        fields.check(|| "name".into(), PersonName::parse(&self.name))
    }
}

/// Body of `POST /customers/{id}/change-email`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeEmailRequest {
    /// Unique across customers (case-insensitively), at most 254 characters.
    #[schema(schema_with = fields::new_email)]
    email: String,
}

impl Body for ChangeEmailRequest {
    type Value = EmailAddress;

    fn parse(self, fields: &mut FieldErrors) -> Option<EmailAddress> {
        fields.check(|| "email".into(), EmailAddress::parse(&self.email))
    }
}

/// `POST /customers`: 201 with `Location`; 409 when the email address is taken.
#[utoipa::path(
    post,
    path = "/customers",
    tag = "customers",
    summary = "Register a customer",
    request_body(content = RegisterRequest, content_type = "application/json"),
    params(CommandHeaders),
    responses(
        (
            status = 201,
            description = "Registered",
            body = CustomerAccepted,
            headers(
                ("Location" = String, description = "/customers/{customer_id}"),
                ("ETag" = String, description = "\"1\""),
                ("X-Consistency-Token" = String, description = "Send it to the query service to read this write.")
            )
        ),
        (
            status = 409,
            description = "The email address is taken, or the same Idempotency-Key is still running",
            body = ProblemSchema,
            content_type = "application/problem+json"
        ),
        BodyRefused,
    )
)]
pub async fn register(
    State(state): State<AppState>,
    input: CommandInput,
) -> Result<Response, Problem> {
    let command = input.parse::<RegisterRequest>()?;
    let answer = Answer::Created(AggregateType::Customer);
    Ok(run(&state, input, Command::RegisterCustomer(command), answer).await)
}

/// `POST /customers/{id}/rename`.
#[utoipa::path(
    post,
    path = "/customers/{id}/rename",
    tag = "customers",
    summary = "Rename a customer",
    request_body(content = RenameRequest, content_type = "application/json"),
    params(CommandHeaders, CustomerPath),
    responses(CustomerChanged, CustomerRefused, BodyRefused)
)]
pub async fn rename(
    State(state): State<AppState>,
    Path(id): Path<String>,
    input: CommandInput,
) -> Result<Response, Problem> {
    let id = CustomerId(path_id(&id, AggregateType::Customer)?);
    let name = input.parse::<RenameRequest>()?;
    Ok(run(&state, input, Command::RenameCustomer(id, name), CHANGED).await)
}

/// `POST /customers/{id}/change-email`; 409 when the address is taken.
#[utoipa::path(
    post,
    path = "/customers/{id}/change-email",
    tag = "customers",
    summary = "Change a customer's email address",
    request_body(content = ChangeEmailRequest, content_type = "application/json"),
    params(CommandHeaders, CustomerPath),
    responses(CustomerChanged, CustomerRefused, BodyRefused)
)]
pub async fn change_email(
    State(state): State<AppState>,
    Path(id): Path<String>,
    input: CommandInput,
) -> Result<Response, Problem> {
    let id = CustomerId(path_id(&id, AggregateType::Customer)?);
    let email = input.parse::<ChangeEmailRequest>()?;
    Ok(run(
        &state,
        input,
        Command::ChangeCustomerEmail(id, email),
        CHANGED,
    )
    .await)
}

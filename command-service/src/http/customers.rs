//! Customer commands: request bodies, their parsing into domain commands, and the handlers.

use axum::extract::{Path, State};
use axum::response::Response;
use platform::problem::Problem;
use serde::Deserialize;
use shared_events::AggregateType;

use super::fields::Fields;
use super::request::{Answer, CommandInput, run};
use super::{AppState, invalid, path_id};
use crate::commands::Command;
use crate::domain::customer::RegisterCustomer;
use crate::domain::values::{CustomerId, EmailAddress, PersonName};

const CHANGED: Answer = Answer::Changed {
    id_field: "customer_id",
};

/// Body of `POST /customers`.
#[derive(Debug, Deserialize)]
pub struct RegisterRequest {
    name: String,
    email: String,
}

/// Body of `POST /customers/{id}/rename`.
#[derive(Debug, Deserialize)]
pub struct RenameRequest {
    name: String,
}

/// Body of `POST /customers/{id}/change-email`.
#[derive(Debug, Deserialize)]
pub struct ChangeEmailRequest {
    email: String,
}

/// `POST /customers`: 201 with `Location`; 409 when the email address is taken.
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

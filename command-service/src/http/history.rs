//! The audit trail: `GET /orders/{id}/events` and `GET /customers/{id}/events`.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use platform::auth::Caller;
use platform::openapi::ProblemSchema;
use platform::params::QueryParams;
use platform::problem::Problem;
use shared_events::AggregateType;
use uuid::Uuid;

use super::docs::{CustomerPath, HistoryPage, OrderPath};
use super::{AppState, path_id};
use crate::commands::CommandError;

/// Most events one page returns.
const MAX_PAGE: i64 = 1000;

/// `?after_version=&limit=`: the page of the history to return; a bad value (also an empty
/// one) is a field-level 422 like every other invalid input.
fn page(mut params: QueryParams) -> Result<(i64, i64), Problem> {
    let after = params.integer("after_version", 0..=i64::MAX).unwrap_or(0);
    let limit = params.integer("limit", 1..=MAX_PAGE).unwrap_or(MAX_PAGE);
    params.finish()?;
    Ok((after, limit))
}

/// A page of an aggregate's history.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct History {
    /// Envelopes, oldest first.
    pub events: Vec<shared_events::EventEnvelope>,
    /// Pass as `after_version` for the next page; `null` on the last.
    pub next_after_version: Option<i64>,
}

/// The order's events, oldest first.
#[utoipa::path(
    get,
    path = "/orders/{id}/events",
    tag = "orders",
    summary = "The order's events (audit trail), oldest first",
    params(
        OrderPath,
        HistoryPage,
    ),
    responses(
        (status = 200, description = "A page of the history", body = History),
        (
            status = 404,
            description = "No such order",
            body = ProblemSchema,
            content_type = "application/problem+json"
        ),
        (
            status = 422,
            description = "A parameter is invalid (`errors` names it)",
            body = ProblemSchema,
            content_type = "application/problem+json"
        ),
    )
)]
pub async fn order_events(
    caller: Caller,
    state: State<AppState>,
    Path(id): Path<String>,
    page: QueryParams,
) -> Result<Response, Problem> {
    history(caller, state, AggregateType::Order, &id, page).await
}

/// The customer's events, oldest first.
#[utoipa::path(
    get,
    path = "/customers/{id}/events",
    tag = "customers",
    summary = "The customer's events (audit trail), oldest first",
    params(
        CustomerPath,
        HistoryPage,
    ),
    responses(
        (status = 200, description = "A page of the history", body = History),
        (
            status = 404,
            description = "No such customer",
            body = ProblemSchema,
            content_type = "application/problem+json"
        ),
        (
            status = 422,
            description = "A parameter is invalid (`errors` names it)",
            body = ProblemSchema,
            content_type = "application/problem+json"
        ),
    )
)]
pub async fn customer_events(
    caller: Caller,
    state: State<AppState>,
    Path(id): Path<String>,
    page: QueryParams,
) -> Result<Response, Problem> {
    history(caller, state, AggregateType::Customer, &id, page).await
}

/// `{"events": [envelope…], "next_after_version": n | null}`; 404 for an unknown aggregate and
/// for one of another customer, whatever page is asked for.
async fn history(
    caller: Caller,
    State(state): State<AppState>,
    aggregate: AggregateType,
    id: &str,
    params: QueryParams,
) -> Result<Response, Problem> {
    let (after, limit) = page(params)?;
    let id = path_id(id, aggregate)?;
    let events = state.commands.history(aggregate, id, after, limit).await?;
    // Whose it is, from its first event (every event of an aggregate is keyed by its
    // customer). An empty page past the end asks for it, so that an unknown id and another
    // customer's answer alike: 404.
    let owner = match events.first() {
        Some(event) => Some(event.partition_key.clone()),
        None if after > 0 => state
            .commands
            .history(aggregate, id, 0, 1)
            .await?
            .first()
            .map(|event| event.partition_key.clone()),
        None => None,
    };
    let mine = owner
        .and_then(|key| Uuid::try_parse(&key).ok())
        .is_some_and(|customer| caller.acts_for(customer));
    if !mine {
        return Err(CommandError::NotFound { aggregate, id }.into());
    }
    let next = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.aggregate_version))
        .flatten();
    Ok(Json(History {
        events,
        next_after_version: next,
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> QueryParams {
        let pairs = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        QueryParams::from_map(pairs.collect())
    }

    #[test]
    fn pages_default_and_refuse_out_of_range_or_empty_values() {
        assert_eq!(page(query(&[])).unwrap(), (0, MAX_PAGE));
        assert_eq!(
            page(query(&[("after_version", "3"), ("limit", "10")])).unwrap(),
            (3, 10)
        );
        for bad in [
            ("limit", "0"),
            ("limit", "1001"),
            ("limit", ""),
            ("after_version", "-1"),
            ("after_version", "x"),
        ] {
            let problem = page(query(&[bad])).unwrap_err();
            assert_eq!(problem.status(), 422, "{bad:?}");
        }
    }
}

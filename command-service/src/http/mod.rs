//! The command service's REST API: task-based commands in, `{id, version}` plus `ETag` and
//! `X-Consistency-Token` out, problem+json for every error; and the audit trail of each
//! aggregate.

mod body;
mod current;
mod customers;
pub mod docs;
mod error;
mod history;
mod orders;
mod request;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{delete, get, post};
use platform::problem::Problem;
use rdkafka::producer::{FutureProducer, Producer};
use shared_events::AggregateType;
use sqlx::PgPool;
use uuid::Uuid;

use crate::commands::Commands;

pub use request::{CONSISTENCY_TOKEN, IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};

/// What every handler can reach, behind one `Arc`: handlers clone it for every request.
pub type AppState = Arc<Resources>;

/// The command service's commands and what its readiness checks.
pub struct Resources {
    /// Runs commands in transactions.
    pub commands: Commands,
    /// For readiness only.
    pub pool: PgPool,
    /// For readiness only: the relay's producer.
    pub producer: FutureProducer,
    /// The event topic, for readiness.
    pub topic: String,
}

impl std::fmt::Debug for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resources")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// All routes, wrapped in the shared HTTP edge.
pub fn router(state: AppState, edge: &platform::http::EdgeSettings) -> Router {
    let doc = openapi();
    let routes = Router::new()
        .route("/customers", post(customers::register))
        .route("/customers/{id}/rename", post(customers::rename))
        .route(
            "/customers/{id}/change-email",
            post(customers::change_email),
        )
        .route("/customers/{id}", get(current::customer))
        .route("/customers/{id}/events", get(history::customer_events))
        .route("/orders", post(orders::place))
        .route("/orders/{id}", get(current::order))
        .route("/orders/{id}/items", post(orders::add_item))
        .route("/orders/{id}/items/{sku}", delete(orders::remove_item))
        .route("/orders/{id}/confirm", post(orders::confirm))
        .route("/orders/{id}/ship", post(orders::ship))
        .route("/orders/{id}/deliver", post(orders::deliver))
        .route("/orders/{id}/cancel", post(orders::cancel))
        .route("/orders/{id}/events", get(history::order_events))
        .route("/healthz", get(platform::http::healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
        .merge(platform::openapi::routes(
            doc.clone(),
            "Order platform: command service",
        ));
    platform::http::edge(routes, edge, &doc)
}

/// The command API's OpenAPI 3.1 document, generated from the handlers and request types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Order platform: command service",
        description = "Task-based commands on orders and customers. Every accepted command answers with the \
            aggregate's new version (also its ETag) and an X-Consistency-Token for the query service. \
            Errors are RFC 9457 problems (application/problem+json)."
    ),
    paths(
        customers::register,
        customers::rename,
        customers::change_email,
        current::customer,
        history::customer_events,
        orders::place,
        current::order,
        orders::add_item,
        orders::remove_item,
        orders::confirm,
        orders::ship,
        orders::deliver,
        orders::cancel,
        history::order_events
    ),
    components(schemas(platform::openapi::ProblemSchema)),
    tags(
        (name = "orders", description = "Place orders and move them through their lifecycle"),
        (name = "customers", description = "Register customers and change their details")
    )
)]
struct ApiDoc;

/// The document served at `/openapi.json`, with the edge's error responses on every operation.
pub fn openapi() -> utoipa::openapi::OpenApi {
    platform::openapi::with_edge_responses(<ApiDoc as utoipa::OpenApi>::openapi())
}

/// The id in a path; an id that is not a UUID names no aggregate, so it is a 404.
fn path_id(raw: &str, aggregate: AggregateType) -> Result<Uuid, Problem> {
    Uuid::try_parse(raw).map_err(|_| error::not_found(aggregate, raw))
}

/// Ready when the write database answers and the broker has the topic.
async fn readyz(State(state): State<AppState>) -> Response {
    let database = platform::db::is_reachable(&state.pool).await;
    let producer = state.producer.clone();
    let topic = state.topic.clone();
    let broker = platform::kafka::sees_topic(move |timeout| {
        producer.client().fetch_metadata(Some(&topic), timeout)
    })
    .await;
    platform::http::readiness(&[("database", database), ("broker", broker)])
}

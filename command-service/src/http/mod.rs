//! The command service's REST API: task-based commands in, `{id, version}` plus `ETag` and
//! `X-Consistency-Token` out, problem+json for every error.

mod context;
mod error;
mod orders;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use rdkafka::producer::{FutureProducer, Producer};
use sqlx::PgPool;

use crate::commands::Commands;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Runs commands in transactions.
    pub commands: Commands,
    /// For readiness only.
    pub pool: PgPool,
    /// For readiness only: the relay's producer.
    pub producer: FutureProducer,
    /// The event topic, for readiness.
    pub topic: String,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// All routes, wrapped in the shared HTTP edge.
pub fn router(state: AppState, body_limit_bytes: usize) -> Router {
    let routes = Router::new()
        .route("/orders", post(orders::place_order))
        .route("/healthz", get(platform::http::healthz))
        .route("/readyz", get(readyz))
        .with_state(state);
    platform::http::edge(routes, body_limit_bytes)
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

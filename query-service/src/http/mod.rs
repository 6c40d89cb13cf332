//! The query service's REST API: the views, read-only, as JSON with their version as `ETag`.

mod orders;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use rdkafka::consumer::{Consumer, StreamConsumer};
use sqlx::PgPool;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The read database.
    pub pool: PgPool,
    /// For readiness only: the projector's consumer.
    pub consumer: Arc<StreamConsumer>,
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
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/orders/{id}", get(orders::order_detail))
        .route("/healthz", get(platform::http::healthz))
        .route("/readyz", get(readyz))
        .with_state(state);
    platform::http::edge(routes, 16 * 1024)
}

/// Ready when the read database answers and the broker has the topic.
async fn readyz(State(state): State<AppState>) -> Response {
    let database = platform::db::is_reachable(&state.pool).await;
    let consumer = state.consumer.clone();
    let topic = state.topic.clone();
    let broker =
        platform::kafka::sees_topic(move |timeout| consumer.fetch_metadata(Some(&topic), timeout))
            .await;
    platform::http::readiness(&[("database", database), ("broker", broker)])
}

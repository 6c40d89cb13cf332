//! The query service's REST API: the views, read-only, as JSON with an `ETag` (304 on a
//! matching `If-None-Match`), read-your-writes on request, live updates as Server-Sent Events,
//! and the operations on the projections under `/admin`.

mod admin;
mod batched;
mod caching;
pub mod consistency;
mod customers;
pub mod docs;
mod error;
mod orders;
mod params;
mod reports;
mod streams;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use rdkafka::consumer::Consumer;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::changes::ViewChanges;
use crate::consumer::ProjectorConsumer;
use crate::consumer::progress::Progress;
use crate::consumer::rebuild::Rebuild;
use batched::Batched;

pub use consistency::CONSISTENCY_TOKEN;
pub use streams::OpenStreams;

/// What every handler can reach, behind one `Arc`: handlers clone it for every request.
pub type AppState = Arc<Resources>;

/// The connections, settings and shared parts of the query service's HTTP API.
pub struct Resources {
    /// The read database (search path `public,views`), for what is not a view's read.
    pub pool: PgPool,
    /// The views' reads, which need no transaction (see [`platform::db::connections`]).
    pub reads: platform::db::connections::Connections,
    /// The views' reads, answered together (see [`batched`]).
    pub views: Views,
    /// The projector's consumer: readiness and watermarks.
    pub consumer: Arc<ProjectorConsumer>,
    /// The event topic.
    pub topic: String,
    /// View change notifications.
    pub changes: ViewChanges,
    /// The projector's offsets and rates.
    pub progress: Progress,
    /// Starts rebuilds.
    pub rebuild: Rebuild,
    /// Longest a read-your-writes wait lasts.
    pub consistency_wait: Duration,
    /// Ends live streams on shutdown.
    pub shutdown: CancellationToken,
    /// Not ready while the views lag more events than this behind the topic.
    pub ready_max_lag: i64,
    /// Issues the tickets browsers open streams with.
    pub tickets: crate::tickets::TicketStore,
    /// The streams each client has open here.
    pub streams: streams::OpenStreams,
}

/// The reads of each view that answers them together.
#[derive(Debug, Clone)]
pub struct Views {
    /// `GET /orders/{id}`.
    details: Batched<orders::OrderDetails>,
    /// `GET /customers/{id}`.
    profiles: Batched<customers::Profiles>,
    /// `GET /customers/{id}/orders`, and `GET /orders` naming a customer.
    customer_orders: Batched<customers::CustomerOrderPages>,
    /// `GET /dashboards/shipping`.
    shipping: Batched<reports::ShippingPages>,
    /// `GET /reports/daily-sales`.
    sales: Batched<reports::SalesReports>,
}

impl Views {
    /// Starts every view's readers, reading from `db`.
    pub fn start(db: &platform::db::connections::Connections) -> Views {
        Views {
            details: Batched::start(db),
            profiles: Batched::start(db),
            customer_orders: Batched::start(db),
            shipping: Batched::start(db),
            sales: Batched::start(db),
        }
    }
}

impl std::fmt::Debug for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resources")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// All routes, wrapped in the shared HTTP edge, which also accepts the service's stream tickets.
pub fn router(state: AppState, edge: &platform::http::EdgeSettings) -> Router {
    let doc = openapi();
    let mut edge = edge.clone();
    edge.auth.tickets = Some(Arc::new(state.tickets.clone()));
    let routes = Router::new()
        .route("/orders/{id}", get(orders::detail))
        .route("/stream-tickets", post(streams::ticket))
        .route("/orders/{id}/stream", get(streams::order))
        .route("/customers/{id}", get(customers::profile))
        .route("/customers/{id}/orders", get(customers::orders))
        .route(
            "/customers/{id}/orders/stream",
            get(streams::customer_orders),
        )
        .merge(back_office())
        .route("/healthz", get(platform::http::healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
        .merge(platform::openapi::routes(
            doc.clone(),
            "Order platform: query service",
        ));
    platform::http::edge(routes, &edge, &doc)
}

/// The back office's routes: order search, dashboards, reports and `/admin/*`, for callers
/// whose token has the `admin` scope (403 for customers).
fn back_office() -> Router<AppState> {
    Router::new()
        .route("/orders", get(orders::search))
        .route("/dashboards/shipping", get(reports::shipping))
        .route("/reports/daily-sales", get(reports::daily_sales))
        .route("/admin/dead-letters", get(admin::list_dead_letters))
        .route(
            "/admin/dead-letters/{id}/retry",
            post(admin::retry_dead_letter),
        )
        .route(
            "/admin/dead-letters/{id}/discard",
            post(admin::discard_dead_letter),
        )
        .route("/admin/projections", get(admin::projections))
        .route("/admin/projections/rebuild", post(admin::rebuild))
        .route_layer(axum::middleware::from_fn(platform::auth::admin_only))
}

/// The query API's OpenAPI 3.1 document, generated from the handlers and view types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Order platform: query service",
        description = "Denormalized views of orders and customers, updated from the event topic. Every view has an \
            ETag (304 on If-None-Match); send a command's X-Consistency-Token to read your own write. \
            Errors are RFC 9457 problems (application/problem+json)."
    ),
    paths(
        orders::detail, orders::search, customers::profile, customers::orders,
        streams::ticket, streams::order, streams::customer_orders,
        reports::shipping, reports::daily_sales,
        admin::list_dead_letters, admin::retry_dead_letter, admin::discard_dead_letter, admin::projections, admin::rebuild
    ),
    components(schemas(platform::openapi::ProblemSchema)),
    tags(
        (name = "orders", description = "Order screens"),
        (name = "customers", description = "Customer screens"),
        (name = "streams", description = "Live views (Server-Sent Events) and the tickets browsers open them with"),
        (name = "back office", description = "Dashboards and reports"),
        (name = "operations", description = "Dead letters, projector status, rebuilds")
    )
)]
struct ApiDoc;

/// The document served at `/openapi.json`, with the edge's error responses on every operation.
pub fn openapi() -> utoipa::openapi::OpenApi {
    platform::openapi::with_edge_responses(<ApiDoc as utoipa::OpenApi>::openapi())
}

/// Ready when the read database answers, the broker has the topic, and this replica's
/// partitions are at most `READY_MAX_LAG_EVENTS` behind (a replica catching up takes no
/// traffic).
async fn readyz(State(state): State<AppState>) -> Response {
    let database = platform::db::is_reachable(&state.pool).await;
    let consumer = state.consumer.clone();
    let topic = state.topic.clone();
    let broker =
        platform::kafka::sees_topic(move |timeout| consumer.fetch_metadata(Some(&topic), timeout))
            .await;
    let lag = state
        .progress
        .lag_of_assigned()
        .is_some_and(|lag| lag <= state.ready_max_lag);
    platform::http::readiness(&[("database", database), ("broker", broker), ("lag", lag)])
}

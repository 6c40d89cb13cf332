//! The naive baseline the read path is measured against (issue #15): a bare axum handler that
//! reads the same row of the same view with sqlx's default pool and answers it, with nothing
//! else (no authentication, limits, metrics, tracing, ETag or problem documents). What a
//! hand-written CQRS read model costs; `scripts/bench report` serves it beside the query
//! service and reads both in one run.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sqlx::PgPool;
use uuid::Uuid;

/// Serves `GET /orders/{id}` from `database_url` (the query service's read database) on
/// `addr` until the process ends.
pub async fn serve(addr: &str, database_url: &str) -> anyhow::Result<()> {
    let options: sqlx::postgres::PgConnectOptions = database_url.parse()?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .connect_with(options.options([("search_path", "public,views")]))
        .await?;
    let app = axum::Router::new()
        .route("/orders/{id}", axum::routing::get(order))
        .with_state(pool);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("baseline listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn order(State(pool): State<PgPool>, Path(id): Path<Uuid>) -> Response {
    let row: Result<Option<(String,)>, _> =
        sqlx::query_as("SELECT body::text FROM order_detail WHERE order_id = $1")
            .bind(id)
            .fetch_optional(&pool)
            .await;
    match row {
        Ok(Some((body,))) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

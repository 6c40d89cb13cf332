//! `GET /orders/{id}`: the order detail view.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::problem::Problem;
use uuid::Uuid;

use super::AppState;
use crate::projections::order_detail;

/// 200 with the stored document and `ETag: "<version>"`; 404 problem for an unknown (or
/// malformed) id.
pub async fn order_detail(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let not_found = || {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Order not found")
            .with_detail(format!(
                "No order with id {id:?} is known to the query service (yet)."
            ))
            .into_response()
    };
    let Ok(order_id) = Uuid::try_parse(&id) else {
        return not_found();
    };
    match order_detail::find(&state.pool, order_id).await {
        Ok(Some((version, body))) => {
            let mut response = (StatusCode::OK, body).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if let Ok(etag) = HeaderValue::from_str(&format!("\"{version}\"")) {
                headers.insert(header::ETAG, etag);
            }
            response
        }
        Ok(None) => not_found(),
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "read order detail");
            Problem::internal().into_response()
        }
    }
}

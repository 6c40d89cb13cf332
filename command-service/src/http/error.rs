//! How command errors become problem responses. Unexpected errors answer a generic 500 and log
//! their whole cause chain inside the request's span.

use axum::response::{IntoResponse, Response};
use platform::problem::Problem;

use crate::commands::CommandError;

impl IntoResponse for CommandError {
    fn into_response(self) -> Response {
        match self {
            CommandError::Unexpected(error) => {
                tracing::error!(error = format!("{error:#}"), "command failed");
                Problem::internal().into_response()
            }
        }
    }
}

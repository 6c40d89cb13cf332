//! The request facts a command carries into its events: correlation, causation, trace context.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{SubsecRound, Utc};
use platform::http::REQUEST_ID;

use crate::commands::CommandContext;

const TRACEPARENT: &str = "traceparent";

impl<S: Send + Sync> FromRequestParts<S> for CommandContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        // The edge sets a request id when the caller did not send one.
        let request_id = header(REQUEST_ID.as_str()).unwrap_or_default();
        let traceparent = header(TRACEPARENT).filter(|t| trace_id(t).is_some());
        let correlation_id = traceparent
            .as_deref()
            .and_then(trace_id)
            .map(str::to_owned)
            .unwrap_or_else(|| request_id.clone());
        Ok(CommandContext {
            correlation_id,
            causation_id: request_id,
            traceparent,
            // PostgreSQL keeps microseconds; events and stored state must carry the same instant.
            now: Utc::now().trunc_subsecs(6),
        })
    }
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), if well-formed.
fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    let valid = hex(version, 2)
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && parts.next().is_none();
    (valid && trace.bytes().any(|b| b != b'0')).then_some(trace)
}

#[cfg(test)]
mod tests {
    use super::trace_id;

    #[test]
    fn reads_the_trace_id_of_valid_traceparents_only() {
        assert_eq!(
            trace_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(
            trace_id("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(trace_id("garbage"), None);
        assert_eq!(
            trace_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"),
            None
        );
    }
}

//! The HTTP edge both services share: JSON bodies whose errors are problem responses, request
//! ids, one tracing span per request, a body size limit, panics turned into a generic 500, and
//! every framework-made error (404, 405, 413, 415, …) rewritten as problem+json.
//!
//! Routes and handlers live in the services; this module only wraps them.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::path::ParameterIn;

use crate::auth::AuthSettings;

use crate::problem::{self, FieldError, Problem};

/// The request id header: taken from the caller when present, otherwise generated, and echoed on
/// the response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A command response's token, sent back to the query service to read that write.
pub const CONSISTENCY_TOKEN: HeaderName = HeaderName::from_static("x-consistency-token");
/// The client's key that makes a command safe to retry.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// `true` on a command response replayed for a retried `Idempotency-Key`.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// W3C trace context of the caller.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// Where an `EventSource` resumes a live stream.
pub const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// The request headers the APIs read, which a browser may send cross-origin.
pub const REQUEST_HEADERS: [HeaderName; 9] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    IDEMPOTENCY_KEY,
    CONSISTENCY_TOKEN,
    REQUEST_ID,
    TRACEPARENT,
    LAST_EVENT_ID,
];

/// The response headers the APIs document, which scripts in a browser may read.
pub const RESPONSE_HEADERS: [HeaderName; 6] = [
    header::ETAG,
    header::LOCATION,
    header::RETRY_AFTER,
    CONSISTENCY_TOKEN,
    IDEMPOTENT_REPLAYED,
    REQUEST_ID,
];

/// Parses a JSON request body. Every way it can be wrong is answered with a problem: 415
/// without a JSON content type, 400 for JSON that does not parse, 422 naming the field for JSON
/// of the wrong shape.
pub fn parse_json<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, Problem> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| mime.trim().to_ascii_lowercase())
        .is_some_and(|mime| {
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        });
    if !is_json {
        return Err(not_json());
    }
    if json_depth(body) > MAX_JSON_DEPTH {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "json-too-deep",
            "The request body nests too deeply",
        )
        .with_detail(format!("JSON may nest at most {MAX_JSON_DEPTH} levels.")));
    }
    axum::Json::<T>::from_bytes(body)
        .map(|axum::Json(value)| value)
        .map_err(json_problem)
}

/// The deepest nesting of arrays and objects a request body may have; no request type needs
/// more than a few levels.
const MAX_JSON_DEPTH: usize = 32;

/// How deeply `body` nests arrays and objects (brackets inside strings do not count). Stops
/// counting just past [`MAX_JSON_DEPTH`].
fn json_depth(body: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &byte in body {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > MAX_JSON_DEPTH {
                    break;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn json_problem(rejection: JsonRejection) -> Problem {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            // axum reports the path of the offending field through serde_path_to_error:
            // "Failed to deserialize the JSON body into the target type: items[0].quantity: ..."
            let text = e.body_text();
            let reason = text
                .split_once("target type: ")
                .map_or(text.as_str(), |(_, r)| r);
            let (path, message) = match reason.split_once(": ") {
                Some((path, message)) if !path.contains(' ') => (path, message),
                _ => ("", reason),
            };
            Problem::validation(vec![FieldError::new(field_of(path, message), message)])
        }
        JsonRejection::JsonSyntaxError(e) => Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "The request body is not valid JSON",
        )
        .with_detail(e.body_text()),
        JsonRejection::MissingJsonContentType(_) => not_json(),
        other => Problem::from_status(other.status()).with_detail(other.body_text()),
    }
}

fn not_json() -> Problem {
    Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Expected a JSON body",
    )
    .with_detail("Send the body with `Content-Type: application/json`.")
}

/// The field a serde error is about: its path, extended by the name of a missing or unknown
/// field (serde reports those at the parent's path).
fn field_of(path: &str, message: &str) -> String {
    let path = path.trim_matches('.');
    let missing = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name)
        // An unknown field's path already ends with its name.
        .filter(|name| path != *name && !path.ends_with(&format!(".{name}")));
    match missing {
        Some(name) if path.is_empty() => name.to_owned(),
        Some(name) => format!("{path}.{name}"),
        None => path.to_owned(),
    }
}

/// Settings of the HTTP edge, shared by both services.
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    /// Largest accepted request body (`HTTP_BODY_LIMIT_BYTES`, default 65536); 413 above.
    pub body_limit_bytes: usize,
    /// Largest accepted request head: the target plus every header name and value
    /// (`HTTP_HEADER_LIMIT_BYTES`, default 16384); 431 above.
    pub header_limit_bytes: usize,
    /// Longest a request may take until its response starts (`HTTP_REQUEST_TIMEOUT_MS`,
    /// default 10000); 503 after it. Streams, once started, are not cut.
    pub request_timeout: Duration,
    /// Origins allowed to call the API from a browser (`CORS_ALLOWED_ORIGINS`, comma-separated;
    /// empty, the default, turns CORS off).
    pub cors_allowed_origins: Vec<HeaderValue>,
    /// Who may call, and how often (see [`crate::auth`]).
    pub auth: AuthSettings,
    /// What a connection may cost before it sends a request (see [`crate::serve`]).
    pub connections: crate::serve::ConnectionLimits,
}

impl EdgeSettings {
    /// The defaults, with `auth`.
    pub fn with_auth(auth: AuthSettings) -> Self {
        EdgeSettings {
            body_limit_bytes: 64 * 1024,
            header_limit_bytes: 16 * 1024,
            request_timeout: Duration::from_secs(10),
            cors_allowed_origins: Vec::new(),
            auth,
            connections: crate::serve::ConnectionLimits::default(),
        }
    }

    /// Reads `HTTP_BODY_LIMIT_BYTES`, `HTTP_HEADER_LIMIT_BYTES`, `HTTP_REQUEST_TIMEOUT_MS`,
    /// `CORS_ALLOWED_ORIGINS`, the connection limits ([`crate::serve::ConnectionLimits`]) and the
    /// authentication settings ([`AuthSettings::from_env`]).
    pub fn from_env() -> Result<Self, crate::config::ConfigError> {
        let origins: String = crate::config::var("CORS_ALLOWED_ORIGINS", String::new())?;
        let cors_allowed_origins = origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| {
                HeaderValue::from_str(o).map_err(|_| crate::config::ConfigError {
                    name: "CORS_ALLOWED_ORIGINS".into(),
                    reason: format!("{o:?} is not a valid origin"),
                })
            })
            .collect::<Result<_, _>>()?;
        let defaults = EdgeSettings::with_auth(AuthSettings::from_env()?);
        Ok(EdgeSettings {
            body_limit_bytes: crate::config::var(
                "HTTP_BODY_LIMIT_BYTES",
                defaults.body_limit_bytes,
            )?,
            header_limit_bytes: crate::config::var(
                "HTTP_HEADER_LIMIT_BYTES",
                defaults.header_limit_bytes,
            )?,
            request_timeout: Duration::from_millis(crate::config::var(
                "HTTP_REQUEST_TIMEOUT_MS",
                10_000,
            )?),
            cors_allowed_origins,
            connections: crate::serve::ConnectionLimits::from_env()?,
            ..defaults
        })
    }
}

/// The query parameters of each operation, read from the service's OpenAPI document: the one
/// place they are declared. Keyed by method and route template (`/orders/{id}`).
#[derive(Debug, Clone, Default)]
struct QueryParameters(Arc<HashMap<(Method, String), Vec<String>>>);

impl QueryParameters {
    fn of(doc: &utoipa::openapi::OpenApi) -> QueryParameters {
        let mut known = HashMap::new();
        for (path, item) in &doc.paths.paths {
            let operations = [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::DELETE, &item.delete),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else { continue };
                let names = operation
                    .parameters
                    .iter()
                    .flatten()
                    .filter(|p| matches!(p.parameter_in, ParameterIn::Query))
                    .map(|p| p.name.clone())
                    .collect();
                known.insert((method, path.clone()), names);
            }
        }
        QueryParameters(Arc::new(known))
    }

    /// A field error for each parameter of `query` that the operation does not take. A method
    /// the document does not list for a documented route is left alone: routing answers it
    /// 405. Routes the document leaves out (the probes, `/docs`) take no parameters.
    fn unknown(&self, method: &Method, route: &str, query: &str) -> Vec<FieldError> {
        let method = if *method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        let known = self.0.get(&(method.clone(), route.to_owned()));
        let documented_route = || self.0.keys().any(|(_, path)| path == route);
        if known.is_none() && (*method != Method::GET || documented_route()) {
            return Vec::new();
        }
        let mut unknown: Vec<String> = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| !known.is_some_and(|k| k.contains(name)))
            .collect();
        unknown.dedup();
        unknown
            .into_iter()
            .map(|name| {
                let takes = known.filter(|k| !k.is_empty()).map_or_else(
                    || "this operation takes no query parameters".to_owned(),
                    |k| format!("unknown parameter; this operation takes {}", k.join(", ")),
                );
                FieldError::new(name, takes)
            })
            .collect()
    }
}

/// Refuses a query string naming a parameter the operation does not take (a typo must not
/// change what a request means: `?stauts=cancelled` would otherwise list every order).
async fn refuse_unknown_parameters(
    axum::extract::State(parameters): axum::extract::State<QueryParameters>,
    route: Option<axum::extract::MatchedPath>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    if let (Some(query), Some(route)) = (request.uri().query(), route) {
        let unknown = parameters.unknown(request.method(), route.as_str(), query);
        if !unknown.is_empty() {
            return Problem::validation(unknown).into_response();
        }
    }
    next.run(request).await
}

/// Wraps a service's routes with the shared edge: problem+json for every error response, a 404
/// problem for unknown paths, request ids, per-request spans, a body limit and panic recovery.
/// `doc` is the service's OpenAPI document: query parameters it does not declare are refused.
pub fn edge(router: Router, settings: &EdgeSettings, doc: &utoipa::openapi::OpenApi) -> Router {
    crate::metrics::handle();
    let router = router.route_layer(axum::middleware::from_fn_with_state(
        QueryParameters::of(doc),
        refuse_unknown_parameters,
    ));
    let gate = crate::auth::Gate::new(settings.auth.clone());
    let router = router.layer(axum::middleware::from_fn_with_state(
        gate,
        crate::auth::authenticate,
    ));
    let router = if settings.cors_allowed_origins.is_empty() {
        router
    } else {
        router.layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(settings.cors_allowed_origins.clone())
                .allow_methods(tower_http::cors::Any)
                // Named, not `*`: the Fetch standard never lets `*` cover Authorization.
                .allow_headers(REQUEST_HEADERS)
                .expose_headers(RESPONSE_HEADERS)
                .max_age(Duration::from_secs(600)),
        )
    };
    router
        .route("/metrics", axum::routing::get(crate::metrics::render))
        .route_layer(axum::middleware::from_fn(crate::metrics::record_http))
        .fallback(|| async { Problem::from_status(StatusCode::NOT_FOUND).with_detail("No such resource.") })
        .layer(axum::middleware::map_response(problem_for_every_error))
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes))
        .layer(CatchPanicLayer::custom(panic_problem))
        .layer(axum::middleware::from_fn_with_state(
            RequestLimits {
                head_bytes: settings.header_limit_bytes,
                time: settings.request_timeout,
            },
            limit_request,
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
            let request_id = header(REQUEST_ID.as_str());
            let trace_id = trace_id(header("traceparent")).unwrap_or_default();
            let span = tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id, trace_id);
            crate::telemetry::continue_trace(&span, header("traceparent"));
            span
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// What one request may take: its head's size and the time until its response starts.
#[derive(Debug, Clone, Copy)]
struct RequestLimits {
    head_bytes: usize,
    time: Duration,
}

/// Refuses a request whose target and headers together exceed the limit with 431, and answers
/// 503 with `Retry-After` when the response has not started in time. A command keeps running to
/// its commit or rollback regardless (the command service runs each on a task of its own), so a
/// retry with the same `Idempotency-Key` gets its outcome. One layer for both, as every layer
/// costs each request a boxed future.
async fn limit_request(
    axum::extract::State(limits): axum::extract::State<RequestLimits>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |t| t.as_str().len());
    let size = target
        + request
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum::<usize>();
    if size > limits.head_bytes {
        return Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            "The request's headers are too large",
        )
        .with_detail(format!(
            "The target and headers may take at most {} bytes.",
            limits.head_bytes
        ))
        .into_response();
    }
    match tokio::time::timeout(limits.time, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "request-timeout",
            "The request took too long",
        )
        .with_detail(format!(
            "No response within {} ms; retry shortly (with the same Idempotency-Key for a command).",
            limits.time.as_millis()
        ))
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
        .into_response(),
    }
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), if well-formed.
pub fn trace_id(traceparent: &str) -> Option<&str> {
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

fn panic_problem(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = message, "request handler panicked");
    Problem::internal().into_response()
}

/// Rewrites error responses that are not problem+json yet (those made by axum's extractors and
/// routing, or by tower-http layers) into problems that keep their status and carry their text as
/// `detail`.
async fn problem_for_every_error(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == problem::CONTENT_TYPE.as_bytes());
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .unwrap_or_else(|_| Bytes::new());
    let mut problem = Problem::from_status(status);
    if let Ok(text) = std::str::from_utf8(&text)
        && !text.trim().is_empty()
    {
        problem = problem.with_detail(text.trim());
    }
    let mut rewritten = problem.into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name, value.clone());
        }
    }
    rewritten
}

/// `GET /healthz`: the process is alive and serving HTTP. Says nothing about dependencies;
/// that is `/readyz`'s job.
pub async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// The `/readyz` answer: 200 when every check passed, otherwise a 503 problem; both list each
/// check as `"ok"` or `"failing"`.
pub fn readiness(checks: &[(&str, bool)]) -> Response {
    let results: serde_json::Map<String, serde_json::Value> = checks
        .iter()
        .map(|(name, ok)| {
            (
                (*name).to_owned(),
                (if *ok { "ok" } else { "failing" }).into(),
            )
        })
        .collect();
    if checks.iter().all(|(_, ok)| *ok) {
        axum::Json(serde_json::json!({ "status": "ready", "checks": results })).into_response()
    } else {
        let failing: Vec<&str> = checks
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(name, _)| *name)
            .collect();
        tracing::info!(?failing, "not ready");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "A dependency is unavailable",
        )
        .with("checks", results)
        .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_JSON_DEPTH, field_of, json_depth, trace_id};

    #[test]
    fn measures_json_nesting_outside_strings() {
        assert_eq!(json_depth(br#"{"a":[1,{"b":"[[[{"}]}"#), 3);
        assert_eq!(json_depth(br#"{"a":"\"[["}"#), 1);
        let deep = "[".repeat(10_000);
        assert_eq!(json_depth(deep.as_bytes()), MAX_JSON_DEPTH + 1);
    }

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

    #[test]
    fn missing_fields_are_named_with_their_path() {
        assert_eq!(
            field_of("", "missing field `customer_id` at line 1 column 2"),
            "customer_id"
        );
        assert_eq!(
            field_of("items[0]", "missing field `sku` at line 1 column 9"),
            "items[0].sku"
        );
        assert_eq!(
            field_of(
                "shipping_address.nmae",
                "unknown field `nmae`, expected one of `name`, `street`"
            ),
            "shipping_address.nmae"
        );
        assert_eq!(field_of("curency", "unknown field `curency`"), "curency");
        assert_eq!(
            field_of(
                "items[1].quantity",
                "invalid type: string \"x\", expected i64"
            ),
            "items[1].quantity"
        );
    }
}

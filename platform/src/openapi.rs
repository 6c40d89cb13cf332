//! What both services' OpenAPI documents share: the problem schema, the error responses every
//! operation can give, and the routes that serve the document (`/openapi.json`) and a
//! human-readable page (`/docs`, rendered in the browser by a script the service serves).

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::openapi::path::{Operation, Parameter};
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};

/// The name of the bearer JWT security scheme.
const BEARER: &str = "bearer";

/// An RFC 9457 problem, as every error response carries it (`application/problem+json`).
/// Problems of a kind may add members (e.g. `current_version`, `rule`).
#[derive(Debug, utoipa::ToSchema)]
#[schema(as = Problem)]
pub struct ProblemSchema {
    /// Kind of problem: a relative URI such as `/problems/validation`, or `about:blank`.
    #[schema(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence.
    pub detail: Option<String>,
    /// Field-level errors of a validation failure.
    pub errors: Option<Vec<crate::problem::FieldError>>,
}

fn problem_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            crate::problem::CONTENT_TYPE,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
        .into()
}

/// Adds the error responses the HTTP edge can give to every operation that does not document
/// them itself: 401, 403, 422, 429, 431, 500 and 503 everywhere; 400, 413 and 415 where there
/// is a request body. Declares the bearer JWT every documented operation needs, and types
/// optional parameters without `null` (see `not_null`).
pub fn with_edge_responses(mut doc: OpenApi) -> OpenApi {
    doc.components.get_or_insert_with(Default::default).add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some("A JWT whose `scope` includes `admin`, or `customer` with the customer id as `sub` (see the README's Security section)."))
                .build(),
        ),
    );
    doc.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
    let description = doc.info.description.get_or_insert_with(String::new);
    description.push_str(
        " Body fields and query parameters this document does not declare are refused with 422, \
         naming each (a typo must not change what a request means).",
    );
    for item in doc.paths.paths.values_mut() {
        let operations: [&mut Option<Operation>; 4] = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            for parameter in operation.parameters.iter_mut().flatten() {
                not_null(parameter);
            }
            let has_body = operation.request_body.is_some();
            let responses = &mut operation.responses.responses;
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| problem_response(description));
            };
            add("401", "No valid bearer token (see `WWW-Authenticate`).");
            add(
                "403",
                "The token's scope does not allow this (back-office routes need `admin`).",
            );
            add(
                "429",
                "This client is over its rate limit; retry after `Retry-After` seconds.",
            );
            add(
                "431",
                "The request's headers are larger than HTTP_HEADER_LIMIT_BYTES.",
            );
            add(
                "503",
                "The request took longer than HTTP_REQUEST_TIMEOUT_MS, or a dependency is unavailable.",
            );
            add(
                "500",
                "Unexpected failure; the problem says nothing about the cause, the log has it under the request id.",
            );
            add(
                "422",
                "A field or query parameter is invalid or unknown; `errors` names each one.",
            );
            if has_body {
                add("400", "The body is not valid JSON.");
                add("413", "The body is larger than HTTP_BODY_LIMIT_BYTES.");
                add("415", "The body is not sent as application/json.");
            }
        }
    }
    doc
}

/// A parameter is a string in the request or absent, never `null`: utoipa types an optional
/// (`Option<T>`) parameter as `[T, "null"]`, which tells clients (and fuzzers) that the text
/// `null` is a valid value. Keeps `T`.
fn not_null(parameter: &mut Parameter) {
    if let Some(RefOr::T(Schema::Object(schema))) = &mut parameter.schema
        && let SchemaType::Array(types) = &schema.schema_type
    {
        let mut types: Vec<Type> = types
            .iter()
            .filter(|t| **t != Type::Null)
            .cloned()
            .collect();
        schema.schema_type = match types.len() {
            1 => SchemaType::Type(types.remove(0)),
            _ => SchemaType::Array(types),
        };
    }
}

/// `GET /openapi.json` (the document) and `GET /docs` (a page rendering it, whose script and
/// style the service serves itself: the page works offline and runs no third party's code).
pub fn routes(doc: OpenApi, title: &'static str) -> Router {
    let json = doc.to_json().unwrap_or_default();
    let page = include_str!("docs/index.html").replace("{title}", &escape_html(title));
    Router::new()
        .route(
            "/openapi.json",
            get(move || {
                let json = json.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], json).into_response() }
            }),
        )
        .route(
            "/docs",
            get(move || {
                let page = page.clone();
                async move { asset("text/html; charset=utf-8", page) }
            }),
        )
        .route(
            "/docs/docs.js",
            get(|| async {
                asset(
                    "text/javascript; charset=utf-8",
                    include_str!("docs/docs.js"),
                )
            }),
        )
        .route(
            "/docs/docs.css",
            get(|| async { asset("text/css; charset=utf-8", include_str!("docs/docs.css")) }),
        )
}

/// What the documentation page may load and do: this origin's script, style and
/// `openapi.json`, nothing else; no framing.
const DOCS_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

fn asset(
    content_type: &'static str,
    body: impl Into<axum::body::Body>,
) -> axum::response::Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, DOCS_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body.into(),
    )
        .into_response()
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

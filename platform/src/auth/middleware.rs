//! The edge's authentication layer: who the caller is (bearer token, ticket, or an admin when
//! authentication is off), the client a request counts against, and the 401/403/429 answers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::jwt::TokenError;
use super::rate_limit::{FAILURE_SHARE, Gate, too_many_requests};
use super::{Caller, Client, Mode};
use crate::problem::Problem;

/// Paths anyone may call: probes, metrics and the API documents.
const PUBLIC_PATHS: [&str; 5] = ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"];

/// Middleware: authenticates every request but those to [`PUBLIC_PATHS`], puts the [`Caller`]
/// and the [`Client`] it counts against into the request's extensions, and applies the
/// per-client rate limit (keyed by the token's subject, or by the peer address when
/// authentication is off). Without `Authorization`, a `ticket` query parameter is redeemed by
/// the service's [`Tickets`].
pub async fn authenticate(
    State(gate): State<Arc<Gate>>,
    mut request: Request,
    next: Next,
) -> Response {
    if PUBLIC_PATHS.contains(&request.uri().path()) || request.uri().path().starts_with("/docs/") {
        return next.run(request).await;
    }
    let (caller, client) = match &gate.settings.mode {
        Mode::Disabled => (Caller::Admin, client_address(&gate, &request)),
        Mode::Jwt(verifier) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            let verified = match (bearer(request.headers()), &gate.settings.tickets) {
                (Some(token), _) => Some(verifier.verify(token, now)),
                (None, Some(tickets)) => match ticket(request.uri().query()) {
                    Some(ticket) => match tickets.redeem(ticket, request.uri().path()).await {
                        Ok(redeemed) => Some(redeemed.ok_or(TokenError::Ticket)),
                        Err(problem) => return problem.into_response(),
                    },
                    None => None,
                },
                (None, None) => None,
            };
            match verified {
                Some(Ok((caller, subject))) => (caller, subject),
                Some(Err(TokenError::Role)) => return forbidden(TokenError::Role),
                failed => {
                    // Failures count against the caller's address at a tenth of the rate, so
                    // guessing tokens (and making the service check signatures) stays slow.
                    let client = format!(
                        "failed authentication from {}",
                        client_address(&gate, &request)
                    );
                    if let Err(wait) = gate.take(&client, Instant::now(), FAILURE_SHARE) {
                        return too_many_requests(&gate, wait, FAILURE_SHARE);
                    }
                    return unauthorized(failed.and_then(Result::err));
                }
            }
        }
    };
    if let Err(wait) = gate.take(&client, Instant::now(), 1.0) {
        return too_many_requests(&gate, wait, 1.0);
    }
    request.extensions_mut().insert(caller);
    request.extensions_mut().insert(Client(client));
    next.run(request).await
}

/// The `ticket` query parameter, if the query has one.
pub(super) fn ticket(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("ticket="))
        .filter(|t| !t.is_empty())
}

/// The address the request came from, as text: the peer, or the client behind a trusted proxy.
fn client_address(gate: &Gate, request: &Request) -> String {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| {
            let proxies = &gate.settings.trusted_proxies;
            proxies.client(addr.ip(), request.headers()).to_string()
        })
        .unwrap_or_default()
}

/// Route middleware: lets only admins through, 403 for everyone else. Runs after
/// [`authenticate`], which put the caller into the request.
pub async fn admin_only(request: Request, next: Next) -> Response {
    match request.extensions().get::<Caller>() {
        Some(caller) => match caller.require_admin() {
            Ok(()) => next.run(request).await,
            Err(problem) => problem.into_response(),
        },
        None => Problem::internal().into_response(),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn unauthorized(error: Option<TokenError>) -> Response {
    let challenge = match error {
        None => r#"Bearer realm="order-platform""#.to_owned(),
        Some(_) => r#"Bearer realm="order-platform", error="invalid_token""#.to_owned(),
    };
    let detail = error.map_or_else(
        || "Send `Authorization: Bearer <JWT>`.".to_owned(),
        |e| format!("{e}."),
    );
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Authentication required",
    )
    .with_detail(detail)
    .with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&challenge).unwrap_or(HeaderValue::from_static("Bearer")),
    )
    .into_response()
}

fn forbidden(error: TokenError) -> Response {
    Problem::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "The token grants no access here",
    )
    .with_detail(format!("{error}."))
    .with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Bearer realm="order-platform", error="insufficient_scope""#),
    )
    .into_response()
}

//! Who is calling, and how often: bearer JWTs checked for signature, issuer, audience and
//! expiry (with bounded clock skew) and turned into a [`Caller`]; and a per-client rate limit.
//! A service may also accept [`Tickets`] where a bearer header cannot be sent (a browser's
//! `EventSource`): short-lived, single-purpose credentials it issued to an authenticated caller.
//!
//! Two roles, taken from the token's space-separated `scope` claim: `admin` (the back office)
//! and `customer`, whose subject (`sub`) is their customer id. The services decide per route
//! what each role may do; this module only says who the caller is.
//!
//! Tokens are verified with OpenSSL (already linked for TLS to PostgreSQL and Kafka): HMAC-SHA256
//! with a shared secret, or RSASSA-PKCS1-v1_5 SHA-256 with a public key. The algorithm is fixed
//! by configuration, never taken from the token, so an `alg: none` or HS256-signed-with-the-
//! public-key token is refused.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Public};
use openssl::sign::{Signer, Verifier};
use serde::Deserialize;
use uuid::Uuid;

use crate::config::{self, ConfigError};
use crate::problem::Problem;

/// Paths anyone may call: probes, metrics and the API documents.
const PUBLIC_PATHS: [&str; 5] = ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"];
/// Tokens longer than this are refused unread.
const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The largest clock skew that may be configured.
const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// Buckets kept before idle ones are dropped.
const MAX_TRACKED_CLIENTS: usize = 10_000;

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// `scope` includes `admin` (or authentication is disabled): may do everything.
    Admin,
    /// `scope` includes `customer`: may act only for this customer id (the token's `sub`).
    Customer(Uuid),
}

impl Caller {
    /// Whether the caller may see and act for `customer`.
    pub fn acts_for(&self, customer: Uuid) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Customer(id) => *id == customer,
        }
    }

    /// `Ok` for an admin; a 403 problem for anyone else.
    pub fn require_admin(&self) -> Result<(), Problem> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Customer(_) => Err(Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "This resource is for administrators",
            )
            .with_detail("The token's scope does not include `admin`.")),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().copied().ok_or_else(|| {
            tracing::error!(path = %parts.uri.path(), "a route that needs a caller is not behind authentication");
            Problem::internal()
        })
    }
}

/// Who a request counts against: the token's subject, or the client's address when
/// authentication is off. Put into the request's extensions by [`authenticate`] beside the
/// [`Caller`], for limits per caller (the rate limit, the query service's open streams).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Client(pub String);

/// What a ticket stands for once redeemed: the caller and the subject it counts against.
pub type Redeemed = Option<(Caller, String)>;

/// Credentials a service issues itself for requests that cannot carry a bearer token: a
/// request without `Authorization` but with a `ticket` query parameter is authenticated by
/// [`Tickets::redeem`].
pub trait Tickets: Send + Sync + std::fmt::Debug {
    /// Who `ticket` stands for on `path`: `None` when it is unknown, expired or for another
    /// path; an error when that cannot be told (the database is unavailable).
    fn redeem<'a>(
        &'a self,
        ticket: &'a str,
        path: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Redeemed, Problem>> + Send + 'a>>;
}

/// How callers are authenticated and limited.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    mode: Mode,
    /// Requests per second and burst allowed per client; `None` turns the limit off.
    pub rate_limit: Option<RateLimit>,
    /// Reverse proxies whose `X-Forwarded-For` names the client a limit is keyed by.
    pub trusted_proxies: crate::peer::TrustedProxies,
    /// Tickets the service accepts besides bearer tokens, if any.
    pub tickets: Option<Arc<dyn Tickets>>,
}

#[derive(Debug, Clone)]
enum Mode {
    /// `AUTH_MODE=disabled`: every caller is an admin. Local development only.
    Disabled,
    /// `AUTH_MODE=jwt` (the default).
    Jwt(Arc<TokenVerifier>),
}

/// A sustained rate and a burst, per client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per second, sustained.
    pub per_second: f64,
    /// Requests allowed at once after being idle.
    pub burst: f64,
}

impl AuthSettings {
    /// Authentication off: every caller is an admin. For local development and benchmarks;
    /// the services say so loudly at start-up.
    pub fn disabled() -> AuthSettings {
        AuthSettings {
            mode: Mode::Disabled,
            rate_limit: None,
            trusted_proxies: Default::default(),
            tickets: None,
        }
    }

    /// Bearer JWTs checked by `verifier`.
    pub fn jwt(verifier: TokenVerifier) -> AuthSettings {
        AuthSettings {
            mode: Mode::Jwt(Arc::new(verifier)),
            rate_limit: None,
            trusted_proxies: Default::default(),
            tickets: None,
        }
    }

    /// The same settings with a per-client rate limit.
    pub fn with_rate_limit(mut self, limit: Option<RateLimit>) -> AuthSettings {
        self.rate_limit = limit;
        self
    }

    /// Reads `AUTH_MODE` (`jwt`, the default, or `disabled`), the key and claims settings
    /// (`AUTH_JWT_HS256_SECRET` or `AUTH_JWT_RS256_PUBLIC_KEY` / `AUTH_JWT_RS256_PUBLIC_KEY_FILE`,
    /// `AUTH_JWT_ISSUER`, `AUTH_JWT_AUDIENCE`, `AUTH_JWT_LEEWAY_SECONDS`) and the rate limit
    /// (`RATE_LIMIT_PER_SECOND`, 0 turns it off, which is the default with authentication off;
    /// `RATE_LIMIT_BURST`; `TRUSTED_PROXIES`).
    pub fn from_env() -> Result<AuthSettings, ConfigError> {
        let mode: String = config::var("AUTH_MODE", "jwt".to_owned())?;
        let settings = match mode.as_str() {
            "disabled" => AuthSettings::disabled(),
            "jwt" => AuthSettings::jwt(TokenVerifier::from_env()?),
            other => {
                return Err(ConfigError {
                    name: "AUTH_MODE".into(),
                    reason: format!("expected `jwt` or `disabled`, got {other:?}"),
                });
            }
        };
        // With authentication off every local client would share one address's budget (a
        // frontend polling fast runs out of it), so the limit is off unless asked for.
        let default_rate = if settings.is_enabled() { 100.0 } else { 0.0 };
        let per_second: f64 = config::var("RATE_LIMIT_PER_SECOND", default_rate)?;
        let burst: f64 = config::var("RATE_LIMIT_BURST", (per_second * 2.0).max(1.0))?;
        let valid = |v: f64| v.is_finite() && v >= 0.0;
        if !valid(per_second) || !valid(burst) || (per_second > 0.0 && burst < 1.0) {
            return Err(ConfigError {
                name: "RATE_LIMIT_PER_SECOND".into(),
                reason: "the rate must be ≥ 0 and the burst ≥ 1".into(),
            });
        }
        let limit = (per_second > 0.0).then_some(RateLimit { per_second, burst });
        Ok(AuthSettings {
            trusted_proxies: crate::peer::TrustedProxies::from_env()?,
            ..settings.with_rate_limit(limit)
        })
    }

    /// Whether requests are authenticated.
    pub fn is_enabled(&self) -> bool {
        matches!(self.mode, Mode::Jwt(_))
    }
}

/// Checks bearer tokens: signature with the configured key and algorithm, `iss`, `aud`, `exp`
/// and `nbf` with a bounded leeway, and a role in `scope`.
pub struct TokenVerifier {
    key: Key,
    issuer: String,
    audience: String,
    leeway: Duration,
}

enum Key {
    Hs256(Vec<u8>),
    Rs256(PKey<Public>),
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("algorithm", &self.algorithm())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

/// Why a token was refused. The text is safe to show the caller; it never quotes the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts of JSON, or too long.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// `alg` is not the configured algorithm.
    #[error("the token is not signed with {0}")]
    Algorithm(&'static str),
    /// The signature does not match.
    #[error("the token's signature is not valid")]
    Signature,
    /// `exp` is missing or past.
    #[error("the token has expired (or carries no `exp`)")]
    Expired,
    /// `nbf` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("the token was not issued by the expected issuer")]
    Issuer,
    /// `aud` does not include the configured audience.
    #[error("the token is not meant for this audience")]
    Audience,
    /// `scope` has no known role, or a customer token's `sub` is not a customer id.
    #[error(
        "the token grants no role here (scope `admin`, or `customer` with a customer id as `sub`)"
    )]
    Role,
    /// A stream ticket that is unknown, expired or for another stream.
    #[error("the ticket is unknown, has expired, or opens another stream; ask for a new one")]
    Ticket,
}

#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    iss: Option<String>,
    #[serde(default)]
    aud: Audience,
    exp: Option<f64>,
    nbf: Option<f64>,
    #[serde(default)]
    scope: String,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
    #[default]
    None,
}

impl TokenVerifier {
    /// A verifier of HS256 tokens signed with `secret` (at least 32 bytes).
    pub fn hs256(
        secret: &[u8],
        issuer: &str,
        audience: &str,
        leeway: Duration,
    ) -> Result<TokenVerifier, String> {
        if secret.len() < 32 {
            return Err("an HS256 secret must be at least 32 bytes".into());
        }
        Self::new(Key::Hs256(secret.to_vec()), issuer, audience, leeway)
    }

    /// A verifier of RS256 tokens signed by the private half of `public_key_pem` (an RSA
    /// public key of at least 2048 bits, PEM).
    pub fn rs256(
        public_key_pem: &[u8],
        issuer: &str,
        audience: &str,
        leeway: Duration,
    ) -> Result<TokenVerifier, String> {
        let key = PKey::public_key_from_pem(public_key_pem)
            .map_err(|_| "not a PEM public key".to_owned())?;
        let rsa = key.rsa().map_err(|_| "not an RSA key".to_owned())?;
        if rsa.size() * 8 < 2048 {
            return Err("the RSA key must have at least 2048 bits".into());
        }
        Self::new(Key::Rs256(key), issuer, audience, leeway)
    }

    fn new(
        key: Key,
        issuer: &str,
        audience: &str,
        leeway: Duration,
    ) -> Result<TokenVerifier, String> {
        if issuer.is_empty() || audience.is_empty() {
            return Err("the issuer and the audience must be set".into());
        }
        if leeway > MAX_LEEWAY {
            return Err(format!(
                "the clock skew may be at most {} s",
                MAX_LEEWAY.as_secs()
            ));
        }
        Ok(TokenVerifier {
            key,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            leeway,
        })
    }

    fn from_env() -> Result<TokenVerifier, ConfigError> {
        let required = |name: &str| {
            config::var_opt::<String>(name)?.ok_or_else(|| ConfigError {
                name: name.into(),
                reason: "required with AUTH_MODE=jwt (set AUTH_MODE=disabled for local development only)".into(),
            })
        };
        let issuer = required("AUTH_JWT_ISSUER")?;
        let audience = required("AUTH_JWT_AUDIENCE")?;
        let leeway = Duration::from_secs(config::var("AUTH_JWT_LEEWAY_SECONDS", 30)?);
        let secret: Option<String> = config::var_opt("AUTH_JWT_HS256_SECRET")?;
        let pem: Option<String> = config::var_opt("AUTH_JWT_RS256_PUBLIC_KEY")?;
        let pem_file: Option<String> = config::var_opt("AUTH_JWT_RS256_PUBLIC_KEY_FILE")?;
        let (name, built) = match (secret, pem, pem_file) {
            (Some(secret), None, None) => (
                "AUTH_JWT_HS256_SECRET",
                Self::hs256(secret.as_bytes(), &issuer, &audience, leeway),
            ),
            (None, Some(pem), None) => (
                "AUTH_JWT_RS256_PUBLIC_KEY",
                Self::rs256(pem.as_bytes(), &issuer, &audience, leeway),
            ),
            (None, None, Some(path)) => (
                "AUTH_JWT_RS256_PUBLIC_KEY_FILE",
                std::fs::read(&path)
                    .map_err(|e| format!("cannot read {path}: {e}"))
                    .and_then(|pem| Self::rs256(&pem, &issuer, &audience, leeway)),
            ),
            _ => {
                return Err(ConfigError {
                    name: "AUTH_JWT_HS256_SECRET".into(),
                    reason: "AUTH_MODE=jwt needs exactly one of AUTH_JWT_HS256_SECRET, AUTH_JWT_RS256_PUBLIC_KEY and AUTH_JWT_RS256_PUBLIC_KEY_FILE".into(),
                });
            }
        };
        built.map_err(|reason| ConfigError {
            name: name.into(),
            reason,
        })
    }

    fn algorithm(&self) -> &'static str {
        match self.key {
            Key::Hs256(_) => "HS256",
            Key::Rs256(_) => "RS256",
        }
    }

    /// The caller a compact JWS token names and the token's subject, checked at `now`
    /// (seconds since the epoch).
    pub fn verify(&self, token: &str, now: f64) -> Result<(Caller, String), TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(head), Some(body), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| TokenError::Malformed)
        };
        let header: JoseHeader =
            serde_json::from_slice(&decode(head)?).map_err(|_| TokenError::Malformed)?;
        if header.alg != self.algorithm() || header.crit.is_some() {
            return Err(TokenError::Algorithm(self.algorithm()));
        }
        let signed = &token[..head.len() + 1 + body.len()];
        if !self.signature_matches(signed.as_bytes(), &decode(signature)?) {
            return Err(TokenError::Signature);
        }
        let claims: Claims =
            serde_json::from_slice(&decode(body)?).map_err(|_| TokenError::Malformed)?;
        self.check(&claims, now)
    }

    fn signature_matches(&self, signed: &[u8], signature: &[u8]) -> bool {
        let checked = match &self.key {
            Key::Hs256(secret) => PKey::hmac(secret)
                .and_then(|key| {
                    Signer::new(MessageDigest::sha256(), &key)?.sign_oneshot_to_vec(signed)
                })
                .map(|mac| mac.len() == signature.len() && openssl::memcmp::eq(&mac, signature)),
            Key::Rs256(key) => Verifier::new(MessageDigest::sha256(), key)
                .and_then(|mut verifier| verifier.verify_oneshot(signature, signed)),
        };
        checked.unwrap_or(false)
    }

    fn check(&self, claims: &Claims, now: f64) -> Result<(Caller, String), TokenError> {
        let leeway = self.leeway.as_secs_f64();
        match claims.exp {
            Some(exp) if exp.is_finite() && now <= exp + leeway => {}
            _ => return Err(TokenError::Expired),
        }
        if let Some(nbf) = claims.nbf
            && !(nbf.is_finite() && nbf <= now + leeway)
        {
            return Err(TokenError::NotYetValid);
        }
        if claims.iss.as_deref() != Some(self.issuer.as_str()) {
            return Err(TokenError::Issuer);
        }
        let audience_ok = match &claims.aud {
            Audience::One(aud) => *aud == self.audience,
            Audience::Many(auds) => auds.contains(&self.audience),
            Audience::None => false,
        };
        if !audience_ok {
            return Err(TokenError::Audience);
        }
        let subject = claims.sub.clone().unwrap_or_default();
        let mut scopes = claims.scope.split(' ');
        if scopes.clone().any(|s| s == "admin") {
            return Ok((Caller::Admin, subject));
        }
        match Uuid::try_parse(&subject) {
            Ok(id) if scopes.any(|s| s == "customer") => Ok((Caller::Customer(id), subject)),
            _ => Err(TokenError::Role),
        }
    }
}

/// The edge's authentication and rate-limit layer state.
#[derive(Debug)]
pub struct Gate {
    settings: AuthSettings,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Gate {
    /// The gate for `settings`; says loudly when authentication is off.
    pub fn new(settings: AuthSettings) -> Arc<Gate> {
        match &settings.mode {
            Mode::Disabled => tracing::warn!(
                "AUTHENTICATION IS DISABLED (AUTH_MODE=disabled): every caller is treated as an admin. Use this for local development only."
            ),
            Mode::Jwt(verifier) => tracing::info!(?verifier, "bearer JWT authentication on"),
        }
        Arc::new(Gate {
            settings,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one request from `client`'s bucket, which fills at `share` of the configured rate
    /// and holds `share` of its burst (at least one), or says how long until one is available.
    fn take(&self, client: &str, now: Instant, share: f64) -> Result<(), Duration> {
        let Some(limit) = self.settings.rate_limit else {
            return Ok(());
        };
        let limit = RateLimit {
            per_second: limit.per_second * share,
            burst: (limit.burst * share).max(1.0),
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_TRACKED_CLIENTS && !buckets.contains_key(client) {
            // Forget clients whose bucket has refilled: they start full again anyway.
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * limit.per_second < limit.burst
            });
        }
        let bucket = buckets.entry(client.to_owned()).or_insert(Bucket {
            tokens: limit.burst,
            at: now,
        });
        let refilled = (bucket.tokens
            + now.duration_since(bucket.at).as_secs_f64() * limit.per_second)
            .min(limit.burst);
        bucket.at = now;
        if refilled >= 1.0 {
            bucket.tokens = refilled - 1.0;
            Ok(())
        } else {
            bucket.tokens = refilled;
            Err(Duration::from_secs_f64((1.0 - refilled) / limit.per_second))
        }
    }
}

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

/// A new random credential: 32 bytes from OpenSSL's CSPRNG, base64url without padding.
pub fn new_secret() -> Result<String, openssl::error::ErrorStack> {
    let mut bytes = [0u8; 32];
    openssl::rand::rand_bytes(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// What is stored of a credential, so a leaked table opens nothing: its SHA-256.
pub fn fingerprint(secret: &str) -> [u8; 32] {
    openssl::sha::sha256(secret.as_bytes())
}

/// The `ticket` query parameter, if the query has one.
fn ticket(query: Option<&str>) -> Option<&str> {
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

/// The share of the rate limit an address gets for failed authentications.
const FAILURE_SHARE: f64 = 0.1;

fn too_many_requests(gate: &Gate, wait: Duration, share: f64) -> Response {
    metrics::counter!("http_rate_limited_total").increment(1);
    let seconds = wait.as_secs_f64().ceil().max(1.0);
    let what = if share < 1.0 {
        "failed authentications"
    } else {
        "requests"
    };
    Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        "Too many requests",
    )
    .with_detail(format!(
        "This client may send {} {what} per second; retry after {seconds} s.",
        gate.settings
            .rate_limit
            .map_or(0.0, |l| l.per_second * share)
    ))
    .with_header(header::RETRY_AFTER, HeaderValue::from(seconds as u64))
    .into_response()
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

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: f64 = 1_800_000_000.0;

    fn b64(value: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("json"))
    }

    fn hs256_token(secret: &[u8], header: serde_json::Value, claims: serde_json::Value) -> String {
        let signed = format!("{}.{}", b64(&header), b64(&claims));
        let key = PKey::hmac(secret).expect("key");
        let mac = Signer::new(MessageDigest::sha256(), &key)
            .expect("signer")
            .sign_oneshot_to_vec(signed.as_bytes())
            .expect("mac");
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    fn claims(scope: &str, sub: &str) -> serde_json::Value {
        serde_json::json!({ "iss": "shop", "aud": "orders", "exp": NOW + 60.0, "sub": sub, "scope": scope })
    }

    fn caller(v: &TokenVerifier, token: &str, now: f64) -> Result<Caller, TokenError> {
        v.verify(token, now).map(|(caller, _)| caller)
    }

    fn verifier() -> TokenVerifier {
        TokenVerifier::hs256(SECRET, "shop", "orders", Duration::from_secs(30)).expect("verifier")
    }

    #[test]
    fn admin_and_customer_tokens_name_their_caller() {
        let header = serde_json::json!({ "alg": "HS256", "typ": "JWT" });
        let id = Uuid::now_v7();
        let v = verifier();
        assert_eq!(
            caller(
                &v,
                &hs256_token(SECRET, header.clone(), claims("read admin", "ops")),
                NOW
            ),
            Ok(Caller::Admin)
        );
        assert_eq!(
            caller(
                &v,
                &hs256_token(SECRET, header.clone(), claims("customer", &id.to_string())),
                NOW
            ),
            Ok(Caller::Customer(id))
        );
        assert_eq!(
            caller(
                &v,
                &hs256_token(SECRET, header.clone(), claims("customer", "not-a-uuid")),
                NOW
            ),
            Err(TokenError::Role)
        );
        assert_eq!(
            caller(&v, &hs256_token(SECRET, header, claims("", "ops")), NOW),
            Err(TokenError::Role)
        );
    }

    #[test]
    fn refuses_forged_expired_and_misaddressed_tokens() {
        let header = serde_json::json!({ "alg": "HS256" });
        let v = verifier();
        let other_secret = b"another secret that is long enough!!";
        assert_eq!(
            caller(
                &v,
                &hs256_token(other_secret, header.clone(), claims("admin", "x")),
                NOW
            ),
            Err(TokenError::Signature)
        );
        let none = format!(
            "{}.{}.",
            b64(&serde_json::json!({ "alg": "none" })),
            b64(&claims("admin", "x"))
        );
        assert_eq!(caller(&v, &none, NOW), Err(TokenError::Algorithm("HS256")));
        let crit = hs256_token(
            SECRET,
            serde_json::json!({ "alg": "HS256", "crit": ["x"] }),
            claims("admin", "x"),
        );
        assert_eq!(caller(&v, &crit, NOW), Err(TokenError::Algorithm("HS256")));
        let with = |patch: serde_json::Value| {
            let mut c = claims("admin", "x");
            for (k, value) in patch.as_object().expect("object") {
                c[k] = value.clone();
            }
            hs256_token(SECRET, header.clone(), c)
        };
        // Within the 30 s leeway is fine, beyond it is not.
        assert_eq!(
            caller(&v, &with(serde_json::json!({ "exp": NOW - 29.0 })), NOW),
            Ok(Caller::Admin)
        );
        assert_eq!(
            caller(&v, &with(serde_json::json!({ "exp": NOW - 31.0 })), NOW),
            Err(TokenError::Expired)
        );
        assert_eq!(
            caller(&v, &with(serde_json::json!({ "exp": null })), NOW),
            Err(TokenError::Expired)
        );
        assert_eq!(
            caller(&v, &with(serde_json::json!({ "nbf": NOW + 31.0 })), NOW),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(
            caller(&v, &with(serde_json::json!({ "iss": "elsewhere" })), NOW),
            Err(TokenError::Issuer)
        );
        assert_eq!(
            caller(
                &v,
                &with(serde_json::json!({ "aud": ["a", "orders"] })),
                NOW
            ),
            Ok(Caller::Admin)
        );
        assert_eq!(
            caller(&v, &with(serde_json::json!({ "aud": "billing" })), NOW),
            Err(TokenError::Audience)
        );
        for garbage in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.??.##",
            &"x".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            assert_eq!(
                caller(&v, garbage, NOW),
                Err(TokenError::Malformed),
                "{garbage:.20}"
            );
        }
    }

    #[test]
    fn rs256_tokens_verify_with_the_public_key_only() {
        let rsa = openssl::rsa::Rsa::generate(2048).expect("rsa");
        let private = PKey::from_rsa(rsa).expect("pkey");
        let public_pem = private.public_key_to_pem().expect("pem");
        let v =
            TokenVerifier::rs256(&public_pem, "shop", "orders", Duration::ZERO).expect("verifier");
        let signed = format!(
            "{}.{}",
            b64(&serde_json::json!({ "alg": "RS256" })),
            b64(&claims("admin", "x"))
        );
        let mut signer = Signer::new(MessageDigest::sha256(), &private).expect("signer");
        let signature = signer.sign_oneshot_to_vec(signed.as_bytes()).expect("sign");
        let token = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature));
        assert_eq!(caller(&v, &token, NOW), Ok(Caller::Admin));
        // The classic confusion: an HS256 token whose secret is the public key.
        let confused = hs256_token(
            &public_pem,
            serde_json::json!({ "alg": "HS256" }),
            claims("admin", "x"),
        );
        assert_eq!(
            caller(&v, &confused, NOW),
            Err(TokenError::Algorithm("RS256"))
        );
        let tampered = token.replacen(&b64(&claims("admin", "x")), &b64(&claims("admin", "y")), 1);
        assert_eq!(caller(&v, &tampered, NOW), Err(TokenError::Signature));
    }

    #[test]
    fn a_ticket_is_read_from_its_own_query_parameter() {
        assert_eq!(ticket(Some("ticket=abc")), Some("abc"));
        assert_eq!(ticket(Some("min_version=2&ticket=abc")), Some("abc"));
        assert_eq!(ticket(Some("xticket=abc")), None);
        assert_eq!(ticket(Some("ticket=")), None);
        assert_eq!(ticket(None), None);
    }

    #[test]
    fn refuses_weak_configuration() {
        assert!(TokenVerifier::hs256(b"short", "shop", "orders", Duration::ZERO).is_err());
        assert!(TokenVerifier::hs256(SECRET, "", "orders", Duration::ZERO).is_err());
        assert!(TokenVerifier::hs256(SECRET, "shop", "orders", Duration::from_secs(301)).is_err());
        let small = PKey::from_rsa(openssl::rsa::Rsa::generate(1024).expect("rsa")).expect("pkey");
        let pem = small.public_key_to_pem().expect("pem");
        assert!(TokenVerifier::rs256(&pem, "shop", "orders", Duration::ZERO).is_err());
    }

    #[test]
    fn the_rate_limit_allows_the_burst_then_the_rate() {
        let gate = Gate::new(AuthSettings::disabled().with_rate_limit(Some(RateLimit {
            per_second: 10.0,
            burst: 3.0,
        })));
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(gate.take("a", start, 1.0), Ok(()));
        }
        let wait = gate.take("a", start, 1.0).expect_err("the burst is spent");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        assert_eq!(
            gate.take("b", start, 1.0),
            Ok(()),
            "clients are limited separately"
        );
        assert_eq!(
            gate.take("a", start + Duration::from_millis(100), 1.0),
            Ok(())
        );
        assert!(
            gate.take("a", start + Duration::from_millis(100), 1.0)
                .is_err()
        );
    }
}

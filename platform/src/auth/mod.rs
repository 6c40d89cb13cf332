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

mod jwt;
mod middleware;
mod rate_limit;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::config::{self, ConfigError};
use crate::problem::Problem;

pub use jwt::{TokenError, TokenVerifier};
pub use middleware::{admin_only, authenticate};
pub use rate_limit::Gate;

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

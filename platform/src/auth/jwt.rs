//! Bearer JWTs: checked for signature (the configured algorithm only), issuer, audience and
//! expiry with bounded clock skew, and turned into a [`Caller`].

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Public};
use openssl::sign::{Signer, Verifier};
use serde::Deserialize;
use uuid::Uuid;

use super::Caller;
use crate::config::{self, ConfigError};

/// Tokens longer than this are refused unread.
pub(super) const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The largest clock skew that may be configured.
const MAX_LEEWAY: Duration = Duration::from_secs(300);

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

    pub(super) fn from_env() -> Result<TokenVerifier, ConfigError> {
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

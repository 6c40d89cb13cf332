//! Bearer tokens the tests sign, and clients that send them.

use std::time::Duration;

use serde_json::Value;

/// The HS256 secret the test services verify bearer tokens with.
pub const JWT_SECRET: &[u8] = b"e2e secret, at least thirty-two bytes long";
/// The issuer the test services expect.
pub const JWT_ISSUER: &str = "https://identity.e2e.test";
/// The audience the test services expect.
pub const JWT_AUDIENCE: &str = "order-platform";

/// The edge of the test services: bearer JWTs (HS256, [`JWT_SECRET`]), no rate limit.
pub fn edge_settings() -> platform::http::EdgeSettings {
    let verifier = platform::auth::TokenVerifier::hs256(
        JWT_SECRET,
        JWT_ISSUER,
        JWT_AUDIENCE,
        Duration::from_secs(5),
    )
    .expect("test token verifier");
    platform::http::EdgeSettings::with_auth(platform::auth::AuthSettings::jwt(verifier))
}

/// A token for the test services with `scope` (`admin`, `customer`, …) and subject `sub`,
/// valid for an hour.
pub fn token(scope: &str, sub: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    signed_token(
        &serde_json::json!({ "alg": "HS256", "typ": "JWT" }),
        &serde_json::json!({ "iss": JWT_ISSUER, "aud": JWT_AUDIENCE, "sub": sub, "scope": scope, "iat": now, "exp": now + 3600 }),
        JWT_SECRET,
    )
}

/// A compact JWS of `header` and `claims`, HMAC-SHA256-signed with `secret` (whatever `alg`
/// the header names).
pub fn signed_token(header: &Value, claims: &Value, secret: &[u8]) -> String {
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let json = |value: &Value| serde_json::to_vec(value).expect("JSON");
    let signed = format!("{}.{}", b64(&json(header)), b64(&json(claims)));
    let key = openssl::pkey::PKey::hmac(secret).expect("HMAC key");
    let mac = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key)
        .and_then(|mut signer| signer.sign_oneshot_to_vec(signed.as_bytes()))
        .expect("sign");
    format!("{signed}.{}", b64(&mac))
}

/// An HTTP client that sends `token` as its bearer token.
pub fn client_as(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {token}").parse().expect("header value");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("HTTP client")
}

//! The authentication layer against hand-made tokens, tickets and clocks.

use std::time::{Duration, Instant};

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;

use super::jwt::*;
use super::middleware::*;
use super::rate_limit::*;
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
    let v = TokenVerifier::rs256(&public_pem, "shop", "orders", Duration::ZERO).expect("verifier");
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

//! Conditional GETs: every view response carries a strong `ETag` derived from its bytes, and a
//! request whose `If-None-Match` names it gets `304 Not Modified` without a body.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A JSON view response, or 304 when the client already has these bytes.
pub fn json_view(request: &HeaderMap, body: Vec<u8>) -> Response {
    let etag = format!("\"{:016x}\"", fnv1a(&body));
    let etag_value = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\""));
    if matches_if_none_match(request, &etag) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        response.headers_mut().insert(header::ETAG, etag_value);
        return response;
    }
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::ETAG, etag_value);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Serializes `value` and answers as [`json_view`].
pub fn json_value(request: &HeaderMap, value: &impl serde::Serialize) -> Response {
    json_view(request, serde_json::to_vec(value).unwrap_or_default())
}

fn matches_if_none_match(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|list| {
            list.split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || tag == etag || tag.strip_prefix("W/") == Some(etag))
        })
}

/// 64-bit FNV-1a: stable across builds and machines, so every replica gives a view the same
/// ETag.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matching_if_none_match_is_a_304_with_the_etag() {
        let first = json_view(&HeaderMap::new(), b"{\"a\":1}".to_vec());
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].clone();
        let mut request = HeaderMap::new();
        request.insert(header::IF_NONE_MATCH, etag.clone());
        let again = json_view(&request, b"{\"a\":1}".to_vec());
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::ETAG], etag);
        assert_eq!(
            json_view(&request, b"{\"a\":2}".to_vec()).status(),
            StatusCode::OK
        );
    }

    #[test]
    fn fnv1a_matches_its_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}

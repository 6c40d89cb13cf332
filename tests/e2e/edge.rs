//! What real clients do to the HTTP edge: stall half-way through a request, wait longer than
//! the server will, and call from a browser on another origin with a bearer token.

use std::time::Duration;

use e2e::{EVENTUALLY, TestApp, problem};
use platform::serve::ConnectionLimits;
use reqwest::header::HeaderValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_half_requests_are_cut_off_and_real_requests_still_get_answers() {
    let app = TestApp::spawn().await;
    let mut config = app.query_config(&app.group);
    config.edge.connections = ConnectionLimits {
        max_connections: 16,
        header_timeout: Duration::from_secs(1),
    };
    let query = app.spawn_query_service_with(config).await;
    let address = query.url.trim_start_matches("http://").to_owned();

    // Four times as many half-sent requests as the server takes connections (slowloris).
    let mut stalled = Vec::new();
    for _ in 0..64 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let half = b"GET /healthz HTTP/1.1\r\nHost: slow.example\r\nX-Slow: ";
        stream.write_all(half).await.unwrap();
        stalled.push(stream);
    }

    // A real request is answered while they hold on.
    let health = reqwest::Client::new()
        .get(format!("{}/healthz", query.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    // The server closed every one of them.
    for mut stream in stalled {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(EVENTUALLY, stream.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "a half-sent request was kept open");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_out_of_time_gets_a_problem_with_retry_after() {
    let app = TestApp::spawn().await;
    let mut config = app.query_config(&app.group);
    // Shorter than the read-your-writes wait (2 s), which an unknown version runs into.
    config.edge.request_timeout = Duration::from_millis(200);
    let query = app.spawn_query_service_with(config).await;
    let unknown = Uuid::now_v7();
    let response = app
        .http
        .get(format!("{}/orders/{unknown}?min_version=1", query.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["retry-after"], "1");
    let body = problem(response, 503).await;
    assert_eq!(body["type"], "/problems/request-timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_may_send_a_bearer_token_and_read_the_documented_headers() {
    let origin = "https://shop.example";
    let mut app = TestApp::spawn_with(|edge| {
        edge.cors_allowed_origins = vec![HeaderValue::from_static(origin)];
    })
    .await;
    app.http = reqwest::Client::new();
    for url in [&app.command.url, &app.query.url] {
        let preflight = app
            .http
            .request(reqwest::Method::OPTIONS, format!("{url}/orders"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,idempotency-key,if-match,x-consistency-token",
            )
            .send()
            .await
            .unwrap();
        assert!(
            preflight.status().is_success(),
            "{url}: {}",
            preflight.status()
        );
        let allowed = header_list(&preflight, "access-control-allow-headers");
        for name in [
            "authorization",
            "content-type",
            "idempotency-key",
            "if-match",
        ] {
            assert!(
                allowed.contains(&name.to_owned()),
                "{url}: {name} not in {allowed:?}"
            );
        }
        assert!(allowed.contains(&"x-consistency-token".to_owned()), "{url}");
        assert_eq!(preflight.headers()["access-control-allow-origin"], origin);

        let answer = app
            .http
            .get(format!("{url}/healthz"))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        let exposed = header_list(&answer, "access-control-expose-headers");
        for name in [
            "etag",
            "location",
            "x-consistency-token",
            "retry-after",
            "idempotent-replayed",
        ] {
            assert!(
                exposed.contains(&name.to_owned()),
                "{url}: {name} not in {exposed:?}"
            );
        }
    }
}

/// A comma-separated header's items, lower case.
fn header_list(response: &reqwest::Response, name: &str) -> Vec<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(',')
        .map(|item| item.trim().to_ascii_lowercase())
        .collect()
}

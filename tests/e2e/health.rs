//! Liveness and readiness of both services.

use e2e::TestApp;
use reqwest::Client;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_services_are_live_and_ready_with_their_dependencies() {
    let app = TestApp::spawn().await;
    for url in [&app.command.url, &app.query.url] {
        let live = app.http.get(format!("{url}/healthz")).send().await.unwrap();
        assert_eq!(live.status(), 200);
        let ready = app.http.get(format!("{url}/readyz")).send().await.unwrap();
        let status = ready.status();
        let body: Value = ready.json().await.unwrap();
        assert_eq!(status, 200, "{url}: {body}");
        assert_eq!(body["checks"]["database"], "ok", "{url}: {body}");
        assert_eq!(body["checks"]["broker"], "ok", "{url}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_services_expose_prometheus_metrics_of_their_work() {
    let app = TestApp::spawn().await;
    let customer = app.register_customer().await;
    let order = app.place_order_for(customer).await;
    app.wait_for_order(order).await;
    app.wait_for_empty_outbox().await;

    let command = app
        .http
        .get(format!("{}/metrics", app.command.url))
        .send()
        .await
        .unwrap();
    assert!(
        command.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let command = command.text().await.unwrap();
    assert!(
        command.contains(r#"http_requests_total{route="/orders",method="POST",status="201"}"#),
        "{command}"
    );
    assert!(
        command.contains("relay_events_published_total"),
        "{command}"
    );
    assert!(
        command.contains("relay_publish_lag_seconds_bucket"),
        "{command}"
    );

    let query = app
        .http
        .get(format!("{}/metrics", app.query.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for exposition in [&command, &query] {
        promtool_accepts(exposition);
    }
    assert!(
        query.contains(r#"projector_messages_total{outcome="applied"}"#),
        "{query}"
    );
    assert!(
        query.contains("projector_apply_duration_seconds_bucket"),
        "{query}"
    );
    assert!(
        query.contains("projector_event_lag_seconds_bucket"),
        "{query}"
    );
}

/// Runs `promtool check metrics` (Prometheus's own linter; scripts/test installs it) on an
/// exposition and fails with its complaints.
fn promtool_accepts(exposition: &str) {
    use std::io::Write;
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (installed by scripts/test with Debian's prometheus package)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_services_serve_their_openapi_document_and_a_docs_page() {
    let app = TestApp::spawn().await;
    for (url, expected) in [
        (
            &app.command.url,
            serde_json::to_value(command_service::http::openapi()).unwrap(),
        ),
        (
            &app.query.url,
            serde_json::to_value(query_service::http::openapi()).unwrap(),
        ),
    ] {
        let served: Value = app
            .http
            .get(format!("{url}/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(served["openapi"], "3.1.0");
        assert_eq!(served, expected);
        let docs = Client::new()
            .get(format!("{url}/docs"))
            .send()
            .await
            .unwrap();
        let policy = header(&docs, "content-security-policy");
        assert!(policy.contains("script-src 'self'"), "{policy}");
        assert!(header(&docs, "content-type").starts_with("text/html"));
        let page = docs.text().await.unwrap();
        assert!(
            !page.contains("http"),
            "the page loads nothing from elsewhere: {page}"
        );
        for (asset, kind) in [("docs.js", "text/javascript"), ("docs.css", "text/css")] {
            assert!(page.contains(&format!("\"docs/{asset}\"")), "{page}");
            let served = Client::new()
                .get(format!("{url}/docs/{asset}"))
                .send()
                .await
                .unwrap();
            assert_eq!(served.status(), 200, "{asset}");
            assert!(header(&served, "content-type").starts_with(kind));
        }

        // A real browser, offline but for the service, under the page's CSP.
        let dom = headless_chromium_dom(&format!("{url}/docs")).await;
        assert!(
            dom.contains("data-rendered=\"true\""),
            "not rendered: {dom}"
        );
        for (_, item) in served["paths"].as_object().unwrap() {
            for (_, operation) in item.as_object().unwrap() {
                let id = operation["operationId"].as_str().unwrap();
                assert!(dom.contains(&format!("id=\"{id}\"")), "{id} is not shown");
            }
        }
    }
}

fn header(response: &reqwest::Response, name: &str) -> String {
    let value = response.headers().get(name);
    value.map_or("", |v| v.to_str().unwrap()).to_owned()
}

/// The DOM of `url` once its scripts ran, as Debian's chromium renders it headless.
async fn headless_chromium_dom(url: &str) -> String {
    let chromium = std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let url = url.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&chromium)
            .args(["--headless", "--no-sandbox", "--disable-gpu"])
            .args(["--virtual-time-budget=10000", "--dump-dom", &url])
            .output()
            .unwrap_or_else(|e| panic!("run {chromium} (scripts/test installs it): {e}"))
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_from_allowed_origins_may_call_the_api() {
    let app = TestApp::spawn().await;
    let mut config = app.query_config(&app.group);
    config.edge.cors_allowed_origins = vec!["https://shop.example".parse().unwrap()];
    let query = app.spawn_query_service_with(config).await;
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/orders", query.url))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let other = app
        .http
        .get(format!("{}/healthz", query.url))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
    let default = app
        .http
        .get(format!("{}/healthz", app.query.url))
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert!(
        !default
            .headers()
            .contains_key("access-control-allow-origin"),
        "CORS is off unless configured"
    );
}

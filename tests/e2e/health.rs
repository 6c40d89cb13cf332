//! Liveness and readiness of both services.

use e2e::TestApp;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_services_are_live_and_ready_with_their_dependencies() {
    let app = TestApp::spawn().await;
    for url in [&app.command.url, &app.query.url] {
        let live = app.http.get(format!("{url}/healthz")).send().await.unwrap();
        assert_eq!(live.status(), 200);
        let ready = app.http.get(format!("{url}/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200);
        let body: Value = ready.json().await.unwrap();
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

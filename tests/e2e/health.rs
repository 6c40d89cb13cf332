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

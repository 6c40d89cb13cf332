//! Live views over Server-Sent Events.

use e2e::TestApp;
use serde_json::{Value, json};

/// Reads the event stream until an event named `name` whose data satisfies `wanted`.
async fn next_event(
    response: &mut reqwest::Response,
    buffer: &mut String,
    name: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let event = frame
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_default();
            let data: String = frame
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect();
            if event == name
                && let Ok(value) = serde_json::from_str::<Value>(&data)
                && wanted(&value)
            {
                return value;
            }
        }
        let chunk = tokio::time::timeout(e2e::EVENTUALLY, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {name} event in time; got {buffer:?}"))
            .unwrap()
            .expect("the stream ended");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_push_the_new_view_after_a_command() {
    let app = TestApp::spawn().await;
    let customer = app.register_customer().await;
    let order = app.place_order_for(customer).await;
    app.wait_for_order(order).await;

    let mut detail = app.query(&format!("/orders/{order}/stream")).await;
    assert_eq!(detail.status(), 200);
    assert!(
        detail.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut list = app
        .query(&format!("/customers/{customer}/orders/stream"))
        .await;
    let (mut detail_buffer, mut list_buffer) = (String::new(), String::new());

    let first = next_event(&mut detail, &mut detail_buffer, "order", |_| true).await;
    assert_eq!(first["version"], 1);
    next_event(&mut list, &mut list_buffer, "orders", |page| {
        page["items"].as_array().is_some_and(|i| i.len() == 1)
    })
    .await;

    assert_eq!(
        app.post(&format!("/orders/{order}/confirm"), &json!({}))
            .await
            .status(),
        200
    );
    let confirmed = next_event(&mut detail, &mut detail_buffer, "order", |doc| {
        doc["version"] == 2
    })
    .await;
    assert_eq!(confirmed["status"], "confirmed");

    let another = app.place_order_for(customer).await;
    let page = next_event(&mut list, &mut list_buffer, "orders", |page| {
        page["items"][0]["order_id"] == another.to_string()
    })
    .await;
    assert_eq!(page["items"][1]["status"], "confirmed");
}

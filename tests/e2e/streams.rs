//! Live views over Server-Sent Events: what they push, who may open them (404 as the views,
//! tickets for browsers) and how many one client may hold.

use e2e::{TestApp, problem, problem_fields, wait_for};
use reqwest::Client;
use serde_json::{Value, json};
use uuid::Uuid;

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
    app.wait_for_customer(customer).await;

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

/// `POST {query}/stream-tickets` for `stream`, as `http`.
async fn ticket_for(query: &str, http: &Client, stream: &str) -> reqwest::Response {
    http.post(format!("{query}/stream-tickets"))
        .json(&json!({ "stream": stream }))
        .send()
        .await
        .expect("POST /stream-tickets")
}

/// A ticket's `url`, opened by a client that sends no token (as `EventSource` does).
async fn open_without_token(app: &TestApp, url: &str) -> reqwest::Response {
    Client::new()
        .get(format!("{}{url}", app.query.url))
        .send()
        .await
        .expect("GET the stream")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_opens_a_stream_with_a_ticket_that_opens_nothing_else() {
    let app = TestApp::spawn().await;
    let (customer, shopper) = app.register_customer_with_token().await;
    let order = app.place_order_for(customer).await;
    let other = app.place_order_for(app.register_customer().await).await;
    app.wait_for_order(order).await;
    app.wait_for_order(other).await;

    let issued = ticket_for(&app.query.url, &shopper, &format!("/orders/{order}/stream")).await;
    assert_eq!(issued.status(), 201);
    let issued: Value = issued.json().await.unwrap();
    let (ticket, url) = (
        issued["ticket"].as_str().unwrap(),
        issued["url"].as_str().unwrap(),
    );
    assert_eq!(url, format!("/orders/{order}/stream?ticket={ticket}"));
    assert!(issued["expires_at"].is_string(), "{issued}");

    // Twice: EventSource reconnects with the same URL.
    for _ in 0..2 {
        let mut stream = open_without_token(&app, url).await;
        assert_eq!(stream.status(), 200);
        let first = next_event(&mut stream, &mut String::new(), "order", |_| true).await;
        assert_eq!(first["order_id"], order.to_string());
    }

    // Not another order's stream, not another view, not a made-up ticket.
    for refused in [
        format!("/orders/{other}/stream?ticket={ticket}"),
        format!("/customers/{customer}/orders/stream?ticket={ticket}"),
        format!("/orders/{order}?ticket={ticket}"),
        format!("/orders/{order}/stream?ticket=not-{ticket}"),
    ] {
        let response = open_without_token(&app, &refused).await;
        let body = problem(response, 401).await;
        assert_eq!(body["type"], "/problems/unauthorized", "{refused}: {body}");
    }

    // A customer's ticket for someone else's order opens a 404, as the order's view does.
    let foreign: Value = ticket_for(&app.query.url, &shopper, &format!("/orders/{other}/stream"))
        .await
        .json()
        .await
        .unwrap();
    let response = open_without_token(&app, foreign["url"].as_str().unwrap()).await;
    problem(response, 404).await;

    // Only streams get tickets, asked for in the documented shape.
    for body in [
        json!({ "stream": format!("/orders/{order}") }),
        json!({ "stream": "/admin/dead-letters" }),
        json!({ "stream": format!("/orders/{order}/stream"), "ttl": 3600 }),
    ] {
        let response = shopper
            .post(format!("{}/stream-tickets", app.query.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let refused = problem(response, 422).await;
        assert!(!problem_fields(&refused).is_empty(), "{refused}");
    }
    let anonymous = ticket_for(
        &app.query.url,
        &Client::new(),
        &format!("/orders/{order}/stream"),
    )
    .await;
    problem(anonymous, 401).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_ticket_opens_nothing() {
    let app = TestApp::spawn().await;
    let mut config = app.query_config(&app.group);
    config.stream_ticket_lifetime = std::time::Duration::from_secs(1);
    let short = app.spawn_query_service_with(config).await;
    let (customer, shopper) = app.register_customer_with_token().await;
    app.wait_for_customer(customer).await;

    let stream = format!("/customers/{customer}/orders/stream");
    let issued = ticket_for(&short.url, &shopper, &stream).await;
    let issued: Value = issued.json().await.unwrap();
    let url = format!("{}{}", short.url, issued["url"].as_str().unwrap());
    let opened = Client::new().get(&url).send().await.unwrap();
    assert_eq!(opened.status(), 200, "a fresh ticket opens its stream");
    drop(opened);
    wait_for("the ticket to expire", || async {
        let response = Client::new().get(&url).send().await.ok()?;
        (response.status() == 401).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_of_unknown_or_foreign_orders_answer_404() {
    let app = TestApp::spawn().await;
    let (alice, alice_http) = app.register_customer_with_token().await;
    let bob = app.register_customer().await;
    let bobs_order = app.place_order_for(bob).await;
    app.wait_for_order(bobs_order).await;
    app.wait_for_customer(alice).await;

    let unknown = Uuid::now_v7();
    for (http, path) in [
        (&app.http, format!("/orders/{unknown}/stream")),
        (&app.http, "/orders/not-an-id/stream".to_owned()),
        (&app.http, format!("/customers/{unknown}/orders/stream")),
        (&alice_http, format!("/orders/{bobs_order}/stream")),
        (&alice_http, format!("/customers/{bob}/orders/stream")),
    ] {
        let response = http
            .get(format!("{}{path}", app.query.url))
            .send()
            .await
            .unwrap();
        let body = problem(response, 404).await;
        assert_eq!(body["type"], "/problems/not-found", "{path}: {body}");
    }
    let own = alice_http
        .get(format!("{}/customers/{alice}/orders/stream", app.query.url))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_holds_a_bounded_number_of_open_streams() {
    let app = TestApp::spawn().await;
    let mut config = app.query_config(&app.group);
    config.streams_per_client = 2;
    let bounded = app.spawn_query_service_with(config).await;
    let (alice, alice_http) = app.register_customer_with_token().await;
    let (bob, bob_http) = app.register_customer_with_token().await;
    app.wait_for_customer(alice).await;
    app.wait_for_customer(bob).await;
    let open = |http: Client, customer: Uuid| {
        let url = format!("{}/customers/{customer}/orders/stream", bounded.url);
        async move { http.get(url).send().await.unwrap() }
    };

    let first = open(alice_http.clone(), alice).await;
    let second = open(alice_http.clone(), alice).await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let third = problem(open(alice_http.clone(), alice).await, 429).await;
    assert_eq!(third["type"], "/problems/too-many-streams");
    assert_eq!(
        open(bob_http, bob).await.status(),
        200,
        "others are not held back"
    );

    drop(first);
    wait_for("a closed stream to free its place", || async {
        let again = open(alice_http.clone(), alice).await;
        (again.status() == 200).then_some(again)
    })
    .await;
}

//! Placing an order through the command service and reading it from the query service.

use e2e::{TestApp, order_body};
use rdkafka::message::{Headers, Message};
use serde_json::{Value, json};
use shared_events::headers;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placed_order_is_visible_in_the_query_service() {
    let app = TestApp::spawn().await;
    let customer_id = app.register_customer().await;

    let response = app.place_order(&order_body(customer_id)).await;

    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(response.headers()["etag"], "\"1\"");
    let token = response.headers()["x-consistency-token"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    let order_id: Uuid = body["order_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(location, format!("/orders/{order_id}"));
    assert_eq!(body["version"], 1);
    assert_eq!(
        token.parse::<shared_events::ConsistencyToken>(),
        Ok(shared_events::ConsistencyToken {
            aggregate_id: order_id,
            version: 1
        })
    );

    let view = app.wait_for_order(order_id).await;
    assert_eq!(view["order_id"], order_id.to_string());
    assert_eq!(view["customer_id"], customer_id.to_string());
    assert_eq!(view["status"], "pending");
    assert_eq!(view["currency"], "EUR");
    assert_eq!(view["item_count"], 3);
    assert_eq!(view["total_cents"], 3000);
    assert_eq!(view["version"], 1);
    assert_eq!(view["items"][0]["sku"], "A-1");
    assert_eq!(view["items"][0]["line_total_cents"], 2500);
    assert_eq!(view["items"][1]["quantity"], 1);
    assert!(
        view["created_at"]
            .as_str()
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
        "{view}"
    );

    let response = app.get_order(&order_id.to_string()).await;
    let etag = response.headers()["etag"].clone();
    let unchanged = app
        .http
        .get(format!("{}/orders/{order_id}", app.query.url))
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);
    assert_eq!(unchanged.headers()["etag"], etag);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_published_keyed_by_customer_with_type_and_version_headers() {
    let app = TestApp::spawn().await;
    let customer_id = app.register_customer().await;
    let response = app
        .http
        .post(format!("{}/orders", app.command.url))
        .header("x-request-id", "req-from-frontend-42")
        .json(&order_body(customer_id))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-request-id"], "req-from-frontend-42");

    // The customer's registration, then the order.
    let messages = app.read_topic(2).await;
    let message = &messages[1];
    assert_eq!(message.key(), Some(customer_id.to_string().as_bytes()));
    let header = |name: &str| {
        message
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == name))
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(header(headers::EVENT_TYPE).as_deref(), Some("OrderPlaced"));
    assert_eq!(header(headers::SCHEMA_VERSION).as_deref(), Some("1"));
    assert_eq!(
        header(headers::CORRELATION_ID).as_deref(),
        Some("req-from-frontend-42")
    );

    let envelope: Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
    assert_eq!(envelope["event_type"], "OrderPlaced");
    assert_eq!(envelope["schema_version"], 1);
    assert_eq!(envelope["aggregate_type"], "order");
    assert_eq!(envelope["aggregate_version"], 1);
    assert_eq!(envelope["partition_key"], customer_id.to_string());
    assert_eq!(envelope["correlation_id"], "req-from-frontend-42");
    assert_eq!(envelope["data"]["customer_id"], customer_id.to_string());
    assert_eq!(envelope["data"]["total_cents"], 3000);
    let event_id: Uuid = envelope["event_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(event_id.get_version_num(), 7);
    assert_eq!(header(headers::EVENT_ID), Some(event_id.to_string()));
}

/// `GET /orders/{id}` reads that arrive together are answered by one query for all of them
/// (`query-service/src/http/details.rs`): each must still get its own order, and an id nobody
/// has its own 404, however the reads are grouped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_many_orders_at_once_each_get_their_own() {
    let app = TestApp::spawn().await;
    let customers = [app.register_customer().await, app.register_customer().await];
    let mut owners = Vec::new();
    for i in 0..24 {
        let customer = customers[i % 2];
        owners.push((app.place_order_for(customer).await, Some(customer)));
    }
    owners.push((Uuid::from_u128(404), None));
    app.wait_until_views_caught_up().await;

    // Every id four times over, interleaved, all in flight at once.
    let reads: Vec<_> = owners
        .iter()
        .cycle()
        .take(owners.len() * 4)
        .map(|&(order, owner)| {
            let (http, url) = (
                app.http.clone(),
                format!("{}/orders/{order}", app.query.url),
            );
            tokio::spawn(async move {
                let response = http.get(url).send().await.unwrap();
                let status = response.status();
                let body: Value = response.json().await.unwrap();
                (order, owner, status, body)
            })
        })
        .collect();
    for read in reads {
        let (order, owner, status, body) = read.await.unwrap();
        match owner {
            Some(customer) => {
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["order_id"], order.to_string());
                assert_eq!(body["customer_id"], customer.to_string());
            }
            None => assert_eq!(status, 404, "{body}"),
        }
    }
}

/// The lists, profiles and dashboard pages read at once, by many customers and page sizes, are
/// answered together (one statement per batch) and each read gets the page it asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_many_lists_at_once_each_get_their_own() {
    let app = TestApp::spawn().await;
    // Customer i has i + 1 orders, the first of them confirmed.
    let mut customers = Vec::new();
    for i in 0..4 {
        let customer = app.register_customer().await;
        let mut orders = Vec::new();
        for _ in 0..=i {
            orders.push(app.place_order_for(customer).await);
        }
        let response = app
            .post(&format!("/orders/{}/confirm", orders[0]), &json!({}))
            .await;
        assert_eq!(response.status(), 200);
        customers.push((customer, orders.len()));
    }
    app.wait_until_views_caught_up().await;

    let mut paths = Vec::new();
    for &(customer, count) in &customers {
        paths.push((format!("/customers/{customer}"), Some(customer), count, 0));
        for limit in 1..=3 {
            for list in ["/customers/{id}/orders?", "/orders?customer_id={id}&"] {
                let path = format!(
                    "{}limit={limit}",
                    list.replace("{id}", &customer.to_string())
                );
                paths.push((path, Some(customer), count, limit));
            }
        }
    }
    for limit in 1..=5 {
        let path = format!("/dashboards/shipping?limit={limit}");
        paths.push((path, None, customers.len(), limit));
    }
    // Every read four times over, interleaved, all in flight at once.
    let reads = paths.len() * 4;
    let reads: Vec<_> = paths
        .into_iter()
        .cycle()
        .take(reads)
        .map(|(path, customer, count, limit)| {
            let (http, url) = (app.http.clone(), format!("{}{path}", app.query.url));
            tokio::spawn(async move {
                let response = http.get(url).send().await.unwrap();
                assert_eq!(response.status(), 200, "{path}");
                let body: Value = response.json().await.unwrap();
                (path, customer, count, limit, body)
            })
        })
        .collect();
    for read in reads {
        let (path, customer, count, limit, body) = read.await.unwrap();
        let Some(customer) = customer else {
            // The dashboard: every customer's confirmed order, oldest first.
            let items = body["items"].as_array().unwrap();
            assert_eq!(items.len(), limit.min(count), "{path}: {body}");
            continue;
        };
        if limit == 0 {
            assert_eq!(body["customer_id"], customer.to_string(), "{path}: {body}");
            assert_eq!(body["order_count"], count, "{path}: {body}");
            continue;
        }
        let items = body["items"].as_array().unwrap();
        assert_eq!(items.len(), limit.min(count), "{path}: {body}");
        assert!(
            items
                .iter()
                .all(|o| o["customer_id"] == customer.to_string()),
            "{path}: {body}"
        );
        assert_eq!(
            body["next_cursor"].is_string(),
            count > limit,
            "{path}: {body}"
        );
    }
}

/// The shipping dashboard pages through confirmed orders, longest waiting first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipping_dashboard_pages_through_confirmed_orders_oldest_first() {
    let app = TestApp::spawn().await;
    let customer = app.register_customer().await;
    let mut confirmed = Vec::new();
    for _ in 0..3 {
        let order = app.place_order_for(customer).await;
        let response = app
            .post(&format!("/orders/{order}/confirm"), &json!({}))
            .await;
        assert_eq!(response.status(), 200);
        confirmed.push(order.to_string());
    }
    // Placed, not confirmed: not on the dashboard.
    app.place_order_for(customer).await;
    app.wait_until_views_caught_up().await;

    let first = app.query_json("/dashboards/shipping?limit=2").await;
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let second = app
        .query_json(&format!("/dashboards/shipping?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(second["next_cursor"], Value::Null);
    let shown: Vec<&str> = [&first, &second]
        .iter()
        .flat_map(|page| page["items"].as_array().unwrap())
        .map(|item| {
            assert!(item["age_seconds"].as_i64().unwrap() >= 0, "{item}");
            assert_eq!(item["version"], 2, "{item}");
            item["order_id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(shown, confirmed);
}

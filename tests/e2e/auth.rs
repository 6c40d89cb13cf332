//! Authentication and authorization on every route of both services, for an admin, a customer
//! acting on their own and on someone else's data, and an anonymous caller; and the edge's
//! request limits (rate, headers, JSON depth).

use e2e::{
    JWT_AUDIENCE, JWT_ISSUER, JWT_SECRET, TestApp, client_as, created_id, order_body, problem,
    signed_token, token,
};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// A customer with their own token and client, and one order of theirs.
struct Customer {
    id: Uuid,
    http: Client,
    order: Uuid,
}

async fn customer(app: &TestApp) -> Customer {
    let (id, http) = app.register_customer_with_token().await;
    let placed = http
        .post(format!("{}/orders", app.command.url))
        .json(&order_body(id))
        .send()
        .await
        .unwrap();
    let order = created_id(placed, "order_id").await;
    Customer { id, http, order }
}

async fn call(http: &Client, method: Method, url: String, body: Option<&Value>) -> StatusCode {
    let request = http.request(method, &url);
    let request = match body {
        Some(body) => request.json(body),
        None => request,
    };
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
        .status()
}

/// The command routes, as (method, path, body) on `order` of `customer`.
fn command_routes(customer: Uuid, order: Uuid) -> Vec<(Method, String, Option<Value>)> {
    let item = json!({ "sku": "C-3", "name": "Gizmo", "quantity": 1, "unit_price_cents": 100 });
    vec![
        (
            Method::POST,
            format!("/customers/{customer}/rename"),
            Some(json!({ "name": "G. Hopper" })),
        ),
        (
            Method::POST,
            format!("/customers/{customer}/change-email"),
            Some(json!({ "email": format!("new.{}@example.com", customer.simple()) })),
        ),
        (Method::GET, format!("/customers/{customer}/events"), None),
        (Method::POST, format!("/orders/{order}/items"), Some(item)),
        (Method::DELETE, format!("/orders/{order}/items/C-3"), None),
        (Method::GET, format!("/orders/{order}/events"), None),
        (Method::POST, format!("/orders/{order}/confirm"), None),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_command_only_their_own_customer_and_orders() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (customer(&app).await, customer(&app).await);
    let anonymous = Client::new();
    let url = |path: &str| format!("{}{path}", app.command.url);

    for (method, path, body) in command_routes(bob.id, bob.order) {
        let status = call(&anonymous, method.clone(), url(&path), body.as_ref()).await;
        assert_eq!(status, 401, "anonymous {method} {path}");
        let status = call(&alice.http, method.clone(), url(&path), body.as_ref()).await;
        assert_eq!(
            status, 404,
            "another customer's {method} {path} must look like a missing one"
        );
    }
    // Nothing of Bob's changed: his order is still at version 1 with its two lines.
    let history: Value = app
        .http
        .get(url(&format!("/orders/{}/events", bob.order)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["events"].as_array().unwrap().len(), 1, "{history}");

    for (method, path, body) in command_routes(bob.id, bob.order) {
        let status = call(&bob.http, method.clone(), url(&path), body.as_ref()).await;
        assert!(status.is_success(), "own {method} {path}: {status}");
    }
    // Placing an order for someone else is refused like an unknown customer.
    let for_bob = alice
        .http
        .post(url("/orders"))
        .json(&order_body(bob.id))
        .send()
        .await
        .unwrap();
    assert!(
        problem(for_bob, 422).await["errors"]
            .to_string()
            .contains("customer_id")
    );
    // Registering twice under one token's subject is a conflict, not a second customer.
    let again = alice
        .http
        .post(url("/customers"))
        .json(&json!({ "name": "Again", "email": format!("again.{}@example.com", alice.id.simple()) }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(again, 409).await["type"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next(),
        Some("already-registered")
    );
    // Shipping and delivery are the back office's; creating needs a token.
    let ship = json!({ "carrier": "DHL", "tracking_number": "JD0001" });
    let order = bob.order;
    let (ship_path, deliver_path) = (
        format!("/orders/{order}/ship"),
        format!("/orders/{order}/deliver"),
    );
    let steps: [(&Client, &str, Option<Value>, u16); 6] = [
        (&bob.http, ship_path.as_str(), Some(ship.clone()), 403),
        (&app.http, ship_path.as_str(), Some(ship), 200),
        (&bob.http, deliver_path.as_str(), None, 403),
        (&app.http, deliver_path.as_str(), None, 200),
        (&anonymous, "/customers", Some(json!({})), 401),
        (&anonymous, "/orders", Some(order_body(bob.id)), 401),
    ];
    for (client, path, body, expected) in steps {
        let status = call(client, Method::POST, url(path), body.as_ref()).await;
        assert_eq!(status, expected, "POST {path}");
    }
    // Alice's cancel of her own order works; Bob's idempotency keys are not Alice's.
    let key = Uuid::now_v7().to_string();
    for who in [&alice, &bob] {
        let response = who
            .http
            .post(url(&format!("/orders/{}/cancel", who.order)))
            .header("idempotency-key", &key)
            .json(&json!({ "reason": "changed my mind" }))
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(
            response.headers().get("idempotent-replayed").is_none(),
            "{status}: a key is per customer"
        );
        assert!(status == 200 || status == 409, "{status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_read_only_their_own_views_and_admins_read_the_back_office() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (customer(&app).await, customer(&app).await);
    app.wait_for_order(bob.order).await;
    app.wait_for_order(alice.order).await;
    let anonymous = Client::new();
    let url = |path: &str| format!("{}{path}", app.query.url);

    let own = |c: &Customer| {
        vec![
            format!("/orders/{}", c.order),
            format!("/customers/{}", c.id),
            format!("/customers/{}/orders", c.id),
        ]
    };
    app.wait_for_customer(bob.id).await;
    for path in own(&bob) {
        assert_eq!(
            call(&anonymous, Method::GET, url(&path), None).await,
            401,
            "anonymous {path}"
        );
        assert_eq!(
            call(&alice.http, Method::GET, url(&path), None).await,
            404,
            "Alice reading {path}"
        );
        assert_eq!(
            call(&bob.http, Method::GET, url(&path), None).await,
            200,
            "Bob reading {path}"
        );
        assert_eq!(
            call(&app.http, Method::GET, url(&path), None).await,
            200,
            "admin reading {path}"
        );
    }
    assert_eq!(
        call(
            &alice.http,
            Method::GET,
            url(&format!("/customers/{}/orders/stream", bob.id)),
            None
        )
        .await,
        404
    );
    assert_eq!(
        call(
            &anonymous,
            Method::GET,
            url(&format!("/orders/{}/stream", bob.order)),
            None
        )
        .await,
        401
    );

    let back_office = [
        (Method::GET, "/orders".to_owned()),
        (Method::GET, "/dashboards/shipping".to_owned()),
        (Method::GET, "/reports/daily-sales".to_owned()),
        (Method::GET, "/admin/dead-letters".to_owned()),
        (Method::GET, "/admin/projections".to_owned()),
        (
            Method::POST,
            format!("/admin/dead-letters/{}/retry", Uuid::now_v7()),
        ),
        (
            Method::POST,
            format!("/admin/dead-letters/{}/discard", Uuid::now_v7()),
        ),
        (Method::POST, "/admin/projections/rebuild".to_owned()),
    ];
    for (method, path) in &back_office {
        assert_eq!(
            call(&anonymous, method.clone(), url(path), None).await,
            401,
            "anonymous {method} {path}"
        );
        assert_eq!(
            call(&alice.http, method.clone(), url(path), None).await,
            403,
            "customer {method} {path}"
        );
    }
    for (method, path) in back_office.iter().filter(|(_, p)| !p.contains("/rebuild")) {
        let status = call(&app.http, method.clone(), url(path), None).await;
        assert!(
            status == 200 || status == 404,
            "admin {method} {path}: {status}"
        );
    }

    // A consistency wait on someone else's write never ends early: it answers as one on an id
    // nobody has does (tests/e2e/read_your_writes.rs).
    let placed = bob
        .http
        .post(format!("{}/orders", app.command.url))
        .json(&order_body(bob.id))
        .send()
        .await
        .unwrap();
    let token = placed.headers()["x-consistency-token"]
        .to_str()
        .unwrap()
        .to_owned();
    let snooping = alice
        .http
        .get(url(&format!("/customers/{}/orders", alice.id)))
        .header("x-consistency-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(snooping, 503).await["type"],
        "/problems/not-yet-consistent"
    );
    let own_wait = bob
        .http
        .get(url(&format!("/customers/{}/orders", bob.id)))
        .header("x-consistency-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(own_wait.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_tokens_get_401_with_a_challenge_and_probes_stay_public() {
    let app = TestApp::spawn().await;
    let now = chrono::Utc::now().timestamp();
    let claims = |patch: Value| {
        let mut claims = json!({ "iss": JWT_ISSUER, "aud": JWT_AUDIENCE, "sub": "ops", "scope": "admin", "exp": now + 600 });
        for (key, value) in patch.as_object().unwrap() {
            claims[key] = value.clone();
        }
        claims
    };
    let header = json!({ "alg": "HS256" });
    let invalid = [
        (
            "expired",
            signed_token(&header, &claims(json!({ "exp": now - 600 })), JWT_SECRET),
        ),
        (
            "another issuer",
            signed_token(
                &header,
                &claims(json!({ "iss": "https://evil.test" })),
                JWT_SECRET,
            ),
        ),
        (
            "another audience",
            signed_token(&header, &claims(json!({ "aud": "billing" })), JWT_SECRET),
        ),
        (
            "another key",
            signed_token(
                &header,
                &claims(json!({})),
                b"not the secret the services were given",
            ),
        ),
        (
            "alg none",
            signed_token(&json!({ "alg": "none" }), &claims(json!({})), JWT_SECRET),
        ),
        ("garbage", "not-a-jwt".to_owned()),
    ];
    // A route each service has (an unknown path is a 404 for anyone).
    let guarded = |url: &str| {
        let path = if *url == app.command.url {
            "/customers/{}/events"
        } else {
            "/customers/{}"
        };
        format!("{url}{}", path.replace("{}", &Uuid::now_v7().to_string()))
    };
    for url in [&app.command.url, &app.query.url] {
        for (what, token) in &invalid {
            let response = client_as(token).get(guarded(url)).send().await.unwrap();
            let challenge = response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(challenge.contains("invalid_token"), "{what}: {challenge}");
            let body = problem(response, 401).await;
            assert!(
                !body["detail"].as_str().unwrap().contains(token.as_str()),
                "{what}: the token is not echoed"
            );
        }
        let no_role = client_as(&token("read", "ops"))
            .get(guarded(url))
            .send()
            .await
            .unwrap();
        assert_eq!(no_role.status(), 403);
        let missing = Client::new().get(guarded(url)).send().await.unwrap();
        assert_eq!(
            missing.headers()["www-authenticate"],
            r#"Bearer realm="order-platform""#
        );
        for public in ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"] {
            assert_eq!(
                call(&Client::new(), Method::GET, format!("{url}{public}"), None).await,
                200,
                "{url}{public}"
            );
        }
    }
}

/// Another query service of `app`'s, with a rate limit of `per_second` and `burst` per client.
async fn rate_limited_query_service(app: &TestApp, per_second: f64, burst: f64) -> e2e::Running {
    let mut config = app.query_config(&format!("{}-limited", app.group));
    let limit = platform::auth::RateLimit { per_second, burst };
    config.edge.auth = config.edge.auth.with_rate_limit(Some(limit));
    app.spawn_query_service_with(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_over_their_rate_get_429_with_retry_after() {
    let app = TestApp::spawn().await;
    // A burst of 3 and then one request per 100 s: the fourth request is over for sure.
    let limited = rate_limited_query_service(&app, 0.01, 3.0).await;
    let alice = client_as(&token("customer", &Uuid::now_v7().to_string()));
    let bob = client_as(&token("customer", &Uuid::now_v7().to_string()));
    let path = format!("{}/customers/{}", limited.url, Uuid::now_v7());
    for _ in 0..3 {
        assert_eq!(call(&alice, Method::GET, path.clone(), None).await, 404);
    }
    let over = alice.get(&path).send().await.unwrap();
    let retry_after: u64 = over.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=100).contains(&retry_after), "{retry_after}");
    assert_eq!(problem(over, 429).await["status"], 429);
    assert_eq!(
        call(&bob, Method::GET, path.clone(), None).await,
        404,
        "each client has its own budget"
    );
    assert_eq!(
        call(
            &alice,
            Method::GET,
            format!("{}/healthz", limited.url),
            None
        )
        .await,
        200,
        "probes are not limited"
    );
    limited.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_are_limited_per_address_before_a_valid_token_is() {
    let app = TestApp::spawn().await;
    // Failures get a tenth of this: a burst of 1, then one per 10 s.
    let limited = rate_limited_query_service(&app, 1.0, 10.0).await;
    let path = format!("{}/orders", limited.url);
    let forged = client_as(&signed_token(
        &json!({ "alg": "HS256", "typ": "JWT" }),
        &json!({ "iss": JWT_ISSUER, "aud": JWT_AUDIENCE, "sub": "x", "scope": "admin", "exp": 4102444800u64 }),
        b"a guessed secret",
    ));
    assert_eq!(call(&forged, Method::GET, path.clone(), None).await, 401);
    let over = forged.get(&path).send().await.unwrap();
    assert!(over.headers().contains_key("retry-after"));
    assert_eq!(problem(over, 429).await["status"], 429);
    assert_eq!(
        call(&Client::new(), Method::GET, path.clone(), None).await,
        429,
        "nor without a token"
    );
    assert_eq!(
        call(&client_as(&token("admin", "ops")), Method::GET, path, None).await,
        200,
        "a valid token has its own budget"
    );
    limited.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_authentication_off_a_busy_local_client_is_not_rate_limited_by_default() {
    let app = TestApp::spawn().await;
    // No RATE_LIMIT_PER_SECOND: the service's default for AUTH_MODE=disabled.
    let service = app.spawn_command_process_with(&[]).await;
    let http = Client::new();
    let mut clients = Vec::new();
    for _ in 0..16 {
        let (http, url) = (
            http.clone(),
            format!("{}/customers/{}", service.url, Uuid::now_v7()),
        );
        clients.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..40 {
                statuses.push(http.get(&url).send().await.unwrap().status().as_u16());
            }
            statuses
        }));
    }
    for client in clients {
        let statuses = client.await.unwrap();
        assert!(statuses.iter().all(|s| *s == 404), "{statuses:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    let app = TestApp::spawn().await;
    let limited = |trusted: &str| {
        let mut config = app.query_config(&format!("{}-{trusted}", app.group));
        let limit = platform::auth::RateLimit {
            per_second: 0.01,
            burst: 1.0,
        };
        let mut auth = platform::auth::AuthSettings::disabled().with_rate_limit(Some(limit));
        auth.trusted_proxies = trusted.parse().unwrap();
        config.edge.auth = auth;
        app.spawn_query_service_with(config)
    };
    let status = |url: &str, client: &'static str| {
        let request = Client::new()
            .get(format!("{url}/orders"))
            .header("x-forwarded-for", client)
            .send();
        async move { request.await.unwrap().status().as_u16() }
    };
    let proxied = limited("127.0.0.1").await;
    assert_eq!(status(&proxied.url, "203.0.113.7").await, 200);
    assert_eq!(status(&proxied.url, "203.0.113.7").await, 429);
    assert_eq!(
        status(&proxied.url, "203.0.113.8").await,
        200,
        "another client behind the proxy"
    );

    // Without trusting the peer, the header is the client's own word and counts for nothing.
    let direct = limited("").await;
    assert_eq!(status(&direct.url, "203.0.113.7").await, 200);
    assert_eq!(status(&direct.url, "203.0.113.8").await, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_and_deeply_nested_json_are_refused() {
    let app = TestApp::spawn().await;
    let customer = app.register_customer().await;
    for url in [&app.command.url, &app.query.url] {
        let response = app
            .http
            .get(format!("{url}/customers/{customer}"))
            .header("x-padding", "x".repeat(20_000))
            .send()
            .await
            .unwrap();
        assert_eq!(problem(response, 431).await["status"], 431);
    }
    let mut body = order_body(customer);
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!([deep]);
    }
    body["extra"] = deep;
    let response = app.place_order(&body).await;
    assert!(
        problem(response, 400).await["type"]
            .as_str()
            .unwrap()
            .ends_with("json-too-deep")
    );
    assert_eq!(app.command_rows("orders").await, 0, "nothing was placed");
}

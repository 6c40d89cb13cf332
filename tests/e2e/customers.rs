//! Customer commands: register, rename, change email; unique emails; the audit trail.

use e2e::{TestApp, created_id, problem, problem_fields};
use serde_json::{Value, json};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_register_rename_and_change_email_one_version_each() {
    let app = TestApp::spawn().await;
    let response = app
        .post(
            "/customers",
            &json!({ "name": "Grace Hopper", "email": "grace@navy.example" }),
        )
        .await;
    assert_eq!(
        response.headers()["location"].to_str().unwrap().len(),
        "/customers/".len() + 36
    );
    assert_eq!(response.headers()["etag"], "\"1\"");
    let id = created_id(response, "customer_id").await;

    let renamed = app
        .post(
            &format!("/customers/{id}/rename"),
            &json!({ "name": "Rear Admiral Hopper" }),
        )
        .await;
    assert_eq!(renamed.status(), 200);
    assert_eq!(renamed.headers()["etag"], "\"2\"");
    assert!(renamed.headers().contains_key("x-consistency-token"));
    assert_eq!(
        renamed.json::<Value>().await.unwrap(),
        json!({ "customer_id": id, "version": 2 })
    );

    let changed = app
        .post(
            &format!("/customers/{id}/change-email"),
            &json!({ "email": "hopper@navy.example" }),
        )
        .await;
    assert_eq!(changed.status(), 200);
    assert_eq!(changed.headers()["etag"], "\"3\"");

    let history: Value = app
        .http
        .get(format!("{}/customers/{id}/events", app.command.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "CustomerRegistered",
            "CustomerRenamed",
            "CustomerEmailChanged"
        ]
    );
    let versions: Vec<i64> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["aggregate_version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2, 3]);
    assert_eq!(history["events"][1]["data"]["name"], "Rear Admiral Hopper");
    assert_eq!(history["events"][2]["partition_key"], id.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_addresses_are_unique_regardless_of_case() {
    let app = TestApp::spawn().await;
    let first = app
        .post(
            "/customers",
            &json!({ "name": "Ada", "email": "ada@example.com" }),
        )
        .await;
    let ada = created_id(first, "customer_id").await;
    let grace = app.register_customer().await;

    let taken = problem(
        app.post(
            "/customers",
            &json!({ "name": "Ada 2", "email": "ADA@Example.com" }),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(taken["type"], "/problems/email-taken");
    assert_eq!(problem_fields(&taken), ["email"]);

    let taken = problem(
        app.post(
            &format!("/customers/{grace}/change-email"),
            &json!({ "email": "Ada@example.com" }),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(taken["type"], "/problems/email-taken");
    let own = app
        .post(
            &format!("/customers/{ada}/change-email"),
            &json!({ "email": "ADA@example.com" }),
        )
        .await;
    assert_eq!(
        own.status(),
        200,
        "a customer may change the case of their own address"
    );

    assert_eq!(app.command_rows("customers").await, 2);
    assert_eq!(
        app.command_rows("event_log").await,
        3,
        "two registrations and one change"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_customer_commands_are_field_level_422s_or_404s() {
    let app = TestApp::spawn().await;
    let invalid = problem(
        app.post(
            "/customers",
            &json!({ "name": " ", "email": "not-an-email" }),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(problem_fields(&invalid), ["name", "email"]);
    let long = problem(
        app.post(
            "/customers",
            &json!({ "name": "x".repeat(201), "email": "a@b.example" }),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(problem_fields(&long), ["name"]);
    let missing = problem(app.post("/customers", &json!({ "name": "Ada" })).await, 422).await;
    assert_eq!(problem_fields(&missing), ["email"]);

    let unknown = Uuid::now_v7();
    let not_found = problem(
        app.post(
            &format!("/customers/{unknown}/rename"),
            &json!({ "name": "Nobody" }),
        )
        .await,
        404,
    )
    .await;
    assert_eq!(not_found["type"], "/problems/not-found");
    problem(
        app.post("/customers/not-a-uuid/rename", &json!({ "name": "Nobody" }))
            .await,
        404,
    )
    .await;
    problem(
        app.http
            .get(format!("{}/customers/{unknown}/events", app.command.url))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;

    assert_eq!(app.command_rows("customers").await, 0);
    assert_eq!(app.command_rows("event_log").await, 0);
}

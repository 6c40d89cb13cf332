//! Reading what a response says: its problem, the fields a 422 names, a created id.

use serde_json::Value;
use uuid::Uuid;

/// The body of a problem response, after checking its status and media type.
pub async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "status {} is not a problem",
        response.status()
    );
    let actual = response.status();
    let body: Value = response.json().await.expect("problem JSON");
    assert_eq!(actual, status, "{body}");
    assert_eq!(body["status"], status);
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    body
}

/// The `field`s of a problem's `errors`.
pub fn problem_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The id in the body of a 201 response, under `field`.
pub async fn created_id(response: reqwest::Response, field: &str) -> Uuid {
    let status = response.status();
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(status, 201, "expected 201 Created, got {body}");
    body[field]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("{field} in {body}"))
}

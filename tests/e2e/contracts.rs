//! The published contracts under `contracts/` are what the code generates: both OpenAPI
//! documents, the AsyncAPI document, and a JSON Schema per event type and version. An event
//! schema that changed incompatibly under the same schema version is refused, always.
//!
//! After an intended change: `UPDATE_CONTRACTS=1 scripts/test contracts` rewrites the files
//! (still refusing incompatible event changes), and the diff goes into the commit.

use std::path::{Path, PathBuf};

use serde_json::Value;

fn contracts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts")
}

fn updating() -> bool {
    std::env::var_os("UPDATE_CONTRACTS").is_some()
}

/// Compares `generated` with the committed file (or writes it when updating).
fn check(relative: &str, generated: &Value) {
    let path = contracts().join(relative);
    let rendered = serde_json::to_string_pretty(generated).unwrap() + "\n";
    if updating() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, rendered).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == rendered,
        "contracts/{relative} is not what the code generates; run `UPDATE_CONTRACTS=1 scripts/test contracts` and commit the diff"
    );
}

#[test]
fn openapi_documents_are_current() {
    check(
        "openapi/command-service.json",
        &serde_json::to_value(command_service::http::openapi()).unwrap(),
    );
    check(
        "openapi/query-service.json",
        &serde_json::to_value(query_service::http::openapi()).unwrap(),
    );
}

#[test]
fn the_asyncapi_document_is_current() {
    check("asyncapi.json", &shared_events::contract::asyncapi());
}

#[test]
fn event_schemas_change_only_compatibly_within_a_schema_version() {
    for (file, generated) in shared_events::contract::event_schemas() {
        let path = contracts().join("events").join(&file);
        if let Ok(committed) = std::fs::read_to_string(&path) {
            let committed: Value = serde_json::from_str(&committed).unwrap();
            let problems = shared_events::contract::compatibility_problems(&committed, &generated);
            assert!(
                problems.is_empty(),
                "{file} changed incompatibly without a new schema version: {problems:?}. Bump the event's schema version in shared-events and upcast the old one."
            );
        }
        check(&format!("events/{file}"), &generated);
    }
}

//! The OpenAPI document: served at GET /v1/openapi.json (no key), the same as the committed
//! docs/openapi.json, and every operation it lists is a route the node serves.

use crate::common::TestNode;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_served_and_every_route_in_it_answers() {
    let node = TestNode::start("").await;
    let (s, doc) = node.call(Method::GET, "/v1/openapi.json", "", None).await;
    assert_eq!(s, StatusCode::OK, "{doc}");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"))
            .expect("docs/openapi.json"),
    )
    .expect("docs/openapi.json is JSON");
    assert!(
        doc == committed,
        "the served document is not docs/openapi.json"
    );

    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let concrete = path
            .replace("{session_id}", "s_00000000000000000000000000000000")
            .replace("{user_id}", "nobody");
        for method in item.as_object().expect("a path item").keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
            let body = matches!(m, Method::POST | Method::PUT).then(|| json!({}));
            // Without a key, proof or signature: refused, or answered by an open route, but
            // never "no such endpoint" or "method not allowed".
            let (s, b) = node.call(m.clone(), &concrete, "", body).await;
            assert!(
                s != StatusCode::NOT_FOUND && s != StatusCode::METHOD_NOT_ALLOWED,
                "{m} {path} is documented but not served: {s} {b}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 30, "{checked} operations");
}

//! The node's lifecycle: `run` on a listener bound to port 0, stopped by its shutdown signal,
//! leaves nothing running (its RocksDB is closed, so the same data opens again in the same
//! process) and an open event stream does not hold the shutdown up.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{TestNode, ADMIN_KEY, APP_KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_restarts_on_its_data_with_its_sessions() {
    let node = TestNode::start("").await;
    let (_, token) = node.login("alice").await;
    let (ended, _) = node.login("bob").await;
    let (s, b) = node
        .call(
            Method::DELETE,
            &format!("/v1/sessions/{ended}"),
            APP_KEY,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Stopping while an event stream is open must not wait for the subscriber.
    let stream = node.open_stream("/v1/events", ADMIN_KEY).await;
    assert_eq!(stream.status(), StatusCode::OK);
    let dir = node.stop().await;

    // A database still open anywhere in this process would refuse to open again (its lock).
    let node = TestNode::restart(dir, "").await;
    node.wait_until(|| async {
        let (s, b) = node.call(Method::GET, "/readyz", "", None).await;
        s == StatusCode::OK && b["ready"] == true
    })
    .await;
    assert_eq!(node.validate(&token).await["valid"], true);
    let (s, b) = node
        .call(Method::GET, &format!("/v1/sessions/{ended}"), APP_KEY, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["session"]["state"], "ended");
    // And it takes writes again.
    let (s, b) = node
        .call(
            Method::POST,
            "/v1/sessions",
            APP_KEY,
            Some(json!({"user_id": "carol"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    drop(stream);
    node.stop().await;
}

//! The live event stream: GET /v1/events sends each session state change as it is applied.

use std::time::Duration;

use crate::common::{assert_error, TestNode, ADMIN_KEY, APP_KEY};
use reqwest::{Method, StatusCode};

/// Reads the stream until `want` appears in it, for at most 10 s and 1 MiB.
async fn read_until(resp: &mut reqwest::Response, want: &[&str]) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !want.iter().all(|w| seen.contains(w)) {
        assert!(seen.len() < 1 << 20, "stream too long without {want:?}");
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, resp.chunk()).await {
            Ok(Ok(Some(bytes))) => seen.push_str(&String::from_utf8_lossy(&bytes)),
            other => panic!("stream ended or timed out ({other:?}) before {want:?}; saw:\n{seen}"),
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_announce_state_changes() {
    let node = TestNode::start("").await;
    let (s, b) = node.call(Method::GET, "/v1/events", APP_KEY, None).await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "forbidden", None);

    let mut all = node.open_stream("/v1/events", ADMIN_KEY).await;
    assert_eq!(all.status(), StatusCode::OK);
    assert!(all.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut mine = node.open_stream("/v1/events?user_id=kim", ADMIN_KEY).await;

    node.login("someone-else").await;
    let (id, _) = node.login("kim").await;
    node.call(Method::DELETE, &format!("/v1/sessions/{id}"), APP_KEY, None)
        .await;

    let seen = read_until(
        &mut all,
        &["event: session", "\"someone-else\"", "\"logout\""],
    )
    .await;
    assert!(seen.contains(&id));
    let seen = read_until(&mut mine, &["\"logout\""]).await;
    assert!(
        !seen.contains("someone-else"),
        "the filtered stream shows only kim:\n{seen}"
    );
    assert!(
        seen.contains("\"state\":\"active\""),
        "the login came first:\n{seen}"
    );
}

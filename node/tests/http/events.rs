//! The live event stream: GET /v1/events sends each session state change as it is applied, to
//! any key; a subscriber resumes with Last-Event-ID and misses nothing retention keeps.

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
    let (s, b) = node.call(Method::GET, "/v1/events", "", None).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "unauthorized", None);

    // An app key may follow the stream (apps log users out from it).
    let mut all = node.open_stream("/v1/events", APP_KEY).await;
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

/// The `(event, id, data)` of each complete event in `text`, keep-alives skipped.
fn parse(text: &str) -> Vec<(String, String, serde_json::Value)> {
    text.split("\n\n")
        .filter(|block| block.contains("data:"))
        .map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
                    .unwrap_or_default()
            };
            let data = serde_json::from_str(&field("data:")).expect("event data is JSON");
            (field("event:"), field("id:"), data)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_resumes_after_its_last_event_and_misses_nothing() {
    let node = TestNode::start("").await;
    let mut stream = node.open_stream("/v1/events", APP_KEY).await;
    let (first, _) = node.login("ana").await;
    let seen = read_until(&mut stream, &[&first]).await;
    let events = parse(&seen);
    assert_eq!(events.len(), 1, "{seen}");
    let (kind, first_id, data) = &events[0];
    assert_eq!(kind, "session");
    assert_eq!(data["session"]["state"], "active");
    drop(stream);

    // While it is away: ana's session ends, bob logs in, then carl.
    node.call(
        Method::DELETE,
        &format!("/v1/sessions/{first}"),
        APP_KEY,
        None,
    )
    .await;
    let (bob, _) = node.login("bob").await;
    let (carl, _) = node.login("carl").await;

    let mut back = node
        .resume_stream("/v1/events", APP_KEY, Some(first_id))
        .await;
    assert_eq!(back.status(), StatusCode::OK);
    let seen = read_until(&mut back, &[&carl]).await;
    let events = parse(&seen);
    let order: Vec<(String, String)> = events
        .iter()
        .map(|(_, _, d)| {
            (
                d["session"]["session_id"].as_str().unwrap().to_owned(),
                d["session"]["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        order,
        vec![
            (first.clone(), "ended".to_owned()),
            (bob.clone(), "active".to_owned()),
            (carl.clone(), "active".to_owned()),
        ],
        "what changed after the last event, in log order:\n{seen}"
    );
    // Then the live changes follow on the same stream.
    node.call(
        Method::DELETE,
        &format!("/v1/sessions/{bob}"),
        APP_KEY,
        None,
    )
    .await;
    let seen = read_until(&mut back, &["\"logout\""]).await;
    assert!(seen.contains(&bob), "{seen}");

    // Resuming after the newest event sends nothing old; a user filter applies to the catch-up.
    let newest = parse(&seen).last().unwrap().1.clone();
    let mut quiet = node
        .resume_stream("/v1/events?user_id=ana", APP_KEY, Some(first_id))
        .await;
    let seen = read_until(&mut quiet, &[&first]).await;
    assert!(!seen.contains(&bob) && !seen.contains(&carl), "{seen}");
    let mut after = node
        .resume_stream("/v1/events", APP_KEY, Some(&newest))
        .await;
    let (dave, _) = node.login("dave").await;
    let seen = read_until(&mut after, &[&dave]).await;
    assert_eq!(parse(&seen).len(), 1, "only the new change:\n{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_older_than_retention_is_told_trimmed() {
    let node = TestNode::start("").await;
    let (id, _) = node.login("ana").await;
    // A position from long ago (1 ms after the epoch): retention may have dropped changes.
    let mut stream = node.resume_stream("/v1/events", APP_KEY, Some("1-1")).await;
    let seen = read_until(&mut stream, &["event: trimmed", &id]).await;
    let events = parse(&seen);
    assert_eq!(events[0].0, "trimmed", "{seen}");
    assert_eq!(events[0].2["asked"], "1-1");
    assert_eq!(events[1].0, "session", "then what is kept:\n{seen}");

    // An id that is not one of this stream's is refused, naming the header.
    for bad in ["yesterday", "12", "1-x"] {
        let resp = node.resume_stream("/v1/events", APP_KEY, Some(bad)).await;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "bad_request",
            Some("Last-Event-ID"),
        );
    }
}

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

/// `[limits]` with the two event stream bounds.
fn stream_limits(node: usize, per_key: usize) -> String {
    format!("[limits]\nmax_event_streams = {node}\nmax_event_streams_per_key = {per_key}\n")
}

/// Opens a stream with `key` and checks it is refused 503 `unavailable` naming `bound`.
async fn assert_stream_refused(node: &TestNode, key: &str, bound: &str) {
    let resp = node.open_stream("/v1/events", key).await;
    let status = resp.status();
    // Checked before the body is read: an accepted stream's body never ends.
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "a stream past {bound} was not refused"
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_error(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        None,
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(bound), "the message names {bound}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_past_the_per_key_cap_are_refused_503() {
    let node = TestNode::start_with("", None, &stream_limits(8, 2)).await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let s = node.open_stream("/v1/events", APP_KEY).await;
        assert_eq!(s.status(), StatusCode::OK);
        open.push(s);
    }
    assert_stream_refused(&node, APP_KEY, "max_event_streams_per_key = 2").await;
    // Another key has a budget of its own.
    let other = node.open_stream("/v1/events", ADMIN_KEY).await;
    assert_eq!(other.status(), StatusCode::OK);
    // The streams still open work.
    let (id, _) = node.login("ana").await;
    for s in &mut open {
        read_until(s, &[&id]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_past_the_node_cap_are_refused_503() {
    let node = TestNode::start_with("", None, &stream_limits(3, 2)).await;
    let mut open = Vec::new();
    for key in [APP_KEY, APP_KEY, ADMIN_KEY] {
        let s = node.open_stream("/v1/events", key).await;
        assert_eq!(s.status(), StatusCode::OK);
        open.push(s);
    }
    // The admin key has a slot of its own left, the node none.
    assert_stream_refused(&node, ADMIN_KEY, "max_event_streams = 3").await;
    // Other requests are not counted against streams.
    node.login("ana").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_holds_its_slot_past_the_response_head() {
    let node = TestNode::start_with("", None, &stream_limits(1, 1)).await;
    let mut first = node.open_stream("/v1/events", APP_KEY).await;
    assert_eq!(first.status(), StatusCode::OK);
    // The head was sent and events flow: the stream is open, and still counted.
    let (id, _) = node.login("ana").await;
    read_until(&mut first, &[&id]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_stream_refused(&node, APP_KEY, "max_event_streams_per_key = 1").await;
    assert_stream_refused(&node, ADMIN_KEY, "max_event_streams = 1").await;
    let (_, metrics) = node.call(Method::GET, "/metrics", ADMIN_KEY, None).await;
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(
        metrics.contains("sessync_event_streams_open 1"),
        "one stream open:\n{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stream_gives_its_slot_back() {
    let node = TestNode::start_with("", None, &stream_limits(1, 1)).await;
    let first = node.open_stream("/v1/events", APP_KEY).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_stream_refused(&node, APP_KEY, "max_event_streams_per_key = 1").await;
    // The client goes: its connection closes, the node drops the stream and its slot.
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let again = node.open_stream("/v1/events", APP_KEY).await;
        if again.status() == StatusCode::OK {
            break;
        }
        assert_eq!(again.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed stream's slot did not come back within 40 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_that_ends_many_sessions_announces_each_of_them() {
    let node = TestNode::start("").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(node.login("kim").await.0);
    }
    let mut stream = node.open_stream("/v1/events?user_id=kim", APP_KEY).await;
    // One entry ends all three.
    let (s, b) = node
        .call(Method::POST, "/v1/users/kim/invalidate", APP_KEY, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["ended"], 3);
    let want: Vec<&str> = ids.iter().map(String::as_str).collect();
    let seen = read_until(&mut stream, &want).await;
    let ended = parse(&seen)
        .iter()
        .filter(|(_, _, d)| d["session"]["state"] == "ended")
        .count();
    assert_eq!(ended, 3, "{seen}");
}

/// Reads `n` session events (and any `trimmed`) from the stream, for at most 30 s.
async fn read_events(
    resp: &mut reqwest::Response,
    n: usize,
) -> Vec<(String, String, serde_json::Value)> {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let events = parse(&seen[..seen.rfind("\n\n").map_or(0, |i| i + 2)]);
        let sessions = events.iter().filter(|(k, _, _)| k == "session").count();
        if sessions >= n {
            return events;
        }
        assert!(seen.len() < 8 << 20, "stream too long");
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, resp.chunk()).await {
            Ok(Ok(Some(bytes))) => seen.push_str(&String::from_utf8_lossy(&bytes)),
            other => panic!("stream ended or timed out ({other:?}) after {sessions} of {n}"),
        }
    }
}

/// The `(session_id, state)` of each session event, and its index.
fn sessions_of(events: &[(String, String, serde_json::Value)]) -> Vec<(u64, String, String)> {
    events
        .iter()
        .filter(|(k, _, _)| k == "session")
        .map(|(_, _, d)| {
            (
                d["index"].as_u64().unwrap(),
                d["session"]["session_id"].as_str().unwrap().to_owned(),
                d["session"]["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_from_0_0_reads_changes_by_position_not_a_scan() {
    // More sessions than a catch-up page (500), created concurrently so that entries carry
    // several (group commit) and a page may end inside one.
    const N: usize = 700;
    let node = std::sync::Arc::new(TestNode::start("").await);
    let mut created = std::collections::BTreeSet::new();
    for chunk in (0..N).collect::<Vec<_>>().chunks(50) {
        let logins = chunk.iter().map(|i| {
            let node = node.clone();
            async move { node.login(&format!("u{i}")).await.0 }
        });
        created.extend(futures::future::join_all(logins).await);
    }
    assert_eq!(created.len(), N);

    // From 0-0: `trimmed` (0 is older than retention), then every session once, by position.
    let mut all = node.resume_stream("/v1/events", APP_KEY, Some("0-0")).await;
    let events = read_events(&mut all, N).await;
    assert_eq!(events[0].0, "trimmed");
    let got = sessions_of(&events);
    assert_eq!(got.len(), N, "each session once");
    assert!(got.windows(2).all(|w| w[0].0 <= w[1].0), "in log order");
    let ids: std::collections::BTreeSet<String> = got.iter().map(|g| g.1.clone()).collect();
    assert_eq!(ids, created);
    let position = events.last().unwrap().1.clone();

    // Few change after that position: a resume there gets exactly those, in their order.
    let ended: Vec<String> = got.iter().step_by(97).map(|g| g.1.clone()).collect();
    for id in &ended {
        let (s, b) = node
            .call(Method::DELETE, &format!("/v1/sessions/{id}"), APP_KEY, None)
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let mut back = node
        .resume_stream("/v1/events", APP_KEY, Some(&position))
        .await;
    let events = read_events(&mut back, ended.len()).await;
    let got = sessions_of(&events);
    assert_eq!(
        got.iter().map(|g| g.1.clone()).collect::<Vec<_>>(),
        ended,
        "exactly the later changes, in order"
    );
    assert!(got.iter().all(|g| g.2 == "ended"));
    // Nothing more: the next event is a new change.
    let (late, _) = node.login("late").await;
    let seen = read_until(&mut back, &[&late]).await;
    assert_eq!(sessions_of(&parse(&seen)).len(), 1, "{seen}");
}

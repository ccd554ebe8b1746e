//! The listener's bounds, which hold before any key is checked: slow or idle connections cut
//! off, requests in progress and connections open bounded (in all and per source), node-to-node
//! traffic with a budget of its own, oversized headers refused, and a drain with a deadline.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{TestNode, ADMIN_KEY, APP_KEY, PEER};
use crate::recipes::{federation_head, now_ms};
use crate::wire::{addr, connect_from, healthz_on, read_until_closed, send_head, status_within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_slow_bodies_are_cut_off() {
    let node = TestNode::start_with(
        "",
        None,
        "[limits]\nheader_timeout = \"1s\"\nbody_timeout = \"1s\"",
    )
    .await;
    // Half a request line, then nothing: the node closes the connection.
    let mut s = TcpStream::connect(addr(&node)).await.unwrap();
    s.write_all(b"GET /healthz HT").await.unwrap();
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(
        closed,
        "a connection that never finished its headers stayed open"
    );

    // Headers, then a body that never comes: 408 request_timeout.
    let mut s = TcpStream::connect(addr(&node)).await.unwrap();
    s.write_all(
        format!(
            "POST /v1/sessions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {APP_KEY}\r\n\
             content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"user"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let (answer, _) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");

    // A kept-alive connection that sends no next request is closed too.
    let mut s = TcpStream::connect(addr(&node)).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed, "an idle kept-alive connection stayed open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_with_nothing_sent_either_way_is_closed_after_idle_timeout() {
    let node = TestNode::start_with("", None, "[limits]\nidle_timeout = \"1s\"").await;
    // An event stream with no events (keep-alives come every 15 s): idle, so closed.
    let mut s = TcpStream::connect(addr(&node)).await.unwrap();
    s.write_all(
        format!("GET /v1/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ADMIN_KEY}\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed, "an idle event stream stayed open past idle_timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_max_concurrent_requests_are_answered_503_at_once() {
    let node = TestNode::start_with(
        "",
        None,
        "[limits]\nmax_concurrent_requests = 1\nbody_timeout = \"20s\"",
    )
    .await;
    // One request in progress: its body is slow to come.
    let body = r#"{"user_id": "u1"}"#;
    let mut held = TcpStream::connect(addr(&node)).await.unwrap();
    held.write_all(
        format!(
            "POST /v1/sessions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {APP_KEY}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
            body.len(),
            &body[..1]
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, b) = node.call(Method::GET, "/v1/config", ADMIN_KEY, None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    assert_eq!(b["error"]["code"], "unavailable");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_concurrent_requests"));
    // Once it finishes, the next one is served.
    held.write_all(&body.as_bytes()[1..]).await.unwrap();
    let (answer, _) = read_until_closed(&mut held, Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let (s, _) = node.call(Method::GET, "/v1/config", ADMIN_KEY, None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_max_connections_wait_for_one_to_close() {
    let node = TestNode::start_with("", None, "[limits]\nmax_connections = 1").await;
    // reqwest's pool may hold a connection open: use raw sockets only.
    drop(node.call(Method::GET, "/healthz", "", None).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut first = TcpStream::connect(addr(&node)).await.unwrap();
    first
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = first.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // The second is accepted by the kernel but not served while the first is open.
    let mut second = TcpStream::connect(addr(&node)).await.unwrap();
    second
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = read_until_closed(&mut second, Duration::from_millis(700)).await;
    assert!(answer.is_empty(), "served past max_connections: {answer}");
    drop(first);
    let (answer, _) = read_until_closed(&mut second, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// One caller could hold every connection (`max_connections` is shared by all, node-to-node
/// traffic included) with a request on each now and then. A source gets at most
/// `max_connections_per_source`; past it a connection is closed as it arrives, and other
/// sources are still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_cannot_hold_every_connection() {
    let node = TestNode::start_with(
        "",
        None,
        "[limits]\nmax_connections = 16\nmax_connections_per_source = 2",
    )
    .await;
    let greedy = [127, 0, 0, 3];
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = connect_from(&node, greedy).await;
        let answer = healthz_on(&mut s).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        held.push(s);
    }
    let mut third = connect_from(&node, greedy).await;
    let (answer, closed) = read_until_closed(&mut third, Duration::from_secs(2)).await;
    assert!(
        closed && answer.is_empty(),
        "a third connection from one source was kept open or served: {answer:?}"
    );
    let mut other = connect_from(&node, [127, 0, 0, 4]).await;
    let answer = healthz_on(&mut other).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // A source's share is given back as its connections close.
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = connect_from(&node, greedy).await;
    let answer = healthz_on(&mut again).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Slow clients of the API (and of the peer-site routes) hold every slot of their budgets; the
/// node-to-node routes have a budget of their own, so Raft is still answered (here by the proof
/// check), not shed with 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_slow_api_or_federation_requests_does_not_shed_raft_traffic() {
    let node = TestNode::start_with(
        "",
        None,
        "[limits]\nmax_concurrent_requests = 2\nbody_timeout = \"20s\"\nrequest_timeout = \"20s\"",
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(
            send_head(
                &node,
                &format!(
                    "POST /v1/sessions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {APP_KEY}\r\n\
                     content-type: application/json\r\ncontent-length: 100\r\n\r\n"
                ),
                b"{\"us",
            )
            .await,
        );
    }
    // Peer-site requests that pass every check made before the body, with slow bodies.
    let good = serde_json::json!({
        "op_id": "op_1", "origin_site": "site-p", "user_id": "alice",
        "origin_time": sessync_proto::Timestamp::now(),
    })
    .to_string();
    let good = good.as_bytes();
    for i in 0..2 {
        let nonce = format!("{i}").repeat(32);
        let head = federation_head(PEER, now_ms(), &nonce, good, good.len());
        held.push(send_head(&node, &head, &good[..3]).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, b) = node.call(Method::GET, "/v1/config", ADMIN_KEY, None).await;
    assert_eq!(
        s,
        StatusCode::SERVICE_UNAVAILABLE,
        "the API budget is full: {b}"
    );
    let nonce = "9".repeat(32);
    let head = federation_head(PEER, now_ms(), &nonce, good, good.len());
    let mut s = send_head(&node, &head, good).await;
    let (code, answer) = status_within(&mut s, Duration::from_secs(2)).await;
    assert_eq!(code, 503, "the peer-site budget is full: {answer}");
    for _ in 0..3 {
        let mut s = send_head(
            &node,
            "POST /raft/vote HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n",
            b"{}",
        )
        .await;
        let (code, answer) = status_within(&mut s, Duration::from_secs(2)).await;
        assert_eq!(
            code, 401,
            "raft was not answered by its proof check: {answer}"
        );
    }
    drop(held);
}

/// hyper's read buffer is bounded: headers longer than 64 KiB are answered 431.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_longer_than_the_read_buffer_are_refused_with_431() {
    let node = TestNode::start("").await;
    let mut s = TcpStream::connect(addr(&node)).await.unwrap();
    let head = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-padding: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    // The node may close before it has read everything: a write error is fine.
    let _ = s.write_all(head.as_bytes()).await;
    let (answer, _) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.200}");
    // Ordinary headers are still served.
    let (s, _) = node.call(Method::GET, "/healthz", "", None).await;
    assert_eq!(s, StatusCode::OK);
}

/// A drain waits DRAIN for requests in progress, then aborts their connections: the node stops
/// within DRAIN and a little, its database closed (the same directory opens again), even with a
/// request whose body never comes and timeouts far longer than the drain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_closes_connections_still_open_at_its_deadline() {
    let node = TestNode::start_with(
        "",
        None,
        "[limits]\nbody_timeout = \"60s\"\nrequest_timeout = \"60s\"\nidle_timeout = \"60s\"",
    )
    .await;
    let mut held = send_head(
        &node,
        &format!(
            "POST /v1/sessions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {APP_KEY}\r\n\
             content-type: application/json\r\ncontent-length: 100\r\n\r\n"
        ),
        b"{\"us",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let dir = node.stop().await;
    let took = started.elapsed();
    println!("stopped in {took:?} with a request in progress");
    // DRAIN is 5 s; without the abort the node waited for the request (60 s) or gave up on
    // closing its database.
    assert!(took < Duration::from_millis(7_500), "stopped in {took:?}");
    let (_, closed) = read_until_closed(&mut held, Duration::from_secs(2)).await;
    assert!(closed, "the held connection was left open");
    let node = TestNode::restart(dir, "").await;
    let (s, _) = node.call(Method::GET, "/healthz", "", None).await;
    assert_eq!(s, StatusCode::OK);
}

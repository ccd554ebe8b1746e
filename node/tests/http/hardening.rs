//! What a stranger (no key, no cluster secret) can do to a node, and the bounds that stop it:
//! node-to-node proofs checked before a body is read, replays and other targets refused, slow
//! and idle connections cut off, requests in progress bounded, refusals counted and reported in
//! aggregate; and TLS on the listener.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{TestNode, TestTls, ADMIN_KEY, APP_KEY};
use crate::recipes::{clock_note, cluster_proof, cluster_proof_at, now_ms};

/// The node's address (`127.0.0.1:port`).
fn addr(node: &TestNode) -> String {
    node.url.rsplit("//").next().unwrap().to_owned()
}

/// Reads from `s` until the server closes it or `within` passes; what was read, and whether it
/// closed.
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raft_rpc_is_refused_before_its_body_is_read() {
    let node = TestNode::start("").await;
    // Headers announcing 60 MB and no proof: the answer comes without a byte of body sent.
    let mut s = TcpStream::connect(addr(&node)).await.unwrap();
    s.write_all(
        b"POST /raft/append HTTP/1.1\r\nhost: x\r\ncontent-length: 60000000\r\n\
          content-type: application/json\r\n\r\n",
    )
    .await
    .unwrap();
    let (answer, _) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    // A real proof that declares more than the route takes: 413, still before the body.
    let proof = cluster_proof("/raft/vote", 1, 10_000_000, b"", &"a".repeat(32));
    let mut s = TcpStream::connect(addr(&node)).await.unwrap();
    s.write_all(
        format!(
            "POST /raft/vote HTTP/1.1\r\nhost: x\r\ncontent-length: 10000000\r\n\
             x-sessync-cluster-auth: {proof}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let (answer, _) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_raft_rpc_cannot_be_replayed_or_sent_to_another_node() {
    let node = TestNode::start("").await;
    let http = reqwest::Client::new();
    let post = |path: &'static str, proof: String, body: &'static str| {
        let http = http.clone();
        let url = format!("{}{path}", node.url);
        async move {
            let r = http
                .post(url)
                .header("x-sessync-cluster-auth", proof)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.text().await.unwrap())
        }
    };
    let body = "{}";
    let nonce = "0123456789abcdef0123456789abcdef";
    let proof = cluster_proof("/raft/read-index", 1, body.len(), body.as_bytes(), nonce);
    // This node leads: a read-index question with a valid proof is answered.
    let (s, text) = post("/raft/read-index", proof.clone(), body).await;
    assert_eq!(s, StatusCode::OK, "{text}");
    // The same request again is a replay.
    let (s, text) = post("/raft/read-index", proof, body).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(text.contains("replayed"), "{text}");
    // A proof for node 2 does not open node 1.
    let other = cluster_proof(
        "/raft/read-index",
        2,
        body.len(),
        body.as_bytes(),
        &"b".repeat(32),
    );
    let (s, text) = post("/raft/read-index", other, body).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(text.contains("wrong_target"), "{text}");
    // A body other than the one signed.
    let signed = cluster_proof("/raft/read-index", 1, 2, b"{}", &"c".repeat(32));
    let (s, text) = post("/raft/read-index", signed, "[]").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(text.contains("body_mismatch"), "{text}");
    // The old header format is malformed now.
    let (s, _) = post(
        "/raft/read-index",
        format!("t=1,sig={}", "0".repeat(64)),
        body,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Each refusal is counted by reason.
    let (_, m) = node.call(Method::GET, "/metrics", ADMIN_KEY, None).await;
    let m = m.as_str().unwrap_or_default().to_owned();
    for reason in ["replayed", "wrong_target", "body_mismatch", "malformed"] {
        assert!(
            m.contains(&format!(
                "sessync_raft_rpc_refused_total{{reason=\"{reason}\"}} 1"
            )),
            "{reason} in:\n{m}"
        );
    }
}

/// A node whose clock is far off has its calls refused as stale; the refusal tells it the time
/// (signed for its request), so it finds out it is off. A stranger is told nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_proof_is_answered_with_the_signed_clock_and_a_strangers_is_not() {
    let node = TestNode::start("").await;
    let http = reqwest::Client::new();
    let vote = |proof: String| {
        http.post(format!("{}/raft/vote", node.url))
            .header("x-sessync-cluster-auth", proof)
            .body("{}")
            .send()
    };
    let nonce = "d".repeat(32);
    let twenty_minutes_behind = now_ms() - 20 * 60 * 1000;
    let stale = cluster_proof_at("/raft/vote", 1, 2, b"{}", &nonce, twenty_minutes_behind);
    let resp = vote(stale).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let header = resp.headers()["x-sessync-clock"]
        .to_str()
        .unwrap()
        .to_owned();
    let told = clock_note(&header, &nonce).expect("a clock signed for this exchange");
    assert!(told.abs_diff(now_ms()) < 5_000, "told {told}");
    assert_eq!(clock_note(&header, &"e".repeat(32)), None);
    assert!(resp.text().await.unwrap().contains("stale"));

    // A proof made without the secret: refused, and no clock.
    let forged = cluster_proof("/raft/vote", 1, 2, b"{}", &nonce).replace("sig=", "sig=0");
    let forged = forged[..forged.len() - 1].to_owned();
    let resp = vote(forged).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().get("x-sessync-clock").is_none());
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_failures_are_counted_and_reported_once_per_source_and_reason() {
    let node = TestNode::start_with("", None, "[limits]\nfailure_report_interval = \"1s\"").await;
    for _ in 0..40 {
        let (s, _) = node
            .call(Method::GET, "/v1/sessions/s_x", "not-a-key", None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    for _ in 0..3 {
        let (s, _) = node.call(Method::GET, "/v1/audit", APP_KEY, None).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let events = || async {
        let (_, a) = node
            .call(
                Method::GET,
                "/v1/audit?kind=auth_failure&limit=1000",
                ADMIN_KEY,
                None,
            )
            .await;
        a["events"].as_array().cloned().unwrap_or_default()
    };
    let count = |evs: &[Value], reason: &str| -> u64 {
        evs.iter()
            .filter(|e| e["detail"]["reason"] == reason)
            .map(|e| e["detail"]["count"].as_u64().unwrap())
            .sum()
    };
    node.wait_until(|| async {
        let e = events().await;
        count(&e, "unknown_key") == 40 && count(&e, "wrong_role") == 3
    })
    .await;
    let evs = events().await;
    // Far fewer events than failures: at most one per source, reason and interval.
    assert!(evs.len() <= 6, "{evs:?}");
    let one = evs
        .iter()
        .find(|e| e["detail"]["reason"] == "unknown_key")
        .unwrap();
    // Reported by network (IPv4 /24), not by address.
    assert_eq!(one["detail"]["source"], "127.0.0.0/24");
    assert!(
        one["detail"]["summary"]
            .as_str()
            .unwrap()
            .contains("unknown key, from 127.0.0.0/24, in 1s"),
        "{one}"
    );
    let (_, m) = node.call(Method::GET, "/metrics", ADMIN_KEY, None).await;
    let m = m.as_str().unwrap().to_owned();
    assert!(
        m.contains("sessync_auth_failures_total{reason=\"unknown_key\"} 40"),
        "{m}"
    );
    assert!(m.contains("sessync_auth_failures_total{reason=\"wrong_role\"} 3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_keeps_at_most_audit_max_events() {
    let node = TestNode::start("audit_max_events = 10").await;
    for i in 0..25 {
        node.login(&format!("cap-{i}")).await;
    }
    let (_, a) = node
        .call(Method::GET, "/v1/audit?limit=1000", ADMIN_KEY, None)
        .await;
    let evs = a["events"].as_array().unwrap();
    assert!(evs.len() <= 10, "{} events kept", evs.len());
    // The newest are kept: the last login is there.
    assert!(evs.iter().any(|e| e["user_id"] == "cap-24"), "{a}");
    let (_, m) = node.call(Method::GET, "/metrics", ADMIN_KEY, None).await;
    let m = m.as_str().unwrap().to_owned();
    let trimmed: u64 = m
        .lines()
        .find(|l| l.starts_with("sessync_audit_trimmed_total{reason=\"cap\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(trimmed >= 15, "trimmed {trimmed}:\n{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_https_only_and_can_require_client_certificates() {
    // HTTPS with the test CA; plain HTTP to the same port is not served.
    let tls = TestTls::new(false);
    let node = TestNode::start_tls(&tls).await;
    assert!(node.url.starts_with("https://"));
    let (s, b) = node.call(Method::GET, "/v1/config", ADMIN_KEY, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let plain = format!("http://{}/healthz", addr(&node));
    assert!(reqwest::get(&plain).await.is_err(), "plain HTTP was served");
    // A client that does not trust the CA refuses the node.
    assert!(reqwest::get(format!("{}/healthz", node.url)).await.is_err());

    // With client_ca_file, a caller without a certificate of the CA is refused in the handshake.
    let tls = TestTls::new(true);
    let node = TestNode::start_tls(&tls).await;
    node.login("tls-user").await;
    let anonymous = tls.client(false);
    let r = anonymous.get(format!("{}/healthz", node.url)).send().await;
    assert!(
        r.is_err(),
        "served a caller without a client certificate: {r:?}"
    );
    // A certificate of another CA is refused too.
    let other = TestTls::new(false).ca.issue("stranger").unwrap();
    let stranger = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(tls.ca.cert_pem().as_bytes()).unwrap())
        .identity(
            reqwest::Identity::from_pem(
                format!("{}\n{}", other.cert_pem, other.key_pem).as_bytes(),
            )
            .unwrap(),
        )
        .build()
        .unwrap();
    assert!(stranger
        .get(format!("{}/healthz", node.url))
        .send()
        .await
        .is_err());
    let known = tls.client(true);
    let r = known
        .get(format!("{}/healthz", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

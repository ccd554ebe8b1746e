//! What a stranger (no key, no cluster secret) can do to a node, and the bounds that stop it:
//! node-to-node proofs checked before a body is read, replays and other targets refused, slow
//! and idle connections cut off, requests in progress bounded, refusals counted and reported in
//! aggregate; and TLS on the listener.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{TestNode, TestTls, ADMIN_KEY, APP_KEY, PEER, PEER_SECRET};
use crate::recipes::{clock_note, cluster_proof, cluster_proof_at, now_ms, peer_headers};

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
async fn the_audit_log_keeps_at_most_audit_max_bytes() {
    let node = TestNode::start("audit_max_bytes = 4096").await;
    for i in 0..60 {
        node.login(&format!("bytes-{i}")).await;
    }
    let (_, m) = node.call(Method::GET, "/metrics", ADMIN_KEY, None).await;
    let m = m.as_str().unwrap().to_owned();
    let gauge = |name: &str| -> u64 {
        m.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    };
    let bytes = gauge("sessync_audit_bytes");
    assert!(bytes > 0 && bytes <= 4096, "audit bytes {bytes}:\n{m}");
    assert!(
        gauge("sessync_audit_trimmed_total{reason=\"cap\"}") > 0,
        "nothing trimmed:\n{m}"
    );
    let (_, a) = node
        .call(Method::GET, "/v1/audit?limit=1000", ADMIN_KEY, None)
        .await;
    let evs = a["events"].as_array().unwrap();
    assert!(evs.len() < 60, "{} events kept", evs.len());
    assert!(evs.iter().any(|e| e["user_id"] == "bytes-59"), "{a}");
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

    // With client_ca_file, certificates are asked for but only the routes of peer nodes and
    // sites require one: an app, an operator or a probe without one is served.
    let tls = TestTls::new(true);
    let node = TestNode::start_tls(&tls).await;
    let anonymous = tls.client(false);
    let r = anonymous
        .get(format!("{}/healthz", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = anonymous
        .post(format!("{}/v1/sessions", node.url))
        .bearer_auth(APP_KEY)
        .json(&serde_json::json!({"user_id": "tls-user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // A Raft route without a certificate is refused before its proof is looked at, even with a
    // valid proof; a peer site's route likewise.
    let body = b"{}";
    let proof = cluster_proof("/raft/read-index", 1, 2, body, &"f".repeat(32));
    let r = anonymous
        .post(format!("{}/raft/read-index", node.url))
        .header("x-sessync-cluster-auth", proof)
        .body(&body[..])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "forbidden");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("client certificate"),
        "{b}"
    );
    let r = anonymous
        .post(format!("{}/v1/federation/invalidate", node.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A certificate of another CA is refused in the handshake.
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
    // With a certificate of the CA, the Raft route goes on to the proof check, and a valid
    // proof is served.
    let known = tls.client(true);
    let r = known
        .post(format!("{}/raft/read-index", node.url))
        .body(&body[..])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("malformed"));
    let proof = cluster_proof("/raft/read-index", 1, 2, body, &"e".repeat(32));
    let r = known
        .post(format!("{}/raft/read-index", node.url))
        .header("x-sessync-cluster-auth", proof)
        .body(&body[..])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// Sends `head` (a request line and headers, ending in an empty line) and, if given, the start
/// of a body; the open connection.
async fn send_head(node: &TestNode, head: &str, body_start: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr(node)).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body_start).await.unwrap();
    s
}

/// The status line's code of what `s` answers within `within`, or 0 if nothing came.
async fn status_within(s: &mut TcpStream, within: Duration) -> (u16, String) {
    let (answer, _) = read_until_closed_or_answered(s, within).await;
    let code = answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, answer)
}

/// Like [`read_until_closed`], but returns as soon as a whole answer's headers are in.
async fn read_until_closed_or_answered(s: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if got.windows(4).any(|w| w == b"\r\n\r\n") {
            // Give the (small) body a moment to follow.
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await
            {
                got.extend_from_slice(&buf[..n]);
            }
            return (String::from_utf8_lossy(&got).into_owned(), false);
        }
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Headers of a federation invalidate as `site` would sign `body`, with `declared` as the
/// content length, and stamped `ts`.
fn federation_head(site: &str, ts: u64, nonce: &str, body: &[u8], declared: usize) -> String {
    let mut head = format!(
        "POST /v1/federation/invalidate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {declared}\r\n"
    );
    for (k, v) in peer_headers(
        site,
        PEER_SECRET.as_bytes(),
        "/v1/federation/invalidate",
        body,
        ts,
        nonce,
    ) {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head
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
    let good = br#"{"op_id":"op_1","origin_site":"site-p","user_id":"alice"}"#;
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

/// A peer-site request is refused on its headers alone (no configured site, a stale
/// timestamp, a bad nonce or signature, a nonce already used, a body declared too large) before
/// a byte of its body is read: 60 MB announced, none sent, and the answer comes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_federation_request_is_refused_before_its_body_is_read() {
    let node = TestNode::start("").await;
    node.login("alice").await;
    let good = br#"{"op_id":"op_1","origin_site":"site-p","user_id":"alice"}"#;
    // The genuine request, to have a used nonce.
    let used = "a".repeat(32);
    let mut s = send_head(
        &node,
        &federation_head(PEER, now_ms(), &used, good, good.len()),
        good,
    )
    .await;
    let (code, answer) = status_within(&mut s, Duration::from_secs(5)).await;
    assert_eq!(code, 200, "{answer}");

    let huge = 60_000_000;
    let stale = now_ms() - 20 * 60 * 1000;
    let cases = [
        (
            "unknown site",
            federation_head("site-stranger", now_ms(), &"b".repeat(32), good, huge),
        ),
        (
            "stale timestamp",
            federation_head(PEER, stale, &"c".repeat(32), good, huge),
        ),
        (
            "bad nonce",
            federation_head(PEER, now_ms(), "bad nonce!", good, huge),
        ),
        (
            "bad signature",
            federation_head(PEER, now_ms(), &"d".repeat(32), good, huge)
                .replace("x-sessync-signature: ", "x-sessync-signature: zz"),
        ),
        (
            "replayed nonce",
            federation_head(PEER, now_ms(), &used, good, huge),
        ),
    ];
    for (what, head) in cases {
        let started = std::time::Instant::now();
        let mut s = send_head(&node, &head, b"").await;
        let (code, answer) = status_within(&mut s, Duration::from_secs(5)).await;
        assert_eq!(code, 401, "{what}: {answer}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{what}: answered after {:?}",
            started.elapsed()
        );
    }
    // Every header right, but a body longer than a peer's request ever is: 413 at once.
    let started = std::time::Instant::now();
    let head = federation_head(PEER, now_ms(), &"e".repeat(32), good, huge);
    let mut s = send_head(&node, &head, b"").await;
    let (code, answer) = status_within(&mut s, Duration::from_secs(5)).await;
    assert_eq!(code, 413, "{answer}");
    assert!(started.elapsed() < Duration::from_secs(1));
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

/// Everything the node logs, from every test of this binary (tracing, and the `log` crate's
/// records through the bridge the binary installs too).
fn captured_log() -> &'static std::sync::Mutex<Vec<u8>> {
    static LOG: std::sync::OnceLock<&'static std::sync::Mutex<Vec<u8>>> =
        std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let log: &'static std::sync::Mutex<Vec<u8>> =
            Box::leak(Box::new(std::sync::Mutex::new(Vec::new())));
        struct Sink(&'static std::sync::Mutex<Vec<u8>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        use tracing_subscriber::util::SubscriberInitExt;
        tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_ansi(false)
            .with_writer(move || Sink(log))
            .finish()
            .try_init()
            .expect("no other test installs a subscriber");
        log
    })
}

/// A stranger's bad TLS handshake, and refused requests of every kind, write no log line each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_bad_handshakes_and_refused_requests_write_no_log_lines() {
    let log = captured_log();
    let tls = TestTls::new(true);
    let node = TestNode::start_tls(&tls).await;
    for _ in 0..5 {
        // A TLS warning alert instead of a ClientHello.
        let mut s = TcpStream::connect(addr(&node)).await.unwrap();
        s.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 0x00])
            .await
            .unwrap();
        let _ = read_until_closed(&mut s, Duration::from_millis(300)).await;
        // Not TLS at all.
        let mut s = TcpStream::connect(addr(&node)).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let _ = read_until_closed(&mut s, Duration::from_secs(2)).await;
        // A client that does not trust the node's CA.
        assert!(reqwest::get(format!("{}/healthz", node.url)).await.is_err());
        // Refused requests: no key, a bad proof, no client certificate.
        let anonymous = tls.client(false);
        let r = anonymous
            .get(format!("{}/v1/config", node.url))
            .bearer_auth("not-a-key")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = anonymous
            .post(format!("{}/raft/vote", node.url))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = tls
            .client(true)
            .post(format!("{}/raft/vote", node.url))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let text = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    let noisy: Vec<&str> = text
        .lines()
        .filter(|l| {
            ["rustls", "sessync_node::api", "accept failed"]
                .iter()
                .any(|t| l.contains(t))
        })
        .collect();
    assert!(
        noisy.is_empty(),
        "logged per refusal:\n{}",
        noisy.join("\n")
    );
}

/// A fresh, well-formed proof with a MAC that does not match, announcing 60 MB and sending
/// none: refused at once, on the header alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_raft_proof_announcing_a_huge_body_is_refused_at_once() {
    let node = TestNode::start("").await;
    let proof = cluster_proof("/raft/append", 1, 60_000_000, b"", &"a".repeat(32));
    // Another MAC: one hex digit changed.
    let forged = format!(
        "{}{}",
        &proof[..proof.len() - 1],
        if proof.ends_with('0') { '1' } else { '0' }
    );
    let started = std::time::Instant::now();
    let mut s = send_head(
        &node,
        &format!(
            "POST /raft/append HTTP/1.1\r\nhost: x\r\ncontent-length: 60000000\r\n\
             content-type: application/json\r\nx-sessync-cluster-auth: {forged}\r\n\r\n"
        ),
        b"",
    )
    .await;
    let (code, answer) = status_within(&mut s, Duration::from_secs(5)).await;
    assert_eq!(code, 401, "{answer}");
    assert!(answer.contains("bad_signature"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answered after {:?}",
        started.elapsed()
    );
}

/// A node-to-node nonce is used up only once the body matched its proof: a request cut short
/// or with another body does not burn it; while one request with it is being read, another is
/// refused; a body that does not come in time is counted as `body_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raft_nonce_is_used_up_only_once_the_body_matched() {
    let node = TestNode::start_with("", None, "[limits]\nbody_timeout = \"1s\"").await;
    let http = reqwest::Client::new();
    let post = |proof: String, body: &'static str| {
        let req = http
            .post(format!("{}/raft/read-index", node.url))
            .header("x-sessync-cluster-auth", proof)
            .body(body);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status();
            (status, r.text().await.unwrap())
        }
    };
    let nonce = "1".repeat(32);
    let proof = cluster_proof("/raft/read-index", 1, 2, b"{}", &nonce);
    // Another body under the proof: refused, the nonce not used up.
    let (s, text) = post(proof.clone(), "[]").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(text.contains("body_mismatch"), "{text}");
    // The body does not come in time: its own reason.
    let head = format!(
        "POST /raft/read-index HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\
         x-sessync-cluster-auth: {proof}\r\n\r\n"
    );
    let mut slow = send_head(&node, &head, b"{").await;
    // While that one is read, the same nonce is refused.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (s, text) = post(proof.clone(), "{}").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(text.contains("replayed"), "{text}");
    let (code, answer) = status_within(&mut slow, Duration::from_secs(5)).await;
    assert_eq!(code, 408, "{answer}");
    // The genuine request still goes through, once.
    let (s, text) = post(proof.clone(), "{}").await;
    assert_eq!(s, StatusCode::OK, "{text}");
    let (s, text) = post(proof, "{}").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(text.contains("replayed"), "{text}");
    let (_, m) = node.call(Method::GET, "/metrics", ADMIN_KEY, None).await;
    let m = m.as_str().unwrap_or_default().to_owned();
    for (reason, n) in [("body_timeout", 1), ("body_mismatch", 1), ("replayed", 2)] {
        assert!(
            m.contains(&format!(
                "sessync_raft_rpc_refused_total{{reason=\"{reason}\"}} {n}"
            )),
            "{reason} {n} in:\n{m}"
        );
    }
}

/// Opens a connection to `node` from the loopback address `from` (any of 127.0.0.0/8).
async fn connect_from(node: &TestNode, from: [u8; 4]) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::from((from, 0))).unwrap();
    socket.connect(addr(node).parse().unwrap()).await.unwrap()
}

/// Sends a kept-alive `GET /healthz` on `s` and reads its answer's first bytes.
async fn healthz_on(s: &mut TcpStream) -> String {
    if s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .is_err()
    {
        return String::new();
    }
    let mut buf = [0u8; 512];
    match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
        Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        _ => String::new(),
    }
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

/// A TLS node took `http://` URLs for new members, whose Raft traffic would then go in clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_node_refuses_plain_http_member_urls() {
    let tls = TestTls::new(false);
    let node = TestNode::start_tls(&tls).await;
    let (s, b) = node
        .call(
            Method::POST,
            "/cluster/learners",
            ADMIN_KEY,
            Some(serde_json::json!({"node_id": 2, "url": "http://127.0.0.1:9"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["error"]["field"], "url", "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("https://"),
        "{b}"
    );
}

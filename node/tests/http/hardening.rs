//! What a stranger (no key, no cluster secret) can do to a node besides holding connections
//! (listener.rs) and forging node-to-node proofs (raft_rpc.rs): refusals counted and reported
//! in aggregate, never a log line each; the audit log bounded; a peer site's request refused on
//! its headers before its body is read; and TLS on the listener.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::common::{TestNode, TestTls, ADMIN_KEY, APP_KEY, PEER};
use crate::recipes::{cluster_proof, federation_head, incarnation, now_ms};
use crate::wire::{addr, read_until_closed, send_head, status_within};

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

/// A peer-site request is refused on its headers alone (no configured site, a stale
/// timestamp, a bad nonce or signature, a nonce already used, a body declared too large) before
/// a byte of its body is read: 60 MB announced, none sent, and the answer comes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_federation_request_is_refused_before_its_body_is_read() {
    let node = TestNode::start("").await;
    node.login("alice").await;
    let good = serde_json::json!({
        "op_id": "op_1", "origin_site": "site-p", "user_id": "alice",
        "origin_time": sessync_proto::Timestamp::now(),
    })
    .to_string();
    let good = good.as_bytes();
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

/// The body of the Raft read-index calls below, and a proof for it from node 1 to node 2.
const READ_INDEX_BODY: &[u8] = b"{}";

fn read_index_proof(inc: u64, nonce: &str) -> String {
    cluster_proof("/raft/read-index", 1, inc, 2, READ_INDEX_BODY, nonce)
}

/// POST /raft/read-index on `node` through `client`, with `proof` if given.
async fn read_index(
    client: &reqwest::Client,
    node: &TestNode,
    proof: Option<String>,
) -> reqwest::Response {
    let mut req = client
        .post(format!("{}/raft/read-index", node.url))
        .body(READ_INDEX_BODY);
    if let Some(proof) = proof {
        req = req.header("x-sessync-cluster-auth", proof);
    }
    req.send().await.unwrap()
}

/// The leader's URL an answer names, if it names one.
fn leader_named(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("x-sessync-leader")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// `x-sessync-leader` went out on every answer, a stranger's too: anyone could learn which node
/// leads (the one to aim at). Only an answer to a proven caller (an API key of the route's
/// role, a node's proof, a peer site's signature) names it; refusals and the open routes do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_caller_is_not_told_the_leader() {
    let node = TestNode::start("").await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", node.url);
    let strangers = [
        client.get(url("/healthz")),
        client.get(url("/readyz")),
        client.get(url("/v1/openapi.json")),
        client.get(url("/no/such/route")),
        client.get(url("/v1/users/alice/sessions")),
        client
            .get(url("/v1/users/alice/sessions"))
            .bearer_auth("not-a-key"),
        client
            .post(url("/v1/sessions"))
            .json(&serde_json::json!({"user_id": "alice"})),
        // A valid key of the wrong role is refused too (403).
        client.get(url("/v1/audit")).bearer_auth(APP_KEY),
        client.post(url("/raft/read-index")).body(READ_INDEX_BODY),
        client.post(url("/v1/federation/invalidate")).body("{}"),
    ];
    for req in strangers {
        let r = req.send().await.unwrap();
        let what = format!("{} {}", r.status(), r.url());
        assert_eq!(leader_named(&r), None, "{what}");
    }

    // A proven caller is told, whatever the answer: a key's 200 and 404, a node's proof.
    let provens = [
        client
            .get(url("/v1/users/alice/sessions"))
            .bearer_auth(APP_KEY),
        client
            .get(url("/v1/sessions/s_0123456789abcdef0123456789abcdef"))
            .bearer_auth(APP_KEY),
        client.get(url("/v1/audit")).bearer_auth(ADMIN_KEY),
    ];
    for req in provens {
        let r = req.send().await.unwrap();
        let what = format!("{} {}", r.status(), r.url());
        assert_eq!(
            leader_named(&r).as_deref(),
            Some(node.url.as_str()),
            "{what}"
        );
    }
    let inc = incarnation(&client, &node.url).await;
    let r = read_index(&client, &node, Some(read_index_proof(inc, &"c".repeat(32)))).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(leader_named(&r).as_deref(), Some(node.url.as_str()));
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
    let proof = read_index_proof(0, &"f".repeat(32));
    let r = read_index(&anonymous, &node, Some(proof)).await;
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
    let r = read_index(&known, &node, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("malformed"));
    let inc = incarnation(&known, &node.url).await;
    let r = read_index(&known, &node, Some(read_index_proof(inc, &"e".repeat(32)))).await;
    assert_eq!(r.status(), StatusCode::OK);
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

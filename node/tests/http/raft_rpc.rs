//! Node-to-node proofs, as a stranger meets them: a Raft RPC's proof is checked (fresh, for
//! this node, MAC over the body's length and hash, unseen nonce) before its body is read, a
//! captured RPC cannot be replayed or sent to another node, nor to the same node once it has
//! restarted, and a stale proof is answered with the signed clock only to a caller who knows the
//! secret.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::common::{TestNode, ADMIN_KEY};
use crate::recipes::{
    answer_note, cluster_proof, cluster_proof_at, incarnation, now_ms, post_read_index,
};
use crate::wire::{addr, read_until_closed, send_head, status_within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raft_rpc_is_refused_before_its_body_is_read() {
    let node = TestNode::start("").await;
    let inc = incarnation(&reqwest::Client::new(), &node.url).await;
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
    let proof = cluster_proof("/raft/vote", 1, inc, 10_000_000, b"", &"a".repeat(32));
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
    let inc = incarnation(&http, &node.url).await;
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
    let proof = cluster_proof(
        "/raft/read-index",
        1,
        inc,
        body.len(),
        body.as_bytes(),
        nonce,
    );
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
        inc,
        body.len(),
        body.as_bytes(),
        &"b".repeat(32),
    );
    let (s, text) = post("/raft/read-index", other, body).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(text.contains("wrong_target"), "{text}");
    // A body other than the one signed.
    let signed = cluster_proof("/raft/read-index", 1, inc, 2, b"{}", &"c".repeat(32));
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
/// (signed, with the status and body, for its request), so it finds out it is off. A stranger
/// is told nothing.
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
    let stale = cluster_proof_at("/raft/vote", 1, 0, 2, b"{}", &nonce, twenty_minutes_behind);
    let resp = vote(stale).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let header = resp.headers()["x-sessync-answer"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = resp.bytes().await.unwrap();
    let told =
        answer_note(&header, &nonce, 401, &body).expect("an answer signed for this exchange");
    assert!(told.t2.abs_diff(now_ms()) < 5_000, "told {told:?}");
    assert!(told.t2 <= told.t3, "{told:?}");
    assert_eq!(answer_note(&header, &"e".repeat(32), 401, &body), None);
    assert_eq!(
        answer_note(&header, &nonce, 200, &body),
        None,
        "another status"
    );
    assert!(String::from_utf8_lossy(&body).contains("stale"));

    // A proof made without the secret: refused, and nothing signed.
    let forged = cluster_proof("/raft/vote", 1, 0, 2, b"{}", &nonce).replace("sig=", "sig=0");
    let forged = forged[..forged.len() - 1].to_owned();
    let resp = vote(forged).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().get("x-sessync-answer").is_none());
}

/// A fresh, well-formed proof with a MAC that does not match, announcing 60 MB and sending
/// none: refused at once, on the header alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_raft_proof_announcing_a_huge_body_is_refused_at_once() {
    let node = TestNode::start("").await;
    let proof = cluster_proof("/raft/append", 1, 0, 60_000_000, b"", &"a".repeat(32));
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
    let inc = incarnation(&http, &node.url).await;
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
    let proof = cluster_proof("/raft/read-index", 1, inc, 2, b"{}", &nonce);
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

/// Nonces are kept in memory: a restarted node had forgotten them, and a captured RPC sent to
/// it again within the freshness window was served a second time. Proofs name the target's
/// incarnation, drawn at each start: the capture is refused, and the signed refusal names the
/// new incarnation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_raft_rpc_cannot_be_replayed_to_a_restarted_node() {
    let node = TestNode::start("").await;
    let http = reqwest::Client::new();
    let inc = incarnation(&http, &node.url).await;
    let nonce = "7".repeat(32);
    let captured = cluster_proof("/raft/read-index", 1, inc, 2, b"{}", &nonce);
    let send = |url: String, proof: String| {
        let http = http.clone();
        async move {
            let r = post_read_index(&http, &url, proof).await;
            let status = r.status();
            let header = r
                .headers()
                .get("x-sessync-answer")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, header, r.bytes().await.unwrap())
        }
    };
    let (s, _, body) = send(node.url.clone(), captured.clone()).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));

    let dir = node.stop().await;
    let node = TestNode::restart(dir, "").await;
    // The same bytes again, well within the freshness window.
    let (s, header, body) = send(node.url.clone(), captured).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a captured RPC was served again after a restart: {}",
        String::from_utf8_lossy(&body)
    );
    assert!(String::from_utf8_lossy(&body).contains("other_incarnation"));
    let note = answer_note(&header.expect("a signed refusal"), &nonce, 401, &body)
        .expect("signed for this exchange");
    assert_ne!(note.inc, inc, "a new incarnation");
    // A sender that knows the secret retries at once with the incarnation it was told.
    let fresh = cluster_proof("/raft/read-index", 1, note.inc, 2, b"{}", &"8".repeat(32));
    let (s, _, body) = send(node.url.clone(), fresh).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
}

/// The bootstrap hello takes a proof for any node and incarnation (a bootstrapping node knows
/// only an address), answers who the node is, signed, and still refuses a stranger and a
/// replay; the other routes keep refusing a proof for another node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hello_answers_a_proof_for_any_node_and_nothing_else_does() {
    let node = TestNode::start("").await;
    let http = reqwest::Client::new();
    let post = |path: &'static str, proof: String| {
        let http = http.clone();
        let url = format!("{}{path}", node.url);
        async move {
            let r = http
                .post(url)
                .header("x-sessync-cluster-auth", proof)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let signed = r.headers().contains_key("x-sessync-answer");
            (status, signed, r.text().await.unwrap())
        }
    };
    let proof = cluster_proof("/raft/hello", 0, 0, 0, b"", &"d".repeat(32));
    let (s, signed, text) = post("/raft/hello", proof.clone()).await;
    assert_eq!(s, StatusCode::OK, "{text}");
    assert!(signed);
    let hello: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(hello["node_id"], 1, "{hello}");
    assert_eq!(hello["advertise_url"], node.url.as_str(), "{hello}");
    assert_eq!(hello["initialized"], true, "{hello}");
    let (s, _, text) = post("/raft/hello", proof).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(text.contains("replayed"), "{text}");
    let (s, signed, _) = post("/raft/hello", format!("t=1,sig={}", "0".repeat(64))).await;
    assert_eq!((s, signed), (StatusCode::UNAUTHORIZED, false));
    // A proof for node 7 opens no other route of node 1.
    let other = cluster_proof("/raft/read-index", 7, 0, 0, b"", &"e".repeat(32));
    let (s, _, text) = post("/raft/read-index", other).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(text.contains("wrong_target"), "{text}");
}

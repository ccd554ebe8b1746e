//! Answers to node-to-node calls, as a node meets them from whoever answers in a peer's place
//! (a plaintext link, a certificate for the peer's name): an answer that is not signed with the
//! cluster secret for the request is no answer, whatever it says, and a redirect is not
//! followed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::common::{TestNode, ADMIN_KEY};

/// What a stand-in node answers, and how many requests it got.
#[derive(Clone, Default)]
struct Heard(Arc<AtomicUsize>);

impl Heard {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A stand-in for node 2 on loopback that grants every vote and accepts every append, in
/// well-formed JSON, with a made-up answer signature (what someone without the cluster secret
/// can send); its URL and what it heard.
async fn forger() -> (String, Heard) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let heard = Heard::default();
    let seen = heard.clone();
    let answer = move |path: &'static str| {
        let seen = seen.clone();
        move |body: axum::body::Bytes| async move {
            seen.0.fetch_add(1, Ordering::SeqCst);
            let req: Value = serde_json::from_slice(&body).unwrap_or_default();
            let reply = match path {
                "vote" => json!({"Ok": {
                    "vote": req["vote"],
                    "vote_granted": true,
                    "last_log_id": req["last_log_id"],
                }}),
                "append" => json!({"Ok": "Success"}),
                _ => json!({"index": 0, "now": "2099-01-01T00:00:00.000Z"}),
            };
            let mut headers = HeaderMap::new();
            let made_up = format!(
                "v1 t2=1,t3=2,inc={},sig={}",
                "0".repeat(15) + "1",
                "ab".repeat(32)
            );
            headers.insert("x-sessync-answer", made_up.parse().unwrap());
            (StatusCode::OK, headers, reply.to_string()).into_response()
        }
    };
    let app = axum::Router::new()
        .route("/raft/vote", axum::routing::post(answer("vote")))
        .route("/raft/append", axum::routing::post(answer("append")))
        .route(
            "/raft/read-index",
            axum::routing::post(answer("read-index")),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, heard)
}

/// A stand-in for node 2 that answers every call with a redirect to `to`.
async fn redirector(to: String) -> (String, Heard) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let heard = Heard::default();
    let seen = heard.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let seen = seen.clone();
        let to = to.clone();
        async move {
            seen.0.fetch_add(1, Ordering::SeqCst);
            (
                StatusCode::TEMPORARY_REDIRECT,
                [("location", format!("{to}{}", uri.path()))],
            )
                .into_response()
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, heard)
}

/// Node 1 in a two-voter cluster with node 2 at `other`: it can lead only with node 2's vote.
async fn two_voters_with(other: &str) -> TestNode {
    let node = TestNode::start_uninitialised().await;
    let (s, body) = node
        .call(
            Method::POST,
            "/cluster/init",
            ADMIN_KEY,
            Some(json!({"members": {"1": node.url, "2": other}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "init: {body}");
    node
}

/// Node 1's role as it reports it.
async fn role(node: &TestNode) -> String {
    let (_, status) = node
        .call(Method::GET, "/cluster/status", ADMIN_KEY, None)
        .await;
    status["role"].as_str().unwrap_or_default().to_owned()
}

/// A vote grant, an append acknowledgement, in plain JSON from whoever answers at node 2's
/// address: before, node 1 counted the grant and led a two-voter cluster alone (and committed
/// with the forged acknowledgements). Now an answer without the MAC of the cluster secret over
/// the request's nonce, the status and the body is a network error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_vote_grant_is_not_believed() {
    let (fake, heard) = forger().await;
    let node = two_voters_with(&fake).await;
    // Many election rounds (timeouts of 150-300 ms).
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        let r = role(&node).await;
        assert_ne!(
            r,
            "leader",
            "node 1 leads on forged answers ({} heard)",
            heard.count()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(heard.count() >= 2, "node 1 never asked node 2 for its vote");
    // Nothing was committed either: a write finds no leader.
    let (s, _) = node
        .call(
            Method::POST,
            "/v1/sessions",
            crate::common::APP_KEY,
            Some(json!({"user_id": "forged"})),
        )
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
}

/// A node's signed request must go to the node it was made for, and only its answer counts:
/// the node's client follows no redirect (before, reqwest followed up to ten, resending the
/// signed request, body and all, wherever a peer's address pointed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_from_a_peer_is_not_followed() {
    let (elsewhere, sent_on) = forger().await;
    let (redirecting, heard) = redirector(elsewhere).await;
    let node = two_voters_with(&redirecting).await;
    let started = std::time::Instant::now();
    while heard.count() < 3 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(heard.count() >= 3, "node 1 never called node 2");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sent_on.count(),
        0,
        "node 1 followed node 2's redirects ({} calls to node 2)",
        heard.count()
    );
    assert_ne!(role(&node).await, "leader");
}

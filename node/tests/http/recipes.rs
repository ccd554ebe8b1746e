//! The signing recipes of docs/federation.md and docs/ARCHITECTURE.md written again from the
//! docs, independently of the node's code (a peer site's request and its answer, a
//! node-to-node proof), and a stand-in peer site that answers deliveries.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sessync_proto::federation::{
    ANSWER_SIGNATURE_HEADER, CONTENT_SHA256_HEADER, NONCE_HEADER, SIGNATURE_HEADER, SITE_HEADER,
    TARGET_SITE_HEADER, TIMESTAMP_HEADER,
};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use crate::common::{CLUSTER_SECRET, PEER_SECRET, PEER_SEND_SECRET};

/// The site of the node under test.
const NODE_SITE: &str = "test";

/// The headers of a request to `path` signed by `site` with `secret` for this node's site
/// (`test`), written from the documented recipe (docs/federation.md), independently of the
/// node's own signing code: HMAC-SHA256 over
/// `sessync-peer-v2\nPOST\n{path}\n{origin}\n{target}\n{timestamp_ms}\n{nonce}\n{length}\n{hex sha256(body)}`,
/// with `declared` as the length signed (the body's own, unless a test announces another).
pub(crate) fn peer_headers_declaring(
    site: &str,
    secret: &[u8],
    path: &str,
    body: &[u8],
    declared: usize,
    timestamp_ms: u64,
    nonce: &str,
) -> Vec<(&'static str, String)> {
    let body_hash = hex::encode(Sha256::digest(body));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(
        format!(
            "sessync-peer-v2\nPOST\n{path}\n{site}\n{NODE_SITE}\n{timestamp_ms}\n{nonce}\n{declared}\n{body_hash}"
        )
        .as_bytes(),
    );
    vec![
        (SITE_HEADER, site.to_owned()),
        (TARGET_SITE_HEADER, NODE_SITE.to_owned()),
        (TIMESTAMP_HEADER, timestamp_ms.to_string()),
        (NONCE_HEADER, nonce.to_owned()),
        (CONTENT_SHA256_HEADER, body_hash),
        (SIGNATURE_HEADER, hex::encode(mac.finalize().into_bytes())),
    ]
}

/// [`peer_headers_declaring`] the body's own length.
pub(crate) fn peer_headers(
    site: &str,
    secret: &[u8],
    path: &str,
    body: &[u8],
    timestamp_ms: u64,
    nonce: &str,
) -> Vec<(&'static str, String)> {
    peer_headers_declaring(site, secret, path, body, body.len(), timestamp_ms, nonce)
}

/// The answer signature a peer gives an answer with `status` and `body` to the request that
/// carried `nonce`, from the documented recipe: HMAC-SHA256 under the shared secret over
/// `sessync-peer-answer-v2\n{nonce}\n{status}\n{hex sha256(body)}`.
pub(crate) fn answer_signature(secret: &[u8], nonce: &str, status: u16, body: &[u8]) -> String {
    let body_hash = hex::encode(Sha256::digest(body));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(format!("sessync-peer-answer-v2\n{nonce}\n{status}\n{body_hash}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// How [`fake_peer`] answers a delivery.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PeerAnswer {
    /// The peer's acknowledgement of the operation delivered, signed.
    Ack,
    /// 200 with a body that is no acknowledgement (a proxy's page, say), signed.
    NotAnAck,
    /// 200 with the acknowledgement of another operation, signed.
    OtherOp,
    /// The acknowledgement of the operation delivered, not signed (whoever answers in the
    /// peer's place without its secret).
    UnsignedAck,
    /// The acknowledgement, signed with another secret.
    ForgedAck,
}

/// A stand-in for `site-p`'s one node on loopback, answering every invalidate delivered to it as
/// `answer` says (signing the answer as the documented recipe says, with the node's secret for
/// `site-p`, except where `answer` says otherwise); its URL. It runs until the test's runtime
/// ends.
pub(crate) async fn fake_peer(answer: PeerAnswer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handler = move |headers: axum::http::HeaderMap, body: axum::body::Bytes| async move {
        let req: Value = serde_json::from_slice(&body).unwrap_or_default();
        let text = match answer {
            PeerAnswer::Ack | PeerAnswer::UnsignedAck | PeerAnswer::ForgedAck => {
                json!({"op_id": req["op_id"], "applied": true, "ended": 0}).to_string()
            }
            PeerAnswer::NotAnAck => "<html>ok</html>".to_owned(),
            PeerAnswer::OtherOp => {
                json!({"op_id": format!("op_{}", "f".repeat(32)), "applied": true, "ended": 0})
                    .to_string()
            }
        };
        let nonce = headers
            .get(NONCE_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        // The node signs what it sends site-p with its send secret, site-p's receive secret.
        let secret: &[u8] = match answer {
            PeerAnswer::ForgedAck => b"not-the-secret-of-this-link-0123",
            _ => PEER_SEND_SECRET.as_bytes(),
        };
        let sig = answer_signature(secret, nonce, 200, text.as_bytes());
        let mut resp = axum::response::Response::new(axum::body::Body::from(text));
        if !matches!(answer, PeerAnswer::UnsignedAck) {
            resp.headers_mut()
                .insert(ANSWER_SIGNATURE_HEADER, sig.parse().unwrap());
        }
        resp
    };
    let app = axum::Router::new().route("/v1/federation/invalidate", axum::routing::post(handler));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

/// A node-to-node proof made the way docs/ARCHITECTURE.md describes it, independently of the
/// node's code, for incarnation `inc` of node `to`: `v3 t=..,n=..,to=..,inc=..,len=..,sha=..,sig=..`
/// over `sessync-cluster-v3\nPOST\n{path}\n{t}\n{n}\n{to}\n{inc}\n{len}\n{sha}`.
pub(crate) fn cluster_proof(
    path: &str,
    to: u64,
    inc: u64,
    declared_len: usize,
    body: &[u8],
    nonce: &str,
) -> String {
    cluster_proof_at(path, to, inc, declared_len, body, nonce, now_ms())
}

/// The wall clock in ms.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// [`cluster_proof`] stamped `t` (a sender whose clock reads `t`).
pub(crate) fn cluster_proof_at(
    path: &str,
    to: u64,
    inc: u64,
    declared_len: usize,
    body: &[u8],
    nonce: &str,
    t: u64,
) -> String {
    let sha = hex::encode(Sha256::digest(body));
    let mut mac = Hmac::<Sha256>::new_from_slice(CLUSTER_SECRET.as_bytes()).unwrap();
    mac.update(
        format!(
            "sessync-cluster-v3\nPOST\n{path}\n{t}\n{nonce}\n{to}\n{inc:016x}\n{declared_len}\n{sha}"
        )
        .as_bytes(),
    );
    let sig = hex::encode(mac.finalize().into_bytes());
    format!("v3 t={t},n={nonce},to={to},inc={inc:016x},len={declared_len},sha={sha},sig={sig}")
}

/// A signed answer's fields, as docs/ARCHITECTURE.md describes the `x-sessync-answer` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AnswerNote {
    /// The answering node's clock when the request arrived, and when the answer left.
    pub(crate) t2: u64,
    pub(crate) t3: u64,
    pub(crate) inc: u64,
}

/// The note of an answer (`v1 t2=..,t3=..,inc=..,sig=..`), if it is signed with the cluster
/// secret for the exchange of `nonce`, this `status` and this `body`: HMAC over
/// `sessync-answer-v1\n{nonce}\n{status}\n{t2}\n{t3}\n{inc}\n{hex sha256(body)}`.
pub(crate) fn answer_note(
    header: &str,
    nonce: &str,
    status: u16,
    body: &[u8],
) -> Option<AnswerNote> {
    let rest = header.strip_prefix("v1 ")?;
    let (fields, sig) = rest.split_once(",sig=")?;
    let mut parts = fields.split(',');
    let t2: u64 = parts.next()?.strip_prefix("t2=")?.parse().ok()?;
    let t3: u64 = parts.next()?.strip_prefix("t3=")?.parse().ok()?;
    let inc_hex = parts.next()?.strip_prefix("inc=")?;
    let inc = u64::from_str_radix(inc_hex, 16).ok()?;
    let sha = hex::encode(Sha256::digest(body));
    let mut mac = Hmac::<Sha256>::new_from_slice(CLUSTER_SECRET.as_bytes()).unwrap();
    mac.update(
        format!("sessync-answer-v1\n{nonce}\n{status}\n{t2}\n{t3}\n{inc_hex}\n{sha}").as_bytes(),
    );
    (hex::encode(mac.finalize().into_bytes()) == sig).then_some(AnswerNote { t2, t3, inc })
}

/// The incarnation node 1 at `url` names in its signed answer (through `client`) to a proof for
/// none (0).
pub(crate) async fn incarnation(client: &reqwest::Client, url: &str) -> u64 {
    let nonce = hex::encode(rand::random::<[u8; 16]>());
    let proof = cluster_proof("/raft/read-index", 1, 0, 2, b"{}", &nonce);
    let resp = post_read_index(client, url, proof).await;
    let status = resp.status().as_u16();
    let header = resp.headers()["x-sessync-answer"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = resp.bytes().await.unwrap();
    assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("other_incarnation"));
    answer_note(&header, &nonce, status, &body)
        .expect("a refusal signed for this exchange")
        .inc
}

/// Headers of a federation invalidate as `site` would sign `body`, with `declared` as the
/// content length, and stamped `ts`.
pub(crate) fn federation_head(
    site: &str,
    ts: u64,
    nonce: &str,
    body: &[u8],
    declared: usize,
) -> String {
    let mut head = format!(
        "POST /v1/federation/invalidate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {declared}\r\n"
    );
    for (k, v) in peer_headers_declaring(
        site,
        PEER_SECRET.as_bytes(),
        "/v1/federation/invalidate",
        body,
        declared,
        ts,
        nonce,
    ) {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// POST /raft/read-index (body `{}`) on the node at `url` with `proof` as its cluster proof.
pub(crate) async fn post_read_index(
    client: &reqwest::Client,
    url: &str,
    proof: String,
) -> reqwest::Response {
    client
        .post(format!("{url}/raft/read-index"))
        .header("x-sessync-cluster-auth", proof)
        .body("{}")
        .send()
        .await
        .unwrap()
}

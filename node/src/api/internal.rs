//! The node-to-node routes of one site: Raft RPC (append, vote, snapshot), the read index a
//! follower asks the leader for, the audit events a follower hands the leader, and the hello a
//! bootstrapping node asks its peers (`crate::bootstrap`).
//!
//! Every one needs a proof of the cluster secret ([`CLUSTER_AUTH_HEADER`], see
//! [`ClusterProof`]): [`require_proof`] checks all of it (MAC, freshness, target node, nonce,
//! declared length within the route's limit) before it reads the body, then the body against
//! the proof's hash, before anything reaches a handler. Every answer to a caller whose proof is
//! authentic (refusals for staleness or another incarnation included) is signed for the
//! caller's nonce ([`AnswerNote`]: status, body hash, this node's clock when the request
//! arrived and when the answer left, its incarnation), so the caller believes no answer that
//! does not come from a holder of the cluster secret; a fresh request may carry the sender's
//! report of this node's clock deviation ([`crate::clock`]). A handler's runtime refusal is
//! answered as [`Refused`], the node-to-node shape, not the API's error body.

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Json;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};
use serde::de::DeserializeOwned;
use serde_json::json;
use sessync_proto::wire::{
    RefusalReason, Refused, ANSWER_HEADER, APPEND_PATH, AUDIT_PATH, CLOCK_HEADER,
    CLUSTER_AUTH_HEADER, CLUSTER_ID_HEADER, ELECT_PATH, HELLO_PATH, MAX_ANSWER_BYTES,
    READ_INDEX_PATH, SNAPSHOT_PATH, VOTE_PATH,
};
use sessync_proto::{ErrorBody, ErrorCode, Timestamp};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::state::App;
use crate::audit::MAX_BATCH as MAX_AUDIT_BATCH;
use crate::raft_types::TypeConfig;
use crate::runtime::{Reader, RuntimeError};
use crate::session::{AuditNote, Command, RecordAudit};
use crate::signing::{AnswerNote, ClockNote, ClusterProof, ProofRefusal};
use crate::store::ClusterId;

/// How far apart two nodes' clocks may be for a proof to be accepted; a proof's nonce is
/// remembered this long past its timestamp.
pub(crate) const PROOF_WINDOW_MS: u64 = 5 * 60 * 1000;

/// The largest body each route takes: a batch of log entries, a snapshot chunk (1 MiB of data,
/// about four times that as JSON), a vote, a read-index question, a batch of audit events.
fn body_limit(path: &str) -> Option<u64> {
    const KIB: u64 = 1024;
    match path {
        APPEND_PATH => Some(64 * KIB * KIB),
        SNAPSHOT_PATH => Some(16 * KIB * KIB),
        VOTE_PATH => Some(64 * KIB),
        READ_INDEX_PATH => Some(4 * KIB),
        AUDIT_PATH => Some(KIB * KIB),
        HELLO_PATH => Some(KIB),
        ELECT_PATH => Some(KIB),
        _ => None,
    }
}

/// The node-to-node routes; [`guard`] puts them behind the proof check.
pub(crate) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(append))
        .routes(routes!(vote))
        .routes(routes!(snapshot))
        .routes(routes!(read_index))
        .routes(routes!(audit))
        .routes(routes!(hello))
        .routes(routes!(elect))
}

/// `routes` behind the proof check (which also bounds their bodies).
pub(crate) fn guard(routes: OpenApiRouter<App>, app: App) -> OpenApiRouter<App> {
    routes
        .route_layer(middleware::from_fn_with_state(app, require_proof))
        // `require_proof` has read the body within the route's limit already.
        .layer(DefaultBodyLimit::disable())
}

/// Why a node-to-node request was refused that is not about its proof: the metric label.
const NO_CLIENT_CERT: &str = "no_client_certificate";
const BODY_TIMEOUT: &str = "body_timeout";
const OTHER_CLUSTER: &str = "other_cluster";

/// Checks the whole proof before reading the body: (with `client_ca_file`) a client certificate
/// on the connection, then the proof well formed, fresh, for this node, signed with the cluster
/// secret, a nonce not in use or used before, and a body length the route takes. Only then is
/// the body read (no more than the length the proof declares, within `body_timeout`) and
/// checked against the proof's hash; the nonce is used up once the body matched (a request cut
/// short or with another body does not use it up; a second request with the same nonce while
/// the first is read is refused). A refusal is counted by reason and answered 401 (413 for a
/// body too large for the route, 408 for one that did not arrive in time, 403 without a client
/// certificate); it writes no log line and no audit event, so refusals cost a stranger's
/// requests nothing but a hash. Every answer to an authentic proof is signed ([`sign_answer`]).
async fn require_proof(State(app): State<App>, req: Request, next: Next) -> Response {
    // t2: the request is here, before anything of it is handled.
    let received_ms = Timestamp::now().millis();
    let path = req.uri().path().to_owned();
    if super::without_client_cert(req.extensions()) {
        app.metrics().rpc_refused(NO_CLIENT_CERT);
        return super::no_client_cert().into_response();
    }
    let refuse = |reason: ProofRefusal| {
        app.metrics().rpc_refused(reason.as_str());
        let code = if reason == ProofRefusal::TooLarge {
            ErrorCode::PayloadTooLarge
        } else {
            ErrorCode::Unauthorized
        };
        // JSON already, so the answer is signed as it is sent (`api::json_errors` rewrites
        // anything else).
        ApiError::new(code, format!("cluster proof refused: {}", reason.as_str())).into_response()
    };
    let Some(limit) = body_limit(&path) else {
        return refuse(ProofRefusal::Malformed);
    };
    let header = req
        .headers()
        .get(CLUSTER_AUTH_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let now = Timestamp::now().millis();
    let rt = app.rt();
    let proof = match ClusterProof::authentic(header, rt.cluster_secret(), &path) {
        Ok(p) => p,
        Err(reason) => return refuse(reason),
    };
    // The caller holds the cluster secret: whatever the answer, it is signed for its nonce, so
    // it learns this node's clock and incarnation and can trust the status and body.
    let nonce = proof.nonce.clone();
    let signed = |resp: Response| sign_answer(resp, rt, &nonce, received_ms);
    // A bootstrapping peer asks who this node is before it can know its id or incarnation.
    let (me, incarnation) = if path == HELLO_PATH {
        (proof.target, proof.incarnation)
    } else {
        (rt.node_id(), rt.incarnation())
    };
    if let Err(reason) = proof.admissible(me, incarnation, now, PROOF_WINDOW_MS) {
        return signed(refuse(reason)).await;
    }
    if proof.body_len > limit {
        return signed(refuse(ProofRefusal::TooLarge)).await;
    }
    let Some(claim) = app.nonces().claim(&proof, now, PROOF_WINDOW_MS) else {
        return signed(refuse(ProofRefusal::Replayed)).await;
    };
    let report = req
        .headers()
        .get(CLOCK_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| ClockNote::check(v, rt.cluster_secret(), &proof.nonce));
    let (parts, body) = req.into_parts();
    // A body longer than declared fails here, one shorter at `matches`.
    let read = axum::body::to_bytes(body, proof.body_len as usize);
    let bytes = match tokio::time::timeout(app.body_timeout(), read).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return signed(refuse(ProofRefusal::BodyMismatch)).await,
        Err(_) => {
            app.metrics().rpc_refused(BODY_TIMEOUT);
            return signed(
                ApiError::new(
                    ErrorCode::RequestTimeout,
                    "the body did not arrive within [limits] body_timeout",
                )
                .into_response(),
            )
            .await;
        }
    };
    if !proof.matches(&bytes) {
        return signed(refuse(ProofRefusal::BodyMismatch)).await;
    }
    claim.keep();
    if let Err(refusal) = same_cluster(&app, &path, &parts.headers) {
        return signed(refusal).await;
    }
    super::Proven::mark(&parts.extensions);
    if let Some(ClockNote::Report(deviation_ms)) = report {
        rt.clock().reported(deviation_ms);
    }
    signed(
        next.run(Request::from_parts(parts, Body::from(bytes)))
            .await,
    )
    .await
}

/// Refuses a proven request from a node of another cluster (one restored or recovered
/// elsewhere, or left behind by a recovery); a node without a cluster id takes its leader's
/// from the first append or snapshot it gets.
fn same_cluster(app: &App, path: &str, headers: &axum::http::HeaderMap) -> Result<(), Response> {
    let Some(theirs) = headers
        .get(CLUSTER_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(ClusterId::parse)
    else {
        return Ok(());
    };
    let identity = app.rt().identity();
    let mine = match identity.get() {
        Some(mine) => mine,
        None if path == APPEND_PATH || path == SNAPSHOT_PATH => {
            return identity.adopt(&theirs).map(drop).map_err(|e| {
                ApiError::new(
                    ErrorCode::Unavailable,
                    format!("cannot store the cluster id: {e}"),
                )
                .into_response()
            });
        }
        None => return Ok(()),
    };
    if mine == theirs {
        return Ok(());
    }
    app.metrics().rpc_refused(OTHER_CLUSTER);
    Err(ApiError::new(
        ErrorCode::Conflict,
        format!(
            "this node belongs to cluster {mine}, the caller to cluster {theirs}: a node of \
             another cluster (restored or recovered elsewhere) is never let in"
        ),
    )
    .into_response())
}

/// Signs `resp` for the caller whose proof carried `nonce` ([`AnswerNote`]): its status, the
/// hash of its body (read here, at most [`MAX_ANSWER_BYTES`]), this node's clock when the request
/// arrived (`received_ms`) and now, as the answer leaves, and this node's incarnation.
async fn sign_answer(
    resp: Response,
    rt: &crate::runtime::Runtime,
    nonce: &str,
    received_ms: u64,
) -> Response {
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ANSWER_BYTES).await else {
        // Never the case for the answers made here; unsigned, the caller counts it as none.
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let note = AnswerNote {
        received_ms,
        sent_ms: Timestamp::now().millis(),
        incarnation: rt.incarnation(),
    };
    let header = note.header(rt.cluster_secret(), nonce, parts.status.as_u16(), &bytes);
    if let Ok(v) = HeaderValue::from_str(&header) {
        parts.headers.insert(ANSWER_HEADER, v);
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// A runtime refusal as the node-to-node shape ([`Refused`], 503): the asking node maps it to
/// its own runtime error.
fn refused(e: &RuntimeError) -> Response {
    let (refused, leader) = match e {
        RuntimeError::ClockSkew { .. } => (RefusalReason::ClockSkew, None),
        RuntimeError::NoLeader => (RefusalReason::NotLeader, None),
        RuntimeError::LeadershipMoved { to } => (RefusalReason::NotLeader, *to),
        RuntimeError::NoQuorum { .. } => (RefusalReason::NoQuorum, None),
        RuntimeError::ShuttingDown => (RefusalReason::ShuttingDown, None),
        RuntimeError::LeaderUnreachable { .. }
        | RuntimeError::AlreadyInitialized
        | RuntimeError::Raft(_)
        | RuntimeError::Overloaded { .. }
        | RuntimeError::UnknownNode { .. }
        | RuntimeError::NotAVoter { .. }
        | RuntimeError::NoCaughtUpVoter { .. }
        | RuntimeError::TargetUnreachable { .. }
        | RuntimeError::TransferTimedOut { .. }
        | RuntimeError::Draining { .. }
        | RuntimeError::TransferUnderWay => (RefusalReason::Unavailable, None),
    };
    let body = Refused {
        refused,
        leader,
        message: e.to_string(),
    };
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// The (already authenticated) body as `T`.
fn parse<T: DeserializeOwned>(path: &str, body: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(ErrorCode::BadRequest, format!("bad {path} body: {e}")).into_response()
    })
}

fn json<T: serde::Serialize>(v: &T) -> Response {
    Json(v).into_response()
}

#[utoipa::path(post, path = "/raft/append", tag = "internal",
    request_body(content = Object, description = "openraft's AppendEntriesRequest (JSON)"),
    responses(
        (status = 200, description = "Raft's answer", body = Object),
        (status = 401, description = "No valid cluster proof (counted by reason, never logged one by one)", body = ErrorBody),
        (status = 403, description = "The node requires client certificates of peers ([tls] client_ca_file) and the connection showed none", body = ErrorBody),
        (status = 408, description = "The declared body did not arrive within body_timeout", body = ErrorBody),
        (status = 413, description = "The declared body is over the route's limit", body = ErrorBody)),
    security(("cluster_proof" = [])))]
async fn append(State(app): State<App>, body: Bytes) -> Response {
    let req: AppendEntriesRequest<TypeConfig> = match parse(APPEND_PATH, &body) {
        Ok(req) => req,
        Err(r) => return r,
    };
    let leader_commit = req.leader_commit.map(|l| l.index);
    let res = app.rt().raft().append_entries(req).await;
    if matches!(&res, Ok(r) if !matches!(r, AppendEntriesResponse::HigherVote(_))) {
        // The current leader reached this node (readiness counts on it).
        app.rt().heard_from_leader(leader_commit);
    }
    json(&res)
}

#[utoipa::path(post, path = "/raft/vote", tag = "internal",
    request_body(content = Object, description = "openraft's VoteRequest (JSON)"),
    responses(
        (status = 200, description = "Raft's answer", body = Object),
        (status = 401, description = "No valid cluster proof (counted by reason, never logged one by one)", body = ErrorBody),
        (status = 403, description = "The node requires client certificates of peers ([tls] client_ca_file) and the connection showed none", body = ErrorBody),
        (status = 408, description = "The declared body did not arrive within body_timeout", body = ErrorBody),
        (status = 413, description = "The declared body is over the route's limit", body = ErrorBody)),
    security(("cluster_proof" = [])))]
async fn vote(State(app): State<App>, body: Bytes) -> Response {
    match parse(VOTE_PATH, &body) {
        Ok(req) => json(&app.rt().raft().vote(req).await),
        Err(r) => r,
    }
}

#[utoipa::path(post, path = "/raft/snapshot", tag = "internal",
    request_body(content = Object, description = "openraft's InstallSnapshotRequest (JSON), one chunk"),
    responses(
        (status = 200, description = "Raft's answer", body = Object),
        (status = 401, description = "No valid cluster proof (counted by reason, never logged one by one)", body = ErrorBody),
        (status = 403, description = "The node requires client certificates of peers ([tls] client_ca_file) and the connection showed none", body = ErrorBody),
        (status = 408, description = "The declared body did not arrive within body_timeout", body = ErrorBody),
        (status = 413, description = "The declared body is over the route's limit", body = ErrorBody)),
    security(("cluster_proof" = [])))]
async fn snapshot(State(app): State<App>, body: Bytes) -> Response {
    match parse(SNAPSHOT_PATH, &body) {
        Ok(req) => json(&app.rt().raft().install_snapshot(req).await),
        Err(r) => r,
    }
}

#[utoipa::path(post, path = "/raft/read-index", tag = "internal",
    request_body(content = Object, description = "empty"),
    responses(
        (status = 200, description = "The leader's read index and cluster time (ReadIndex)", body = Object),
        (status = 401, description = "No valid cluster proof (counted by reason, never logged one by one)", body = ErrorBody),
        (status = 403, description = "The node requires client certificates of peers ([tls] client_ca_file) and the connection showed none", body = ErrorBody),
        (status = 408, description = "The declared body did not arrive within body_timeout", body = ErrorBody),
        (status = 413, description = "The declared body is over the route's limit", body = ErrorBody)),
    security(("cluster_proof" = [])))]
async fn read_index(State(app): State<App>) -> Response {
    // The leader's point for the follower's read: the same composition as its own reads.
    match app
        .rt()
        .linearize(Reader::Follower, app.sequencer().barrier())
        .await
    {
        Ok(point) => json(&point),
        Err(e) => refused(&e),
    }
}

#[utoipa::path(post, path = "/raft/audit", tag = "internal",
    request_body(content = Object, description = "node-local audit events, a batch"),
    responses(
        (status = 200, description = "Recorded", body = Object),
        (status = 401, description = "No valid cluster proof (counted by reason, never logged one by one)", body = ErrorBody),
        (status = 403, description = "The node requires client certificates of peers ([tls] client_ca_file) and the connection showed none", body = ErrorBody),
        (status = 408, description = "The declared body did not arrive within body_timeout", body = ErrorBody),
        (status = 413, description = "The declared body is over the route's limit", body = ErrorBody)),
    security(("cluster_proof" = [])))]
async fn audit(State(app): State<App>, body: Bytes) -> Response {
    let mut notes: Vec<AuditNote> = match parse(AUDIT_PATH, &body) {
        Ok(n) => n,
        Err(r) => return r,
    };
    notes.truncate(MAX_AUDIT_BATCH + 1);
    let cmd = Command::RecordAudit(RecordAudit {
        at: app.rt().cluster_now(),
        notes,
    });
    match app.rt().propose(cmd).await {
        Ok(_) => json(&json!({ "ok": true })),
        Err(e) => refused(&e),
    }
}

#[utoipa::path(post, path = "/raft/hello", tag = "internal",
    request_body(content = Object, description = "empty"),
    responses(
        (status = 200, description = "Who this node is: `{node_id, advertise_url, initialized}` (a bootstrapping peer asks; the proof may name any node and incarnation)", body = Object),
        (status = 401, description = "No valid cluster proof (counted by reason, never logged one by one)", body = ErrorBody),
        (status = 403, description = "The node requires client certificates of peers ([tls] client_ca_file) and the connection showed none", body = ErrorBody),
        (status = 408, description = "The declared body did not arrive within body_timeout", body = ErrorBody),
        (status = 413, description = "The declared body is over the route's limit", body = ErrorBody)),
    security(("cluster_proof" = [])))]
async fn hello(State(app): State<App>) -> Response {
    json(&app.rt().hello())
}

#[utoipa::path(post, path = "/raft/elect", tag = "internal",
    request_body(content = Object, description = "empty (`{}`)"),
    responses(
        (status = 200, description = "This voter started an election (the leader hands over to it)", body = Object),
        (status = 401, description = "No valid cluster proof (counted by reason, never logged one by one)", body = ErrorBody),
        (status = 403, description = "The node requires client certificates of peers ([tls] client_ca_file) and the connection showed none", body = ErrorBody),
        (status = 408, description = "The declared body did not arrive within body_timeout", body = ErrorBody),
        (status = 413, description = "The declared body is over the route's limit", body = ErrorBody),
        (status = 503, description = "Refused (`Refused`): not a voter, or shutting down", body = Object)),
    security(("cluster_proof" = [])))]
async fn elect(State(app): State<App>) -> Response {
    match app.rt().elect_now().await {
        Ok(()) => json(&json!({ "ok": true })),
        Err(e) => refused(&e),
    }
}

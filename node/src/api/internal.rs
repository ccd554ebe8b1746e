//! The node-to-node routes of one site: Raft RPC (append, vote, snapshot), the read index a
//! follower asks the leader for, and the audit events a follower hands the leader.
//!
//! Every one needs a proof of the cluster secret ([`CLUSTER_AUTH_HEADER`]): a missing,
//! malformed or stale proof is refused by [`require_fresh_proof`] before the body is read, and
//! the full HMAC over the body is checked before anything reaches the runtime.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::json;
use sessync_proto::wire::{
    APPEND_PATH, AUDIT_PATH, CLUSTER_AUTH_HEADER, READ_INDEX_PATH, SNAPSHOT_PATH, VOTE_PATH,
};
use sessync_proto::Timestamp;

use super::error::ApiError;
use super::state::App;
use crate::audit::MAX_BATCH as MAX_AUDIT_BATCH;
use crate::session::{AuditNote, Command, RecordAudit};
use crate::signing::{check_cluster_proof, proof_header_is_fresh};

/// How far apart two nodes' clocks may be for a proof to be accepted.
const PROOF_WINDOW_MS: u64 = 5 * 60 * 1000;

/// Largest Raft RPC body accepted (a snapshot chunk and its JSON overhead fit well inside).
const MAX_RPC_BYTES: usize = 64 * 1024 * 1024;

/// The node-to-node routes, behind the proof check.
pub(crate) fn routes(app: App) -> Router<App> {
    let raft = Router::new()
        .route(APPEND_PATH, post(append))
        .route(VOTE_PATH, post(vote))
        .route(SNAPSHOT_PATH, post(snapshot))
        .layer(DefaultBodyLimit::max(MAX_RPC_BYTES));
    Router::new()
        .route(READ_INDEX_PATH, post(read_index))
        .route(AUDIT_PATH, post(audit))
        .merge(raft)
        .route_layer(middleware::from_fn_with_state(app, require_fresh_proof))
}

/// Refuses a request whose proof header is missing, malformed or stale before its body is
/// read. The full HMAC check follows in the handler.
async fn require_fresh_proof(
    State(app): State<App>,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    let fresh = req
        .headers()
        .get(CLUSTER_AUTH_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|h| proof_header_is_fresh(h, Timestamp::now().millis(), PROOF_WINDOW_MS));
    if !fresh {
        app.metrics().raft_rpc_refused.inc();
        return (StatusCode::UNAUTHORIZED, "cluster proof missing or invalid").into_response();
    }
    next.run(req).await
}

/// The request's body as `T`, if it carries a valid proof of the cluster secret.
fn authenticated<T: DeserializeOwned>(
    app: &App,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, Response> {
    let proof = headers
        .get(CLUSTER_AUTH_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let now = Timestamp::now().millis();
    let secret = app.rt().cluster_secret();
    if !check_cluster_proof(secret, path, proof, now, PROOF_WINDOW_MS, body) {
        app.metrics().raft_rpc_refused.inc();
        tracing::warn!(
            path,
            "refused a node-to-node request without a valid cluster proof"
        );
        return Err((StatusCode::UNAUTHORIZED, "cluster proof missing or invalid").into_response());
    }
    serde_json::from_slice(body)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad {path} body: {e}")).into_response())
}

fn json<T: serde::Serialize>(v: &T) -> Response {
    Json(v).into_response()
}

async fn append(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    match authenticated(&app, APPEND_PATH, &headers, &body) {
        Ok(req) => json(&app.rt().raft().append_entries(req).await),
        Err(r) => r,
    }
}

async fn vote(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    match authenticated(&app, VOTE_PATH, &headers, &body) {
        Ok(req) => json(&app.rt().raft().vote(req).await),
        Err(r) => r,
    }
}

async fn snapshot(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    match authenticated(&app, SNAPSHOT_PATH, &headers, &body) {
        Ok(req) => json(&app.rt().raft().install_snapshot(req).await),
        Err(r) => r,
    }
}

async fn read_index(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authenticated::<serde_json::Value>(&app, READ_INDEX_PATH, &headers, &body) {
        return r;
    }
    match app.rt().read_index().await {
        Ok(ri) => json(&ri),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn audit(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let mut notes: Vec<AuditNote> = match authenticated(&app, AUDIT_PATH, &headers, &body) {
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
        Err(e) => ApiError::from(e).into_response(),
    }
}

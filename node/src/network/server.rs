//! The receiving side of Raft RPC: axum routes that check the cluster proof, then hand the
//! request to openraft and answer with its `Result` as JSON.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::de::DeserializeOwned;
use sessync_proto::Timestamp;

use super::{APPEND_PATH, SNAPSHOT_PATH, VOTE_PATH};
use crate::api::App;
use crate::signing::{check_cluster_proof, proof_header_is_fresh, CLUSTER_AUTH_HEADER};

/// How far apart two nodes' clocks may be for a Raft RPC's proof to be accepted.
const PROOF_WINDOW_MS: u64 = 5 * 60 * 1000;

/// Largest Raft RPC body accepted (a snapshot chunk and its JSON overhead fit well inside).
pub const MAX_RPC_BYTES: usize = 64 * 1024 * 1024;

/// The Raft RPC routes.
pub fn routes() -> Router<App> {
    Router::new()
        .route(APPEND_PATH, post(append))
        .route(VOTE_PATH, post(vote))
        .route(SNAPSHOT_PATH, post(snapshot))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_RPC_BYTES))
}

/// Middleware for every node-to-node route: refuses a request whose proof header is missing,
/// malformed or stale before its body is read. The full HMAC check follows in the handler.
pub async fn require_fresh_proof(
    State(app): State<App>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
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

/// Refuses the request unless it carries a valid proof of the cluster secret.
pub(crate) fn check_proof(
    app: &App,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(), Response> {
    let proof = headers
        .get(CLUSTER_AUTH_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !check_cluster_proof(
        app.cluster_secret(),
        path,
        proof,
        Timestamp::now().millis(),
        PROOF_WINDOW_MS,
        body,
    ) {
        app.metrics().raft_rpc_refused.inc();
        tracing::warn!(path, "refused a Raft RPC without a valid cluster proof");
        return Err((StatusCode::UNAUTHORIZED, "cluster proof missing or invalid").into_response());
    }
    Ok(())
}

fn authenticated<T: DeserializeOwned>(
    app: &App,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, Response> {
    check_proof(app, path, headers, body)?;
    serde_json::from_slice(body)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad Raft RPC body: {e}")).into_response())
}

fn json<T: serde::Serialize>(v: &T) -> Response {
    axum::Json(v).into_response()
}

async fn append(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    match authenticated(&app, APPEND_PATH, &headers, &body) {
        Ok(req) => json(&app.raft().append_entries(req).await),
        Err(r) => r,
    }
}

async fn vote(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    match authenticated(&app, VOTE_PATH, &headers, &body) {
        Ok(req) => json(&app.raft().vote(req).await),
        Err(r) => r,
    }
}

async fn snapshot(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    match authenticated(&app, SNAPSHOT_PATH, &headers, &body) {
        Ok(req) => json(&app.raft().install_snapshot(req).await),
        Err(r) => r,
    }
}

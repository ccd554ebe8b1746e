//! The receiving side: `POST /v1/federation/verify` and `/v1/federation/invalidate`.
//!
//! The node that gets the request checks its signature before anything else (a forged or
//! stale request is refused with 401, counted, and reported to the audit log), then the leader
//! (a follower forwards the request as it came) proposes a `PeerOp`. The state machine refuses a
//! nonce already seen, on any node of this site, and applies each `op_id` once.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use sessync_proto::api::MAX_BODY_BYTES;
use sessync_proto::federation::{PeerOpKind, PeerOpRequest, PeerOpResponse};
use sessync_proto::Timestamp;

use super::sign::{self, Rejection};
use crate::api::forward;
use crate::api::{ApiError, App};
use crate::session::{Command, Outcome};

pub fn routes() -> Router<App> {
    Router::new()
        .route(PeerOpKind::Verify.path(), post(verify))
        .route(PeerOpKind::Invalidate.path(), post(invalidate))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

async fn verify(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    receive(app, PeerOpKind::Verify, headers, body).await
}

async fn invalidate(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    receive(app, PeerOpKind::Invalidate, headers, body).await
}

/// Counts and audits a refusal, and answers 401. The metric's `peer` label is a configured
/// site or `unknown`, never a name a stranger chose.
fn refuse(app: &App, origin: &str, reason: &str, message: String, path: &str) -> Response {
    let configured = app.federation().peer_names().any(|p| p.as_str() == origin);
    app.metrics()
        .peer_rejected(if configured { origin } else { "unknown" }, reason);
    tracing::warn!(origin, reason, path, "refused a request from a peer site");
    app.audit().report(
        "fanout_rejected",
        None,
        json!({ "origin": origin, "reason": reason, "path": path, "node": app.node_id() }),
    );
    ApiError::unauthorized(message).into_response()
}

async fn receive(app: App, kind: PeerOpKind, headers: HeaderMap, body: Bytes) -> Response {
    let path = kind.path();
    let now = Timestamp::now().millis();
    let fed = app.federation();
    let v = match sign::check(fed.config(), &headers, path, &body, now) {
        Ok(v) => v,
        Err(r) => {
            let origin = match &r {
                Rejection::UnknownSite(s) => s.clone(),
                _ => sign::claimed_site(&headers),
            };
            return refuse(&app, &origin, r.reason(), r.message(), path);
        }
    };
    let req: PeerOpRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::bad_request("body", format!("is not a {kind} operation: {e}"))
                .into_response()
        }
    };
    if req.origin_site != v.origin {
        return ApiError::bad_request(
            "origin_site",
            format!(
                "is {:?} but the request is signed by site {:?}",
                req.origin_site.as_str(),
                v.origin.as_str()
            ),
        )
        .into_response();
    }
    if !app.is_leader() {
        return forward::relay(&app, Method::POST, path, &headers, body.to_vec()).await;
    }
    // Remembered until its timestamp is out of the window on any node whose clock is within
    // the window of ours, so a replay is refused either way.
    let window = fed.config().timestamp_window;
    let cmd = Command::PeerOp {
        at: app.cluster_now(),
        origin: v.origin.clone(),
        nonce: v.nonce,
        nonce_until: Timestamp(v.timestamp_ms).plus(window * 2),
        kind,
        op_id: req.op_id.clone(),
        user_id: req.user_id,
        session_id: req.session_id,
    };
    match app.propose(cmd).await {
        Ok(Outcome::PeerApplied { applied, ended }) => Json(PeerOpResponse {
            op_id: req.op_id,
            applied,
            ended,
        })
        .into_response(),
        Ok(Outcome::NonceReplayed) => {
            app.metrics()
                .peer_rejected(v.origin.as_str(), "replayed_nonce");
            ApiError::unauthorized(
                "this nonce was already used; a replayed request is refused (nothing changed)",
            )
            .into_response()
        }
        Ok(other) => ApiError::internal(format!("unexpected outcome {other:?}")).into_response(),
        Err(e) => e.into_response(),
    }
}

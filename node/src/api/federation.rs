//! The federation endpoints: what peer sites send (`POST /v1/federation/verify` and
//! `/v1/federation/invalidate`) and the operators' `GET /v1/federation/status`.
//!
//! The node that gets a peer's request checks everything that needs no body first (with
//! `client_ca_file`, a client certificate on the connection; a configured site, a fresh
//! timestamp, a well-formed nonce this site has not seen, a well-formed signature), then reads
//! the body (at most [`PEER_BODY_BYTES`], within `body_timeout`) and checks the signature over
//! it. A refusal is answered 401 (403 without a certificate), counted, and reported to the audit
//! log in aggregate. Then the leader (a follower forwards the request as it came) proposes a
//! `PeerOp`. The state machine refuses a nonce already seen, on any node of this site, and
//! applies each `op_id` once.

use std::net::{IpAddr, SocketAddr};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sessync_proto::federation::{FederationStatus, PeerOpKind, PeerOpRequest, PeerOpResponse};
use sessync_proto::{ErrorBody, ErrorCode, SiteName, Timestamp};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AdminCaller;
use super::body::read_limited;
use super::error::ApiError;
use super::state::App;
use super::{forward, without_client_cert};
use crate::federation::sign::{self, Rejection};
use crate::federation::status;
use crate::refusals::Refused;
use crate::session::{Command, Outcome, PeerOp};

/// Where the status is served.
const STATUS_PATH: &str = "/v1/federation/status";

/// The largest body a peer site's request may have: `{op_id, origin_site, user_id,
/// session_id}` is a few hundred bytes (a user id of 256 bytes, escaped, stays well under it).
pub(crate) const PEER_BODY_BYTES: usize = 4 * 1024;

/// The routes peer sites call (they have a concurrency budget of their own, `api::router`);
/// a body may be at most [`PEER_BODY_BYTES`] (and `max_body_bytes`) and must arrive within
/// `body_timeout`.
pub(crate) fn peer_routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(verify))
        .routes(routes!(invalidate))
}

/// The operators' federation route.
pub(crate) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(status))
}

#[utoipa::path(post, path = "/v1/federation/verify", tag = "federation",
    request_body = PeerOpRequest,
    responses(
        (status = 200, description = "Applied here (or, `applied: false`, already applied before)", body = PeerOpResponse),
        (status = 400, description = "A field of the request is wrong", body = ErrorBody),
        (status = 401, description = "Not signed by a known peer site with a fresh, unseen nonce (counted, reported in aggregate)", body = ErrorBody), (status = 403, description = "The node requires client certificates of peers ([tls] client_ca_file) and the connection showed none", body = ErrorBody), (status = 408, description = "The body did not arrive within body_timeout", body = ErrorBody), (status = 413, description = "The body is over the size limit (4 KiB for a peer operation)", body = ErrorBody), (status = 503, description = "No leader or quorum, or the node busy: the peer retries", body = ErrorBody)),
    security(("peer_signature" = [])))]
async fn verify(State(app): State<App>, req: Request) -> Response {
    receive(app, PeerOpKind::Verify, req).await
}

#[utoipa::path(post, path = "/v1/federation/invalidate", tag = "federation",
    request_body = PeerOpRequest,
    responses(
        (status = 200, description = "Applied here (or, `applied: false`, already applied before)", body = PeerOpResponse),
        (status = 400, description = "A field of the request is wrong", body = ErrorBody),
        (status = 401, description = "Not signed by a known peer site with a fresh, unseen nonce (counted, reported in aggregate)", body = ErrorBody), (status = 403, description = "The node requires client certificates of peers ([tls] client_ca_file) and the connection showed none", body = ErrorBody), (status = 408, description = "The body did not arrive within body_timeout", body = ErrorBody), (status = 413, description = "The body is over the size limit (4 KiB for a peer operation)", body = ErrorBody), (status = 503, description = "No leader or quorum, or the node busy: the peer retries", body = ErrorBody)),
    security(("peer_signature" = [])))]
async fn invalidate(State(app): State<App>, req: Request) -> Response {
    receive(app, PeerOpKind::Invalidate, req).await
}

/// Counts a refusal (metrics, and the aggregated audit report) and answers 401. The metric's
/// `peer` label and the report's origin are a configured site or `unknown`, never a name a
/// stranger chose; no log line is written per refusal.
fn refuse(
    app: &App,
    source: Option<IpAddr>,
    origin: &str,
    reason: &'static str,
    message: String,
) -> Response {
    refuse_as(app, source, origin, reason, ApiError::unauthorized(message))
}

/// [`refuse`] with the answer `error`.
fn refuse_as(
    app: &App,
    source: Option<IpAddr>,
    origin: &str,
    reason: &'static str,
    error: ApiError,
) -> Response {
    let configured = app.federation().peer_names().any(|p| p.as_str() == origin);
    let origin = if configured { origin } else { "unknown" };
    app.metrics().peer_rejected(origin, reason);
    app.refusals()
        .record(Refused::PeerSite, reason, source, Some(origin));
    error.into_response()
}

/// Whether this replica has seen `nonce` from `origin` (a replay, refused before its body).
fn nonce_seen(app: &App, origin: &SiteName, nonce: &str) -> bool {
    app.rt()
        .state()
        .read(|s| s.ledger().nonce_seen(origin, nonce))
}

/// Everything checked before a peer's body is read ([`sign::check_headers`], then whether this
/// replica has seen the nonce; the state machine has the last word), with a client certificate
/// first when `client_ca_file` asks for one; the refusal's answer, counted.
fn before_body(
    app: &App,
    extensions: &axum::http::Extensions,
    headers: &HeaderMap,
    source: Option<IpAddr>,
    now_ms: u64,
) -> Result<(), Response> {
    if without_client_cert(extensions) {
        return Err(refuse_as(
            app,
            source,
            &sign::claimed_site(headers),
            "no_client_certificate",
            super::no_client_cert(),
        ));
    }
    let config = app.federation().config();
    let (origin, nonce) = match sign::check_headers(config, headers, now_ms) {
        Ok(c) => (c.peer.name.clone(), c.nonce),
        Err(r) => {
            let origin = match &r {
                Rejection::UnknownSite(s) => s.clone(),
                _ => sign::claimed_site(headers),
            };
            return Err(refuse(app, source, &origin, r.reason(), r.message()));
        }
    };
    if nonce_seen(app, &origin, nonce) {
        return Err(refuse(
            app,
            source,
            origin.as_str(),
            "replayed_nonce",
            "this nonce was already used; a replayed request is refused (nothing changed)"
                .to_owned(),
        ));
    }
    Ok(())
}

/// A peer's body: at most [`PEER_BODY_BYTES`] (and `max_body_bytes`; a larger declared length
/// is refused before reading), within `body_timeout`.
async fn read_peer_body(app: &App, headers: &HeaderMap, body: Body) -> Result<Bytes, Response> {
    let limit = PEER_BODY_BYTES.min(app.max_body_bytes());
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit).into_response());
    }
    read_limited(body, limit, app.body_timeout())
        .await
        .map_err(IntoResponse::into_response)
}

async fn receive(app: App, kind: PeerOpKind, req: Request) -> Response {
    let path = kind.path();
    let (parts, body) = req.into_parts();
    let source = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let headers = parts.headers;
    let now = Timestamp::now().millis();
    if let Err(refused) = before_body(&app, &parts.extensions, &headers, source, now) {
        return refused;
    }
    let body = match read_peer_body(&app, &headers, body).await {
        Ok(b) => b,
        Err(e) => return e,
    };
    let fed = app.federation();
    let v = match sign::check(fed.config(), &headers, path, &body, now) {
        Ok(v) => {
            super::Proven::mark(&parts.extensions);
            v
        }
        Err(r) => {
            let origin = match &r {
                Rejection::UnknownSite(s) => s.clone(),
                _ => sign::claimed_site(&headers),
            };
            return refuse(&app, source, &origin, r.reason(), r.message());
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
    if !app.rt().is_leader() {
        return forward::relay(&app, Method::POST, path, &headers, body.to_vec()).await;
    }
    // Remembered until its timestamp is out of the window on any node whose clock is within
    // the window of ours, so a replay is refused either way.
    let window = fed.config().timestamp_window;
    let cmd = Command::PeerOp(PeerOp {
        at: app.rt().cluster_now(),
        origin: v.origin.clone(),
        nonce: v.nonce,
        nonce_until: Timestamp(v.timestamp_ms).plus(window * 2),
        kind,
        op_id: req.op_id.clone(),
        user_id: req.user_id,
        session_id: req.session_id,
    });
    match app.rt().propose(cmd).await {
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
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[utoipa::path(get, path = "/v1/federation/status", tag = "federation",
    responses(
        (status = 200, description = "Each peer's outbox and delivery state, from the leader", body = FederationStatus),
        (status = 401, description = "No API key, or not a valid one", body = ErrorBody),
        (status = 403, description = "The key is not an admin key", body = ErrorBody)),
    security(("api_key" = [])))]
async fn status(State(app): State<App>, _admin: AdminCaller, headers: HeaderMap) -> Response {
    if !app.rt().is_leader() {
        let r = forward::relay(&app, Method::GET, STATUS_PATH, &headers, Vec::new()).await;
        if r.status().is_success() {
            return r;
        }
    }
    // No leader to ask: what this replica knows (the queues, no reachability).
    Json(status::local(app.rt(), app.federation())).into_response()
}

/// The error for a verify or invalidate refused because a target's outbox is full; other
/// outcomes are given back.
pub(super) fn outbox_full(app: &App, outcome: Outcome) -> Result<ApiError, Outcome> {
    match outcome {
        Outcome::OutboxFull { site, limit } => {
            app.metrics().outbox_full(site.as_str());
            Ok(ApiError::new(
                ErrorCode::OutboxFull,
                format!(
                    "the outbox for site {site} holds {limit} undelivered operations \
                     (federation.outbox_limit); nothing was changed, retry once deliveries \
                     catch up (see GET /v1/federation/status)"
                ),
            ))
        }
        other => Err(other),
    }
}

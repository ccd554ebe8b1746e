//! The federation endpoints: what peer sites send (`POST /v1/federation/verify` and
//! `/v1/federation/invalidate`) and the operators' `GET /v1/federation/status`.
//!
//! The node that gets a peer's request checks all of it before it reads the body (with
//! `client_ca_file`, a client certificate on the connection; then [`sign::check`]: a configured
//! site, this site as the target, a fresh timestamp, a well-formed nonce, and the signature,
//! which covers the body's length and hash; then a nonce this site has not seen and a length
//! within [`PEER_BODY_BYTES`]), so a stranger's request costs no body read. It then reads the
//! body within [`PEER_BODY_TIMEOUT`] and compares it with the signed hash. A refusal is
//! answered 401 (403 without a certificate), counted, and reported to the audit log in
//! aggregate. Then the leader (a follower forwards the request as it came) proposes a `PeerOp`
//! with the operation's origin time. The state machine refuses a nonce already seen, on any
//! node of this site, applies each `op_id` once, and acts as of the origin time.
//!
//! Every answer to a request whose signature checked out carries the answer signature
//! ([`ANSWER_SIGNATURE_HEADER`]) under the secret that matched, so the origin believes only
//! this site's acknowledgements. The peer routes also cap the requests in progress per source
//! ([`PEER_PER_SOURCE`]).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sessync_proto::federation::{
    FederationStatus, PeerOpKind, PeerOpRequest, PeerOpResponse, ANSWER_SIGNATURE_HEADER,
};
use sessync_proto::{ErrorBody, ErrorCode, SiteName, Timestamp};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AdminCaller;
use super::body::read_limited;
use super::error::ApiError;
use super::source_cap::{self, SourceCap};
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

/// How long a peer's body (signed, at most [`PEER_BODY_BYTES`]) may take to arrive, if
/// `body_timeout` is not shorter.
pub(crate) const PEER_BODY_TIMEOUT: Duration = Duration::from_secs(2);

/// Most peer-site requests in progress from one source (a peer's leader sends at most 16 at
/// once per site, `federation::deliver::MAX_IN_FLIGHT`).
pub(crate) const PEER_PER_SOURCE: usize = 32;

/// The routes peer sites call (they have a concurrency budget of their own, `api::router`, and
/// at most [`PEER_PER_SOURCE`] in progress per source); a body may be at most
/// [`PEER_BODY_BYTES`] (and `max_body_bytes`) and must arrive within [`PEER_BODY_TIMEOUT`].
pub(crate) fn peer_routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(verify))
        .routes(routes!(invalidate))
        .layer(axum::middleware::from_fn_with_state(
            SourceCap::new(PEER_PER_SOURCE),
            source_cap::limit,
        ))
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
        (status = 401, description = "Not signed by a known peer site with a fresh, unseen nonce (counted, reported in aggregate)", body = ErrorBody), (status = 403, description = "The node requires client certificates of peers ([tls] client_ca_file) and the connection showed none", body = ErrorBody), (status = 408, description = "The body did not arrive within body_timeout", body = ErrorBody), (status = 410, description = "`op_expired`: the operation's origin_time is older than this site remembers applied operations (audit_retention); never applied twice", body = ErrorBody), (status = 413, description = "The body is over the size limit (4 KiB for a peer operation)", body = ErrorBody), (status = 429, description = "`received_full`: this site remembers federation.max_received_per_peer operations of the origin", body = ErrorBody), (status = 503, description = "No leader or quorum, or the node busy: the peer retries", body = ErrorBody)),
    security(("peer_signature" = [])))]
async fn verify(State(app): State<App>, req: Request) -> Response {
    receive(app, PeerOpKind::Verify, req).await
}

#[utoipa::path(post, path = "/v1/federation/invalidate", tag = "federation",
    request_body = PeerOpRequest,
    responses(
        (status = 200, description = "Applied here (or, `applied: false`, already applied before)", body = PeerOpResponse),
        (status = 400, description = "A field of the request is wrong", body = ErrorBody),
        (status = 401, description = "Not signed by a known peer site with a fresh, unseen nonce (counted, reported in aggregate)", body = ErrorBody), (status = 403, description = "The node requires client certificates of peers ([tls] client_ca_file) and the connection showed none", body = ErrorBody), (status = 408, description = "The body did not arrive within body_timeout", body = ErrorBody), (status = 410, description = "`op_expired`: the operation's origin_time is older than this site remembers applied operations (audit_retention); never applied twice", body = ErrorBody), (status = 413, description = "The body is over the size limit (4 KiB for a peer operation)", body = ErrorBody), (status = 429, description = "`received_full`: this site remembers federation.max_received_per_peer operations of the origin", body = ErrorBody), (status = 503, description = "No leader or quorum, or the node busy: the peer retries", body = ErrorBody)),
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

/// The refusal of `r`, counted, naming the site it claims or the unknown one.
fn refuse_rejection(
    app: &App,
    source: Option<IpAddr>,
    headers: &HeaderMap,
    r: &Rejection,
) -> Response {
    let origin = match r {
        Rejection::UnknownSite(s) => s.clone(),
        _ => sign::claimed_site(headers),
    };
    refuse(app, source, &origin, r.reason(), r.message())
}

/// Everything checked before a peer's body is read, the signature included: a client
/// certificate first when `client_ca_file` asks for one, then [`sign::check`], then whether
/// this replica has seen the nonce (the state machine has the last word) and a length within
/// [`PEER_BODY_BYTES`]; the refusal's answer, counted.
fn before_body<'c>(
    app: &'c App,
    extensions: &axum::http::Extensions,
    headers: &HeaderMap,
    path: &str,
    source: Option<IpAddr>,
    now_ms: u64,
) -> Result<sign::Verified<'c>, Response> {
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
    let v = sign::check(config, app.federation().site(), headers, path, now_ms)
        .map_err(|r| refuse_rejection(app, source, headers, &r))?;
    if nonce_seen(app, v.origin(), &v.nonce) {
        return Err(refuse(
            app,
            source,
            v.origin().as_str(),
            "replayed_nonce",
            "this nonce was already used; a replayed request is refused (nothing changed)"
                .to_owned(),
        ));
    }
    let limit = PEER_BODY_BYTES.min(app.max_body_bytes());
    if v.body_len > limit as u64 {
        return Err(ApiError::too_large(limit).into_response());
    }
    Ok(v)
}

/// A peer's body, exactly as long as signed, within [`PEER_BODY_TIMEOUT`], and the body the
/// signature covers.
async fn read_peer_body(
    app: &App,
    v: &sign::Verified<'_>,
    source: Option<IpAddr>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, Response> {
    let limit = usize::try_from(v.body_len).unwrap_or(usize::MAX);
    let bytes = read_limited(body, limit, PEER_BODY_TIMEOUT.min(app.body_timeout()))
        .await
        .map_err(IntoResponse::into_response)?;
    if !v.body_matches(&bytes) {
        let r = if bytes.len() as u64 == v.body_len {
            Rejection::BadContentHash
        } else {
            Rejection::BadLength
        };
        return Err(refuse_rejection(app, source, headers, &r));
    }
    Ok(bytes)
}

/// `resp` with the answer signature for the request `v` (its body read, at most
/// [`MAX_ANSWER_BYTES`]: every answer here is a short JSON document).
async fn signed_answer(v: &sign::Verified<'_>, resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ANSWER_BYTES)
        .await
        .unwrap_or_default();
    let sig = v.sign_answer(parts.status.as_u16(), &bytes);
    if let Ok(value) = axum::http::HeaderValue::from_str(&sig) {
        parts.headers.insert(ANSWER_SIGNATURE_HEADER, value);
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

/// Most bytes of an answer to a peer that are signed.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

async fn receive(app: App, kind: PeerOpKind, req: Request) -> Response {
    let path = kind.path();
    let (parts, body) = req.into_parts();
    let source = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let headers = parts.headers;
    let now = Timestamp::now().millis();
    let v = match before_body(&app, &parts.extensions, &headers, path, source, now) {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    super::Proven::mark(&parts.extensions);
    let body = match read_peer_body(&app, &v, source, &headers, body).await {
        Ok(b) => b,
        Err(e) => return e,
    };
    let resp = apply(&app, kind, &v, &headers, body).await;
    signed_answer(&v, resp).await
}

/// A checked peer request: parsed, relayed to the leader or proposed as a `PeerOp`.
async fn apply(
    app: &App,
    kind: PeerOpKind,
    v: &sign::Verified<'_>,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let req: PeerOpRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::bad_request("body", format!("is not a {kind} operation: {e}"))
                .into_response()
        }
    };
    if &req.origin_site != v.origin() {
        return ApiError::bad_request(
            "origin_site",
            format!(
                "is {:?} but the request is signed by site {:?}",
                req.origin_site.as_str(),
                v.origin().as_str()
            ),
        )
        .into_response();
    }
    if !app.rt().is_leader() {
        return forward::relay(app, Method::POST, kind.path(), headers, body.to_vec()).await;
    }
    let fed = app.federation();
    // Remembered until its timestamp is out of the window on any node whose clock is within
    // the window of ours, so a replay is refused either way.
    let window = fed.config().timestamp_window;
    let cmd = Command::PeerOp(PeerOp {
        at: app.rt().cluster_now(),
        origin: v.origin().clone(),
        nonce: v.nonce.clone(),
        nonce_until: Timestamp(v.timestamp_ms).plus(window.saturating_mul(2)),
        kind,
        op_id: req.op_id.clone(),
        user_id: req.user_id,
        session_id: req.session_id,
        origin_time: Some(req.origin_time),
        here: Some(fed.site().clone()),
        max_received: Some(fed.config().max_received_per_peer),
    });
    let origin = v.origin().as_str();
    match app.rt().propose(cmd).await {
        Ok(Outcome::PeerApplied { applied, ended }) => Json(PeerOpResponse {
            op_id: req.op_id,
            applied,
            ended,
        })
        .into_response(),
        Ok(Outcome::NonceReplayed) => {
            app.metrics().peer_rejected(origin, "replayed_nonce");
            ApiError::unauthorized(
                "this nonce was already used; a replayed request is refused (nothing changed)",
            )
            .into_response()
        }
        Ok(Outcome::OpExpired {
            origin_time,
            retention,
        }) => {
            app.metrics().peer_rejected(origin, "op_expired");
            ApiError::new(
                ErrorCode::OpExpired,
                format!(
                    "the operation's origin_time {} is older than this site remembers the \
                     operations it applied (audit_retention {}): it is refused so that it can \
                     never apply twice; nothing changed",
                    origin_time.to_rfc3339(),
                    humantime::format_duration(retention)
                ),
            )
            .into_response()
        }
        Ok(Outcome::ReceivedFull { limit }) => {
            app.metrics().peer_rejected(origin, "received_full");
            ApiError::new(
                ErrorCode::ReceivedFull,
                format!(
                    "this site remembers {limit} operations of site {origin} \
                     (federation.max_received_per_peer); nothing changed: retry once older \
                     ones are forgotten"
                ),
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

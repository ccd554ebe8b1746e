//! The HTTP API of a node (axum): the v1 session and admin endpoints, cluster management, and
//! the Raft RPC routes, all on one listener.
//!
//! A request's path: `auth` checks the API key and role; writes pass `forward`, which sends
//! them to the leader if this node is not it; the handler in `sessions`, `admin`, `cluster` or
//! `federation` stamps a [`crate::session::Command`] with cluster time and leader-made ids and
//! proposes it through the runtime ([`crate::runtime::Runtime::propose`]); reads first make this
//! node's replica current ([`crate::runtime::Runtime::linearize`]) and then read the shared
//! [`crate::store::StateReader`]. `internal` serves the node-to-node routes (Raft RPC, read
//! index, audit hand-over) behind the cluster proof.
//!
//! This is the top layer of the node: it calls the runtime and the services below it, and
//! nothing below imports it (checked by `architecture_tests`).

mod admin;
mod auth;
mod backup;
mod body;
mod cluster;
mod error;
mod events;
mod federation;
mod forward;
mod handover;
mod internal;
mod openapi;
mod page;
mod sessions;
mod source_cap;
mod state;
mod stream_slots;
mod user_ops;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::error_handling::HandleErrorLayer;
use axum::extract::MatchedPath;
use axum::http::{Method, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;
use utoipa_axum::router::OpenApiRouter;

use sessync_proto::wire::LEADER_HEADER;

use crate::tls::ClientCert;
use error::ApiError;
pub(crate) use state::{App, AppParts};

/// The routes that change state (followers forward them to the leader), the other API
/// routes, the routes peer sites call, and the node-to-node routes: every route a node serves,
/// each with its OpenAPI operation (`routes!` registers the route at the path its
/// `#[utoipa::path]` documents).
fn routes() -> [OpenApiRouter<App>; 4] {
    let leader_only = OpenApiRouter::new()
        .merge(sessions::write_routes())
        .merge(user_ops::write_routes())
        .merge(cluster::write_routes())
        .merge(handover::write_routes())
        .merge(admin::write_routes());
    let any_node = OpenApiRouter::new()
        .merge(sessions::read_routes())
        .merge(admin::routes())
        .merge(events::routes())
        .merge(federation::routes())
        .merge(cluster::read_routes())
        .merge(backup::routes())
        .merge(handover::node_routes());
    [
        leader_only,
        any_node,
        federation::peer_routes(),
        internal::routes(),
    ]
}

/// The fewest requests in progress the node-to-node routes take whatever
/// `max_concurrent_requests` says: a cluster's own Raft traffic must not be shed.
const NODE_TO_NODE_MIN_CONCURRENCY: usize = 64;

/// Every route of a node.
///
/// Requests in progress are bounded per group of routes, each with a budget of its own: the
/// API (apps and operators), peer sites, and the other nodes of this site. Past its bound a
/// request is answered 503 at once, before anything else runs (queueing would only make every
/// caller wait), and a flood on one group (slow clients of the API, a site's burst) cannot take
/// the slots Raft needs.
pub(crate) fn router(app: App) -> Router {
    let [leader_only, any_node, peer_sites, node_to_node] = routes();
    let n = app.max_concurrent_requests();
    let leader_only = leader_only.layer(middleware::from_fn_with_state(
        app.clone(),
        forward::to_leader,
    ));
    let api = OpenApiRouter::new().merge(leader_only).merge(any_node);
    let node_to_node = internal::guard(node_to_node, app.clone());
    let (router, _) = OpenApiRouter::new()
        .merge(bounded(api, n))
        .merge(bounded(peer_sites, n))
        .merge(bounded(node_to_node, n.max(NODE_TO_NODE_MIN_CONCURRENCY)))
        .split_for_parts();
    router
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), count_requests))
        .with_state(app)
}

/// `routes` with a budget of `limit` requests in progress shared by all of them; past it, 503
/// at once.
fn bounded(routes: OpenApiRouter<App>, limit: usize) -> OpenApiRouter<App> {
    routes.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(overloaded))
            .load_shed()
            .layer(GlobalConcurrencyLimitLayer::new(limit)),
    )
}

async fn overloaded(_: tower::BoxError) -> ApiError {
    ApiError::unavailable(
        "this node has as many requests in progress as it takes ([limits] \
         max_concurrent_requests); retry shortly",
    )
}

/// Whether the request came on a connection that was asked for a client certificate
/// (`[tls] client_ca_file`) and showed none: the routes for peer nodes and sites refuse it.
pub(super) fn without_client_cert(extensions: &axum::http::Extensions) -> bool {
    extensions.get::<ClientCert>() == Some(&ClientCert::Missing)
}

/// The answer to a peer route called without a client certificate.
pub(super) fn no_client_cert() -> ApiError {
    ApiError::forbidden(
        "this route is for the nodes of this site and its peer sites: the connection must show \
         a client certificate of [tls] client_ca_file",
    )
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see docs/api.md")
}

async fn count_requests(
    axum::extract::State(app): axum::extract::State<App>,
    mut req: Request<axum::body::Body>,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(req.method());
    let started = std::time::Instant::now();
    let proven = Proven::default();
    req.extensions_mut().insert(proven.clone());
    let mut resp = json_errors(within_deadline(&app, req, next).await).await;
    name_leader(&app, &proven, &mut resp);
    app.metrics()
        .observe_request(method, &route, resp.status().as_u16(), started.elapsed());
    resp
}

/// Whether the caller of a request was proven: an API key of the route's role
/// ([`auth::authenticate`]), a node's proof ([`internal`]) or a peer site's signature
/// ([`federation`]) marks it. Each request gets its own, in its extensions.
#[derive(Clone, Default)]
pub(crate) struct Proven(Arc<AtomicBool>);

impl Proven {
    /// Marks the request whose `extensions` these are as made by a proven caller.
    pub(crate) fn mark(extensions: &axum::http::Extensions) {
        if let Some(p) = extensions.get::<Proven>() {
            p.0.store(true, Ordering::Relaxed);
        }
    }

    fn is_proven(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Names the leader (`x-sessync-leader`) in an answer to a proven caller, so clients learn
/// where to send writes; a stranger, or a caller refused (401, 403), is not told which node
/// leads (nor one relayed from the leader).
fn name_leader(app: &App, proven: &Proven, resp: &mut Response) {
    let refused = matches!(resp.status().as_u16(), 401 | 403);
    if !proven.is_proven() || refused {
        resp.headers_mut().remove(LEADER_HEADER);
        return;
    }
    if let Some(url) = app
        .rt()
        .leader()
        .and_then(|(_, url)| axum::http::HeaderValue::from_str(&url).ok())
    {
        resp.headers_mut().insert(LEADER_HEADER, url);
    }
}

/// Runs the request with one deadline for all it does (reading its body, a policy write before
/// its command, a follower's read index and then its forward): past `request_timeout` the
/// answer is 503 `unavailable`. Node-to-node routes are bounded by Raft's own timeouts instead,
/// membership changes by their own, longer deadlines ([`cluster::own_deadline`]).
async fn within_deadline(app: &App, req: Request<axum::body::Body>, next: Next) -> Response {
    if req.uri().path().starts_with("/raft/") {
        return next.run(req).await.into_response();
    }
    let timeout = deadline_of(app, req.uri().path());
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(resp) => resp.into_response(),
        Err(_) => ApiError::unavailable(format!(
            "the request did not finish within {} ([limits] request_timeout); it may still \
             take effect: retry it (idempotently) or check",
            humantime::format_duration(timeout)
        ))
        .into_response(),
    }
}

/// How long a request to `path` may take, from arrival to answer.
pub(crate) fn deadline_of(app: &App, path: &str) -> std::time::Duration {
    let rt = app.rt().request_timeout();
    cluster::own_deadline(path, rt)
        .or_else(|| backup::own_deadline(path))
        .or_else(|| handover::own_deadline(path, rt))
        .unwrap_or(rt)
}

/// The method as a metric label: a standard method or `other`, so no request can add a label
/// set (the route label is the matched route template or `unmatched`).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Makes every error answer JSON, including axum's own rejections (wrong method, bad path). The
/// answer's other headers (the leader's URL, a node's signed clock) are kept.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if status.as_u16() < 400 || is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
    let code = match status.as_u16() {
        400 | 422 => sessync_proto::ErrorCode::BadRequest,
        401 => sessync_proto::ErrorCode::Unauthorized,
        403 => sessync_proto::ErrorCode::Forbidden,
        404 | 405 => sessync_proto::ErrorCode::NotFound,
        413 => sessync_proto::ErrorCode::PayloadTooLarge,
        503 => sessync_proto::ErrorCode::Unavailable,
        _ => sessync_proto::ErrorCode::Internal,
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let mut out = ApiError::new(code, message).into_response();
    *out.status_mut() = status;
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(name, value.clone());
        }
    }
    out
}

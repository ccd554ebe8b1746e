//! The HTTP API of a node (axum): the v1 session and admin endpoints, cluster management, and
//! the Raft RPC routes, all on one listener.
//!
//! A request's path: [`auth`] checks the API key and role; writes pass [`forward`], which sends
//! them to the leader if this node is not it; the handler in [`sessions`], [`admin`] or
//! [`cluster`] stamps a [`crate::session::Command`] with cluster time and leader-made ids and
//! proposes it through Raft ([`App::propose`]); reads first make this node's replica current
//! ([`App::linearize`]) and then read the shared [`crate::store::StateReader`].

pub mod admin;
pub mod auth;
pub mod body;
pub mod cluster;
pub mod error;
pub mod events;
pub mod forward;
pub mod sessions;
mod state;

use axum::extract::MatchedPath;
use axum::http::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;

pub use error::ApiError;

/// The header in which every answer names the leader's advertised URL, when one is known.
pub const LEADER_HEADER: &str = "x-sessync-leader";
pub use state::{App, AppParts};

/// Every route of a node.
pub fn router(app: App) -> Router {
    let leader_only = Router::new()
        .merge(sessions::write_routes())
        .merge(cluster::write_routes())
        .layer(middleware::from_fn_with_state(
            app.clone(),
            forward::to_leader,
        ));
    let internal = Router::new()
        .merge(crate::network::server::routes())
        .merge(crate::readindex::routes())
        .merge(crate::audit::routes())
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            crate::network::server::require_fresh_proof,
        ));
    Router::new()
        .merge(leader_only)
        .merge(sessions::read_routes())
        .merge(admin::routes())
        .merge(events::routes())
        .merge(crate::federation::routes())
        .merge(cluster::read_routes())
        .merge(internal)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), count_requests))
        .with_state(app)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see docs/api.md")
}

async fn count_requests(
    axum::extract::State(app): axum::extract::State<App>,
    req: Request<axum::body::Body>,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let started = std::time::Instant::now();
    let mut resp = json_errors(next.run(req).await.into_response()).await;
    // Clients learn where to send writes from any answer.
    if let Some(url) = app
        .leader()
        .and_then(|(_, url)| axum::http::HeaderValue::from_str(&url).ok())
    {
        resp.headers_mut().insert(LEADER_HEADER, url);
    }
    app.metrics()
        .observe_request(&method, &route, resp.status().as_u16(), started.elapsed());
    resp
}

/// Makes every error answer JSON, including axum's own rejections (wrong method, bad path).
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
    let bytes = axum::body::to_bytes(resp.into_body(), 4096)
        .await
        .unwrap_or_default();
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
    out
}

//! Followers serve every endpoint: a write that reaches a follower is sent on to the leader
//! as it came (method, path, key, body) and the leader's answer is passed back. While the
//! leader hands over leadership, a write that reaches it waits, then goes to the new leader.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sessync_proto::federation::{
    CONTENT_SHA256_HEADER, NONCE_HEADER, SIGNATURE_HEADER, SITE_HEADER, TARGET_SITE_HEADER,
    TIMESTAMP_HEADER,
};
use sessync_proto::wire::FORWARDED_HEADER;
use sessync_proto::Role;

use super::auth::authenticate;
use super::body::read_limited;
use super::error::ApiError;
use super::state::App;

/// The signed headers of a peer site's request, which the leader checks again.
const PEER_HEADERS: [&str; 6] = [
    SITE_HEADER,
    TARGET_SITE_HEADER,
    TIMESTAMP_HEADER,
    NONCE_HEADER,
    CONTENT_SHA256_HEADER,
    SIGNATURE_HEADER,
];

/// Middleware on leader-only routes: run here if this node leads, else forward to the leader.
pub(crate) async fn to_leader(State(app): State<App>, req: Request, next: Next) -> Response {
    // During a leadership hand-over writes wait, then go to whichever node leads.
    app.rt().wait_while_held().await;
    if app.rt().is_leader() {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    // Only callers with a valid key are worth a hop; the leader checks the role.
    if let Err(e) = authenticate(&parts, &app, Role::App) {
        return e.into_response();
    }
    let bytes = match read_limited(body, app.max_body_bytes(), app.body_timeout()).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    relay(&app, parts.method, path, &parts.headers, bytes.to_vec()).await
}

/// Sends a request this node cannot serve to the leader, as it came, and gives back the
/// leader's answer; 503 if there is no leader, it cannot be reached, or the request was
/// already forwarded once (leadership moved meanwhile).
pub(crate) async fn relay(
    app: &App,
    method: axum::http::Method,
    path: &str,
    headers: &HeaderMap,
    body: Vec<u8>,
) -> Response {
    if headers.contains_key(FORWARDED_HEADER) {
        return ApiError::unavailable("this node is no longer the leader; retry").into_response();
    }
    let Some((leader_id, url)) = app.rt().leader() else {
        return ApiError::unavailable("no leader is elected right now (no quorum?); retry")
            .into_response();
    };
    app.metrics().forwarded.inc();
    match send(app, method, &url, path, headers, body).await {
        Ok(r) => r,
        Err(e) => ApiError::unavailable(format!("cannot reach the leader (node {leader_id}): {e}"))
            .into_response(),
    }
}

/// Sends a request to `base` + `path` with the caller's key and the forwarded mark.
async fn send(
    app: &App,
    method: axum::http::Method,
    base: &str,
    path: &str,
    headers: &HeaderMap,
    body: Vec<u8>,
) -> Result<Response, reqwest::Error> {
    let rt = app.rt();
    let mut rb = rt
        .http()
        .request(method, format!("{base}{path}"))
        // The caller's own deadline (`within_deadline`) bounds the whole request anyway.
        .timeout(super::deadline_of(app, path))
        .header(FORWARDED_HEADER, rt.node_id().to_string())
        .body(body);
    for name in [
        header::AUTHORIZATION.as_str(),
        header::CONTENT_TYPE.as_str(),
    ]
    .into_iter()
    .chain(PEER_HEADERS)
    {
        if let Some(v) = headers.get(name) {
            rb = rb.header(name, v.clone());
        }
    }
    let resp = rb.send().await?;
    let status = resp.status();
    let ctype = resp.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = resp.bytes().await?;
    let mut out = Response::new(Body::from(bytes));
    *out.status_mut() = status;
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        ctype.unwrap_or(HeaderValue::from_static("application/json")),
    );
    Ok(out)
}

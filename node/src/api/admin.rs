//! The admin endpoints: replicated config and the operator's policy change, who is active now,
//! the audit log, metrics, health.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use sessync_proto::api::{ActiveUser, ActiveUsersResponse, AuditResponse, ConfigResponse};
use sessync_proto::time::human_idle;
use sessync_proto::{ErrorBody, PolicyUpdate, Role, SessionId, SessionState, Timestamp, UserId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{authenticate, AdminCaller, AppCaller};
use super::body::JsonBody;
use super::error::ApiError;
use super::page::{self, Page};
use super::state::App;
use crate::store::AuditQuery;

/// The admin writes, served by the leader (a follower forwards them).
pub(crate) fn write_routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(set_policy))
}

pub(crate) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(config))
        .routes(routes!(active_users))
        .routes(routes!(audit))
        .routes(routes!(metrics))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(openapi_json))
}

/// What this build offers, for clients that adapt.
const FEATURES: &[&str] = &[
    "sessions",
    "validate_linearizable",
    "validate_local",
    "on_limit_deny",
    "on_limit_block_new",
    "on_limit_evict_oldest",
    "verify",
    "invalidate",
    "audit",
    "metrics",
    "idempotent_create",
    "federation",
];

/// `GET /v1/config`: the replicated policy to any key (front ends show the idle warning from
/// it); the build's features and the site name to an admin key only.
#[utoipa::path(get, path = "/v1/config", tag = "admin",
    responses(
        (status = 200, description = "The replicated policy; with an admin key also the features and the site", body = ConfigResponse),
        (status = 401, description = "No API key, or not a valid one", body = ErrorBody)),
    security(("api_key" = [])))]
async fn config(State(app): State<App>, AppCaller(caller): AppCaller) -> Json<ConfigResponse> {
    let policy = app.rt().state().read(|s| s.replicated_policy().cloned());
    if caller.role != Role::Admin {
        return Json(ConfigResponse {
            policy,
            features: Vec::new(),
            site: None,
        });
    }
    Json(ConfigResponse {
        policy,
        features: FEATURES.iter().map(|f| (*f).to_owned()).collect(),
        site: Some(app.rt().site().clone()),
    })
}

/// `PUT /v1/config/policy`: the keys given replace the replicated values (the others keep
/// theirs); the result is checked like a config file's `[policy]`, replicated, and audited
/// (`policy_changed`, with the key that asked).
#[utoipa::path(put, path = "/v1/config/policy", tag = "admin",
    request_body = PolicyUpdate,
    responses(
        (status = 200, description = "The policy with the given keys replaced, replicated and audited", body = ConfigResponse),
        (status = 400, description = "A field or parameter is wrong; the error names it", body = ErrorBody), (status = 401, description = "No API key, or not a valid one", body = ErrorBody), (status = 403, description = "The key is not an admin key", body = ErrorBody), (status = 413, description = "The body is over the size limit", body = ErrorBody), (status = 503, description = "No leader or quorum, or the node busy: retry", body = ErrorBody)),
    security(("api_key" = [])))]
async fn set_policy(
    State(app): State<App>,
    AdminCaller(caller): AdminCaller,
    JsonBody(update): JsonBody<PolicyUpdate>,
) -> Result<Json<ConfigResponse>, ApiError> {
    if update.is_empty() {
        return Err(ApiError::bad_request(
            "body",
            "names no policy key; give at least one, e.g. {\"idle_timeout\": \"30m\"}",
        ));
    }
    // Merged with the replicated policy, stamped and ordered with reads by the leader's
    // sequencer (see `crate::sequencer`); the route is leader-only.
    app.linearize().await?;
    app.sequencer()
        .set_policy(update, caller.name.clone())
        .await??;
    Ok(config(State(app), AppCaller(caller)).await)
}

#[derive(Deserialize)]
struct PageParams {
    limit: Option<String>,
    cursor: Option<String>,
}

/// Users with an active session now, by user id, a page at a time: walks the users that hold
/// live sessions from the cursor on, so a page costs those users' live sessions only.
#[utoipa::path(get, path = "/v1/users/active", tag = "admin",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1-1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the page before"),
    ),
    responses(
        (status = 200, description = "Users with an active session, by user id, with how long they have been idle", body = ActiveUsersResponse),
        (status = 400, description = "A field or parameter is wrong; the error names it", body = ErrorBody), (status = 401, description = "No API key, or not a valid one", body = ErrorBody), (status = 403, description = "The key is not an admin key", body = ErrorBody), (status = 503, description = "No leader or quorum, or the node busy: retry", body = ErrorBody)),
    security(("api_key" = [])))]
async fn active_users(
    State(app): State<App>,
    _caller: AdminCaller,
    Query(q): Query<PageParams>,
) -> Result<Json<ActiveUsersResponse>, ApiError> {
    let page = Page::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let after = page
        .after
        .as_deref()
        .map(|u| {
            UserId::parse_field(u, "cursor")
                .map_err(|_| ApiError::bad_request("cursor", "is not a cursor of this list"))
        })
        .transpose()?;
    let now = app.linearize().await?;
    // At most `limit` × WALK_PER_ITEM users are visited. Users whose live sessions are all
    // blocked (or past their deadline, not yet swept) are walked past without a place in the
    // page, so a page may hold fewer than `limit` users, even none, and still carry
    // `next_cursor`: the walk goes on from where it stopped.
    let walk = page.limit.saturating_mul(page::WALK_PER_ITEM);
    let (users, walked_to) = app.rt().state().read(|s| {
        let p = s.policy();
        let mut out = Vec::new();
        let mut holders = s.users_with_live_sessions(after.as_ref()).peekable();
        let mut visited = 0;
        while let Some(user) = holders.next() {
            visited += 1;
            let (sessions, last_seen_at) = s
                .live_sessions(user)
                .filter(|x| x.state == SessionState::Active && x.is_valid_at(now, p))
                .fold((0u32, Timestamp(0)), |(n, t), x| {
                    (n + 1, t.max(x.last_seen_at))
                });
            if sessions > 0 {
                let idle = now.since(last_seen_at);
                out.push(ActiveUser {
                    user_id: user.clone(),
                    sessions,
                    last_seen_at,
                    idle_seconds: idle.as_secs(),
                    idle: human_idle(idle),
                });
                if out.len() > page.limit {
                    return (out, None);
                }
            }
            // Users holding only blocked or ended-by-time sessions take no place in the page
            // but cost their visit: past the bound the page ends where the walk stopped.
            if visited >= walk && holders.peek().is_some() {
                return (out, Some(user.clone()));
            }
        }
        (out, None)
    });
    let (users, next_cursor) = match walked_to {
        Some(last) => (users, Some(page::cursor(last.as_str()))),
        None => page::cut(users, page.limit, |u| u.user_id.to_string()),
    };
    Ok(Json(ActiveUsersResponse { users, next_cursor }))
}

#[derive(Deserialize)]
struct AuditParams {
    user_id: Option<String>,
    session_id: Option<String>,
    kind: Option<String>,
    since: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/audit", tag = "admin",
    params(
        ("user_id" = Option<String>, Query, description = "Only this user's events"),
        ("session_id" = Option<String>, Query, description = "Only this session's events"),
        ("kind" = Option<String>, Query, description = "Only events of this kind"),
        ("since" = Option<String>, Query, description = "Only events at or after this RFC 3339 time"),
        ("limit" = Option<u32>, Query, description = "Page size, 1-1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the page before"),
    ),
    responses(
        (status = 200, description = "Replicated audit events, newest first", body = AuditResponse),
        (status = 400, description = "A field or parameter is wrong; the error names it", body = ErrorBody), (status = 401, description = "No API key, or not a valid one", body = ErrorBody), (status = 403, description = "The key is not an admin key", body = ErrorBody), (status = 503, description = "No leader or quorum, or the node busy: retry", body = ErrorBody)),
    security(("api_key" = [])))]
async fn audit(
    State(app): State<App>,
    _caller: AdminCaller,
    Query(p): Query<AuditParams>,
) -> Result<Json<AuditResponse>, ApiError> {
    let page = Page::parse(p.limit.as_deref(), p.cursor.as_deref())?;
    let before = page
        .after
        .as_deref()
        .map(|c| {
            c.parse::<u64>()
                .map_err(|_| ApiError::bad_request("cursor", "is not a cursor of this list"))
        })
        .transpose()?;
    let since = p
        .since
        .as_deref()
        .map(|s| {
            Timestamp::parse_rfc3339(s).map_err(|_| {
                ApiError::bad_request(
                    "since",
                    "must be an RFC 3339 time such as 2026-11-23T15:00:00Z",
                )
            })
        })
        .transpose()?;
    let q = AuditQuery {
        user_id: p
            .user_id
            .as_deref()
            .map(|u| UserId::parse_field(u, "user_id"))
            .transpose()?,
        session_id: p
            .session_id
            .as_deref()
            .map(|s| SessionId::parse_field(s, "session_id"))
            .transpose()?,
        kind: p.kind,
        since,
        before,
        limit: page.limit + 1,
    };
    app.linearize().await?;
    let events = app
        .rt()
        .state()
        .audit(&q)
        .map_err(|e| ApiError::from_read("the audit log", e))?;
    let (events, next_cursor) = page::cut(events, page.limit, |e| e.seq.to_string());
    Ok(Json(AuditResponse {
        events,
        next_cursor,
    }))
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus metrics (OpenMetrics text)", content_type = "application/openmetrics-text", body = String),
        (status = 401, description = "No admin key, unless `[metrics] open = true`", body = ErrorBody),
        (status = 403, description = "The key is not an admin key", body = ErrorBody)),
    security(("api_key" = [])))]
async fn metrics(State(app): State<App>, req: axum::extract::Request) -> Response {
    if !app.metrics_open() {
        let (parts, _) = req.into_parts();
        if let Err(e) = authenticate(&parts, &app, sessync_proto::Role::Admin) {
            return e.into_response();
        }
    }
    let body = app
        .metrics()
        .render(app.rt(), app.federation().peer_names());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process answers", body = Object)))]
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Ready when a leader is known and was heard from within the election timeout, this replica
/// is within 100 entries of the leader's commit index, the clock is within `max_clock_skew`
/// (see `runtime::health`), and the node is not drained; 503 with the reasons otherwise.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready: a leader heard from recently, caught up, the clock within the bound", body = Object),
        (status = 503, description = "Not ready, with the reasons (`no_leader`, `leader_silent`, `lagging`, `clock_skew`, `clock_unmeasured`, `draining`)", body = Object)))]
async fn readyz(State(app): State<App>) -> Response {
    let m = app.rt().raft().metrics().borrow().clone();
    let r = app.rt().readiness();
    let body = Json(serde_json::json!({
        "ready": r.ready,
        "reasons": r.reasons,
        "leader": m.current_leader,
        "lag": r.lag,
        "last_log_index": m.last_log_index,
        "last_applied": m.last_applied.map(|l| l.index),
        "clock_offset_ms": r.clock.deviation_ms,
        "clock_skewed": r.clock.skewed,
    }));
    if r.ready {
        body.into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

/// `GET /v1/openapi.json` (open, like the probes): this API as an OpenAPI 3.1 document, made
/// from the routes and wire types themselves (and committed as docs/openapi.json).
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document of this API", body = Object)))]
async fn openapi_json() -> Response {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let doc = DOC.get_or_init(super::openapi::json);
    ([(header::CONTENT_TYPE, "application/json")], doc.as_str()).into_response()
}

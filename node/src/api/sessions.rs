//! The session endpoints (role app): create, validate, touch, get, end, list (verify and
//! invalidate, which act on a user's sessions and fan out, are in `user_ops`).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use sessync_proto::api::{
    Consistency, CreateSessionRequest, CreateSessionResponse, SessionResponse, SessionsResponse,
    TouchResponse, ValidateRequest, ValidateResponse,
};
use sessync_proto::ErrorBody;
use sessync_proto::{EndReason, Role, SessionId, SessionState, SessionView, Timestamp, UserId};

use super::auth::AppCaller;
use super::body::JsonBody;
use super::error::ApiError;
use super::forward;
use super::page::{self, Page};
use super::state::App;
use crate::session::{Command, Create, End, IssueToken, Outcome, Session, TokenHash};
use crate::tokens;

/// Where validate is served (a follower relays a validate that needs a touch here, on the
/// leader).
const VALIDATE_PATH: &str = "/v1/sessions/validate";

/// Routes that change state: they run on the leader (followers forward them).
pub(crate) fn write_routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(touch))
        .routes(routes!(end))
}

/// Routes any node answers from its replica (made linearizable by read index).
pub(crate) fn read_routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(validate))
        .routes(routes!(get_session))
        .routes(routes!(list))
}

fn session_id(raw: &str) -> Result<SessionId, ApiError> {
    Ok(SessionId::parse_field(raw, "session_id")?)
}

pub(super) fn user_id(raw: &str) -> Result<UserId, ApiError> {
    Ok(UserId::parse_field(raw, "user_id")?)
}

/// Reads a session and the policy it is judged by.
fn lookup(app: &App, id: &SessionId) -> Result<(Session, sessync_proto::Policy), ApiError> {
    app.rt()
        .state()
        .read(|s| s.get(id).map(|x| (x.clone(), s.policy().clone())))
        .ok_or_else(|| ApiError::not_found(format!("no session {id}")))
}

#[utoipa::path(post, path = "/v1/sessions", tag = "sessions",
    request_body = CreateSessionRequest,
    responses(
        (status = 201, description = "Created; the token appears only here. A repeat of an earlier create's idempotency key (same API key, within idempotency_window) is answered 200 with that session and a fresh token, which replaces the one it held (an ended session gets none: `token` is empty)", body = CreateSessionResponse),
        (status = 400, description = "A field of the request is wrong; the error names it", body = ErrorBody), (status = 401, description = "No API key, or not a valid one", body = ErrorBody), (status = 413, description = "The body is over the size limit", body = ErrorBody),
        (status = 409, description = "`limit_reached` (with the active sessions) under on_limit deny, or `conflict` for an idempotency key reused for another user", body = ErrorBody),
        (status = 503, description = "No leader or quorum, a clock off, or the node busy: retry", body = ErrorBody)),
    security(("api_key" = [])))]
async fn create(
    State(app): State<App>,
    AppCaller(caller): AppCaller,
    JsonBody(req): JsonBody<CreateSessionRequest>,
) -> Result<Response, ApiError> {
    req.validate()?;
    let rt = app.rt();
    let session_id = SessionId::from_random(rand::random());
    let token = tokens::random();
    let cmd = Command::Create(Create {
        at: rt.cluster_now(),
        session_id,
        token_hash: TokenHash::of(&token),
        user_id: req.user_id.clone(),
        device: req.device,
        origin: req.origin,
        idempotency_key: req.idempotency_key,
        by: Some(caller.name),
    });
    let policy = || rt.state().read(|s| s.policy().clone());
    match rt.propose(cmd).await? {
        Outcome::Created {
            session,
            replayed: false,
        } => {
            let body = CreateSessionResponse {
                session: session.view(&policy()),
                token,
            };
            Ok((StatusCode::CREATED, Json(body)).into_response())
        }
        Outcome::Created {
            session,
            replayed: true,
        } => {
            let (session, token) = fresh_token(&app, session, token).await?;
            let body = CreateSessionResponse {
                session: session.view(&policy()),
                token,
            };
            Ok((StatusCode::OK, Json(body)).into_response())
        }
        Outcome::LimitReached { active } => {
            let p = policy();
            let views = active.iter().map(|s| s.view(&p)).collect();
            Err(ApiError::limit_reached(p.max_concurrent_sessions, views))
        }
        Outcome::Refused { message } => Err(ApiError::conflict(message)),
        other => Err(unexpected(other)),
    }
}

/// A replayed create's token: no token is ever stored or derived, so a replay gets a fresh one
/// (`token`, made for this create) that opens the session beside the tokens earlier answers
/// gave (`IssueToken`). A session that has ended gets none: the answer's `token` is empty.
async fn fresh_token(
    app: &App,
    session: Session,
    token: String,
) -> Result<(Session, String), ApiError> {
    if !session.is_live() {
        return Ok((session, String::new()));
    }
    let hash = TokenHash::of(&token);
    let cmd = Command::IssueToken(IssueToken {
        at: app.rt().cluster_now(),
        session_id: session.id,
        token_hash: hash,
    });
    match app.rt().propose(cmd).await? {
        Outcome::Created { session, .. }
            if session.is_live()
                && session
                    .token_hashes()
                    .any(|h| tokens::hashes_equal(h, &hash)) =>
        {
            Ok((session, token))
        }
        // It ended meanwhile.
        Outcome::Created { session, .. } => Ok((session, String::new())),
        Outcome::NotFound { message } => Err(ApiError::not_found(message)),
        Outcome::Refused { message } => Err(ApiError::unavailable(message)),
        other => Err(unexpected(other)),
    }
}

pub(super) fn unexpected(o: Outcome) -> ApiError {
    ApiError::internal(format!("unexpected state machine outcome: {o:?}"))
}

fn invalid(reason: &str) -> ValidateResponse {
    ValidateResponse {
        valid: false,
        session: None,
        seconds_until_idle_end: None,
        seconds_until_session_end: None,
        reason: Some(reason.to_owned()),
    }
}

/// Cluster time for a local read: this node's clock pushed forward by the skew bound, so a slow
/// clock never reports valid what cluster time has already ended; refused (`clock_skew`) when
/// the clock guard finds this clock further off than that bound.
fn local_now(app: &App) -> Result<Timestamp, ApiError> {
    app.rt().clock_guard()?;
    Ok(app.rt().state().read(|s| {
        Timestamp::now()
            .plus(s.policy().max_clock_skew)
            .max(s.clock())
    }))
}

#[utoipa::path(post, path = "/v1/sessions/validate", tag = "sessions",
    request_body = ValidateRequest,
    responses(
        (status = 200, description = "Whether the token's session is valid now, with the seconds left, or why not", body = ValidateResponse),
        (status = 400, description = "A field of the request is wrong; the error names it", body = ErrorBody), (status = 401, description = "No API key, or not a valid one", body = ErrorBody), (status = 413, description = "The body is over the size limit", body = ErrorBody), (status = 503, description = "No leader or quorum, a clock off, or the node busy: retry", body = ErrorBody)),
    security(("api_key" = [])))]
async fn validate(
    State(app): State<App>,
    _caller: AppCaller,
    headers: HeaderMap,
    JsonBody(req): JsonBody<ValidateRequest>,
) -> Result<Response, ApiError> {
    req.validate()?;
    let now = match req.consistency {
        Consistency::Linearizable => app.linearize().await?,
        Consistency::Local => local_now(&app)?,
    };
    let hash = TokenHash::of(&req.token);
    let found = app.rt().state().read(|s| {
        s.by_token(&hash)
            .filter(|x| x.token_hashes().any(|h| tokens::hashes_equal(h, &hash)))
            .map(|x| (x.as_of(now, s.policy()), s.policy().clone()))
    });
    let Some((mut sess, policy)) = found else {
        return Ok(Json(invalid("unknown")).into_response());
    };
    if sess.state == SessionState::Active
        && req.touch
        && now.since(sess.last_seen_at) >= policy.touch_interval
    {
        if !app.rt().is_leader() {
            // The leader replicates the touch and judges the session after it.
            let body = serde_json::to_vec(&req).map_err(|e| ApiError::internal(e.to_string()))?;
            return Ok(forward::relay(&app, Method::POST, VALIDATE_PATH, &headers, body).await);
        }
        sess = touch_and_judge(&app, &sess.id, now).await?;
    }
    Ok(Json(judged(&sess, now, &policy)).into_response())
}

/// The validate answer for a session as judged at `now`.
fn judged(sess: &Session, now: Timestamp, policy: &sessync_proto::Policy) -> ValidateResponse {
    match sess.state {
        SessionState::Ended => invalid(sess.end_reason.map_or("unknown", EndReason::as_str)),
        SessionState::Blocked => invalid("blocked"),
        SessionState::Active => {
            let (idle, life) = sess.seconds_left(now, policy);
            ValidateResponse {
                valid: true,
                session: Some(sess.view(policy)),
                seconds_until_idle_end: Some(idle),
                seconds_until_session_end: Some(life),
                reason: None,
            }
        }
    }
}

/// On the leader: replicates a touch of a session active at `now` (batched with others) unless
/// a recent one stands, then judges the session again at the touch's stamp: a touch taken after
/// the session's deadline did not count, and the session is then ended for every reader.
async fn touch_and_judge(app: &App, id: &SessionId, now: Timestamp) -> Result<Session, ApiError> {
    let (sess, policy) = lookup(app, id)?;
    let sess = sess.as_of(now, &policy);
    if sess.state != SessionState::Active || now.since(sess.last_seen_at) < policy.touch_interval {
        return Ok(sess);
    }
    let stamped = app.sequencer().touch(id.clone()).await?;
    let (after, policy) = lookup(app, id)?;
    Ok(after.as_of(now.max(stamped), &policy))
}

/// On the leader: the touch endpoint's work.
async fn touch_here(app: &App, id: &SessionId) -> Result<TouchResponse, ApiError> {
    // A read like validate's: a node that only believes it leads must not answer from a stale
    // replica (when no touch needs replicating, nothing else would stop it).
    let now = app.linearize().await?;
    let sess = touch_and_judge(app, id, now).await?;
    match sess.state {
        SessionState::Ended => {
            return Err(ApiError::conflict(format!(
                "session {id} has ended ({}); it cannot be touched",
                sess.end_reason.map_or("unknown", EndReason::as_str)
            )))
        }
        SessionState::Blocked => {
            return Err(ApiError::conflict(format!(
                "session {id} is blocked until a verify chooses it; it cannot be touched"
            )))
        }
        SessionState::Active => {}
    }
    let policy = app.rt().state().read(|s| s.policy().clone());
    let (idle, life) = sess.seconds_left(now, &policy);
    Ok(TouchResponse {
        session: sess.view(&policy),
        seconds_until_idle_end: idle,
        seconds_until_session_end: life,
    })
}

#[utoipa::path(post, path = "/v1/sessions/{session_id}/touch", tag = "sessions",
    params(("session_id" = String, Path, description = "The session's id")),
    responses(
        (status = 200, description = "Touched: the idle deadline slides", body = TouchResponse),
        (status = 400, description = "A field of the request is wrong; the error names it", body = ErrorBody), (status = 401, description = "No API key, or not a valid one", body = ErrorBody), (status = 404, description = "No such session", body = ErrorBody),
        (status = 409, description = "The session has ended or is blocked", body = ErrorBody),
        (status = 503, description = "No leader or quorum, a clock off, or the node busy: retry", body = ErrorBody)),
    security(("api_key" = [])))]
async fn touch(
    State(app): State<App>,
    _caller: AppCaller,
    Path(raw): Path<String>,
) -> Result<Json<TouchResponse>, ApiError> {
    let id = session_id(&raw)?;
    Ok(Json(touch_here(&app, &id).await?))
}

#[utoipa::path(get, path = "/v1/sessions/{session_id}", tag = "sessions",
    params(("session_id" = String, Path, description = "The session's id")),
    responses(
        (status = 200, description = "The session as of now", body = SessionResponse),
        (status = 400, description = "A field of the request is wrong; the error names it", body = ErrorBody), (status = 401, description = "No API key, or not a valid one", body = ErrorBody), (status = 404, description = "No such session", body = ErrorBody), (status = 503, description = "No leader or quorum, a clock off, or the node busy: retry", body = ErrorBody)),
    security(("api_key" = [])))]
async fn get_session(
    State(app): State<App>,
    _caller: AppCaller,
    Path(raw): Path<String>,
) -> Result<Json<SessionResponse>, ApiError> {
    let id = session_id(&raw)?;
    let now = app.linearize().await?;
    let (sess, policy) = lookup(&app, &id)?;
    Ok(Json(SessionResponse {
        session: sess.as_of(now, &policy).view(&policy),
    }))
}

#[utoipa::path(delete, path = "/v1/sessions/{session_id}", tag = "sessions",
    params(("session_id" = String, Path, description = "The session's id")),
    responses(
        (status = 200, description = "Ended (logout; `admin` with an admin key); ending an ended session changes nothing", body = SessionResponse),
        (status = 400, description = "A field of the request is wrong; the error names it", body = ErrorBody), (status = 401, description = "No API key, or not a valid one", body = ErrorBody), (status = 404, description = "No such session", body = ErrorBody), (status = 503, description = "No leader or quorum, a clock off, or the node busy: retry", body = ErrorBody)),
    security(("api_key" = [])))]
async fn end(
    State(app): State<App>,
    AppCaller(caller): AppCaller,
    Path(raw): Path<String>,
) -> Result<Json<SessionResponse>, ApiError> {
    let id = session_id(&raw)?;
    let reason = match caller.role {
        Role::App => EndReason::Logout,
        Role::Admin => EndReason::Admin,
    };
    let cmd = Command::End(End {
        at: app.rt().cluster_now(),
        session_id: id,
        reason,
    });
    match app.rt().propose(cmd).await? {
        Outcome::Ended { session } => {
            let policy = app.rt().state().read(|s| s.policy().clone());
            Ok(Json(SessionResponse {
                session: session.view(&policy),
            }))
        }
        Outcome::NotFound { message } => Err(ApiError::not_found(message)),
        other => Err(unexpected(other)),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// A session's place in a user's list (newest first): creation time, then id.
fn list_position(s: &SessionView) -> String {
    format!("{}:{}", s.created_at.millis(), s.session_id)
}

#[utoipa::path(get, path = "/v1/users/{user_id}/sessions", tag = "sessions",
    params(
        ("user_id" = String, Path, description = "The user's id"),
        ("state" = Option<String>, Query, description = "`active` for the live ones only"),
        ("limit" = Option<u32>, Query, description = "Page size, 1-1000"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the page before"),
    ),
    responses(
        (status = 200, description = "The user's sessions, newest first", body = SessionsResponse),
        (status = 400, description = "A field of the request is wrong; the error names it", body = ErrorBody), (status = 401, description = "No API key, or not a valid one", body = ErrorBody), (status = 503, description = "No leader or quorum, a clock off, or the node busy: retry", body = ErrorBody)),
    security(("api_key" = [])))]
async fn list(
    State(app): State<App>,
    _caller: AppCaller,
    Path(raw): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<SessionsResponse>, ApiError> {
    let user = user_id(&raw)?;
    let keep: fn(&Session) -> bool = match q.state.as_deref().unwrap_or("all") {
        "all" => |_| true,
        "active" => |s| s.state == SessionState::Active,
        "blocked" => |s| s.state == SessionState::Blocked,
        "live" => |s| s.is_live(),
        "ended" => |s| s.state == SessionState::Ended,
        other => {
            return Err(ApiError::bad_request(
                "state",
                format!("is `{other}`; use active, blocked, live, ended or all"),
            ))
        }
    };
    let page = Page::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let after = match page.after.as_deref() {
        None => None,
        Some(pos) => Some(parse_list_position(pos)?),
    };
    let now = app.linearize().await?;
    let sessions: Vec<SessionView> = app.rt().state().read(|s| {
        let p = s.policy();
        let mut v: Vec<Session> = s
            .user_sessions(&user)
            .filter(|x| {
                after
                    .as_ref()
                    .is_none_or(|(t, id)| (x.created_at, &x.id) < (*t, id))
            })
            .map(|x| x.as_of(now, p))
            .filter(keep)
            .collect();
        v.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        v.truncate(page.limit + 1);
        v.iter().map(|x| x.view(p)).collect()
    });
    let (sessions, next_cursor) = page::cut(sessions, page.limit, list_position);
    Ok(Json(SessionsResponse {
        sessions,
        next_cursor,
    }))
}

fn parse_list_position(pos: &str) -> Result<(Timestamp, SessionId), ApiError> {
    let bad = || ApiError::bad_request("cursor", "is not a cursor of this list");
    let (t, id) = pos.split_once(':').ok_or_else(bad)?;
    let t = t.parse::<u64>().map_err(|_| bad())?;
    let id = SessionId::parse_field(id, "cursor").map_err(|_| bad())?;
    Ok((Timestamp(t), id))
}

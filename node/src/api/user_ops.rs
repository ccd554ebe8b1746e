//! Verify and invalidate (role app): one path for both, from the fan-out plan through the one
//! command that makes the local change and queues the operation for each target site, to the
//! answer that says how each target fared.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use sessync_proto::api::{
    FanoutStatus, InvalidateRequest, InvalidateResponse, VerifyRequest, VerifyResponse,
};
use sessync_proto::federation::PeerOpKind;
use sessync_proto::{ErrorBody, SessionId, SiteName, UserId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AppCaller;
use super::body::JsonBody;
use super::error::ApiError;
use super::federation::outbox_full;
use super::sessions::{unexpected, user_id};
use super::state::App;
use crate::federation::FanoutPlan;
use crate::session::{Command, Outcome, UserOp};

/// Both change state: they run on the leader (followers forward them).
pub(crate) fn write_routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(verify))
        .routes(routes!(invalidate))
}

#[utoipa::path(post, path = "/v1/users/{user_id}/verify", tag = "sessions",
    params(("user_id" = String, Path, description = "The user's id")),
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "The chosen session is active, every other one ended `superseded`; `fanout` per target site", body = VerifyResponse),
        (status = 400, description = "A field of the request is wrong; the error names it", body = ErrorBody), (status = 401, description = "No API key, or not a valid one", body = ErrorBody),
        (status = 404, description = "The session is not a live session of the user, or the user has none", body = ErrorBody),
        (status = 413, description = "The body is over the size limit", body = ErrorBody),
        (status = 429, description = "`outbox_full`: a target site's outbox is at its bound; nothing changed", body = ErrorBody),
        (status = 503, description = "No leader or quorum, a clock off, or the node busy: retry", body = ErrorBody)),
    security(("api_key" = [])))]
async fn verify(
    State(app): State<App>,
    _caller: AppCaller,
    Path(raw): Path<String>,
    JsonBody(req): JsonBody<VerifyRequest>,
) -> Result<Json<VerifyResponse>, ApiError> {
    let user = user_id(&raw)?;
    req.validate()?;
    let (outcome, fanout) =
        user_op(&app, PeerOpKind::Verify, user, req.session_id, &req.targets).await?;
    match outcome {
        Outcome::Verified { verified, ended } => Ok(Json(VerifyResponse {
            verified,
            ended,
            fanout,
        })),
        other => Err(unexpected(other)),
    }
}

#[utoipa::path(post, path = "/v1/users/{user_id}/invalidate", tag = "sessions",
    params(("user_id" = String, Path, description = "The user's id")),
    request_body = InvalidateRequest,
    responses(
        (status = 200, description = "The session, or every live session of the user, ended `invalidated`; `fanout` per target site", body = InvalidateResponse),
        (status = 400, description = "A field of the request is wrong; the error names it", body = ErrorBody), (status = 401, description = "No API key, or not a valid one", body = ErrorBody),
        (status = 404, description = "The session is not the user's", body = ErrorBody),
        (status = 413, description = "The body is over the size limit", body = ErrorBody),
        (status = 429, description = "`outbox_full`: a target site's outbox is at its bound; nothing changed", body = ErrorBody),
        (status = 503, description = "No leader or quorum, a clock off, or the node busy: retry", body = ErrorBody)),
    security(("api_key" = [])))]
async fn invalidate(
    State(app): State<App>,
    _caller: AppCaller,
    Path(raw): Path<String>,
    JsonBody(req): JsonBody<InvalidateRequest>,
) -> Result<Json<InvalidateResponse>, ApiError> {
    let user = user_id(&raw)?;
    req.validate()?;
    let (outcome, fanout) = user_op(
        &app,
        PeerOpKind::Invalidate,
        user,
        req.session_id,
        &req.targets,
    )
    .await?;
    match outcome {
        Outcome::Invalidated { ended } => Ok(Json(InvalidateResponse { ended, fanout })),
        other => Err(unexpected(other)),
    }
}

/// The one path of verify and invalidate: the fan-out planned, the command proposed, the
/// refusals answered, and how each target fared.
async fn user_op(
    app: &App,
    kind: PeerOpKind,
    user_id: UserId,
    session_id: Option<SessionId>,
    targets: &[SiteName],
) -> Result<(Outcome, BTreeMap<SiteName, FanoutStatus>), ApiError> {
    let at = app.rt().cluster_now();
    let plan = FanoutPlan::new(app.federation(), targets, at);
    let op = UserOp {
        at,
        user_id,
        session_id,
        fanout: plan.fanout.clone(),
    };
    match app.rt().propose(Command::user_op(kind, op)).await? {
        Outcome::NotFound { message } => Err(ApiError::not_found(message)),
        o @ (Outcome::Verified { .. } | Outcome::Invalidated { .. }) => {
            Ok((o, plan.report(app.rt(), app.federation()).await))
        }
        other => Err(outbox_full(app, other).unwrap_or_else(unexpected)),
    }
}

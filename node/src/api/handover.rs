//! Leadership hand-over for operators (role admin): `POST /cluster/transfer-leader` (run on the
//! leader; a follower forwards it) and `POST /cluster/drain` (acts on the node it reaches: it
//! hands over if it leads, stops campaigning and answers `/readyz` 503 until restarted). The
//! hand-over itself is the runtime's ([`crate::runtime::Runtime::transfer_leadership`]).

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use sessync_proto::api::{DrainResponse, TransferLeaderRequest, TransferLeaderResponse};
use sessync_proto::ErrorBody;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AdminCaller;
use super::body::JsonBody;
use super::error::ApiError;
use super::state::App;
use crate::runtime::Transferred;

const TRANSFER_PATH: &str = "/cluster/transfer-leader";
const DRAIN_PATH: &str = "/cluster/drain";
/// How many request timeouts a hand-over may take (it is bounded by five election timeouts
/// itself; this only keeps the answer from being cut short).
const HANDOVER_TIMEOUTS: u32 = 4;

/// The deadline of a request to `path` when it is a hand-over.
pub(super) fn own_deadline(path: &str, request_timeout: Duration) -> Option<Duration> {
    matches!(path, TRANSFER_PATH | DRAIN_PATH).then_some(request_timeout * HANDOVER_TIMEOUTS)
}

/// The hand-over: runs on the leader.
pub(crate) fn write_routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(transfer_leader))
}

/// Draining: acts on the node it reaches.
pub(crate) fn node_routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(drain))
}

fn answer(t: Transferred) -> TransferLeaderResponse {
    TransferLeaderResponse {
        leader: t.to,
        previous_leader: t.from,
        took_ms: u64::try_from(t.took.as_millis()).unwrap_or(u64::MAX),
    }
}

#[utoipa::path(post, path = "/cluster/transfer-leader", tag = "cluster",
    request_body = TransferLeaderRequest,
    responses(
        (status = 200, description = "Another node leads now (`leader`, normally the one asked for); writes were held while it took over", body = TransferLeaderResponse),
        (status = 400, description = "`to` is not a member, or not a voter; the error names the field", body = ErrorBody), (status = 401, description = "No API key, or not a valid one", body = ErrorBody), (status = 403, description = "The key is not an admin key", body = ErrorBody), (status = 413, description = "The body is over the size limit", body = ErrorBody),
        (status = 409, description = "A hand-over is already under way", body = ErrorBody),
        (status = 503, description = "No voter caught up, the target could not be asked, or no new leader in time: retry", body = ErrorBody)),
    security(("api_key" = [])))]
async fn transfer_leader(
    State(app): State<App>,
    _caller: AdminCaller,
    JsonBody(req): JsonBody<TransferLeaderRequest>,
) -> Result<Json<TransferLeaderResponse>, ApiError> {
    if req.to == Some(0) {
        return Err(ApiError::bad_request("to", "must be a node id > 0"));
    }
    let t = app.rt().transfer_leadership(req.to).await?;
    tracing::info!(
        from = t.from,
        to = t.to,
        took_ms = t.took.as_millis() as u64,
        "leadership handed over on request"
    );
    Ok(Json(answer(t)))
}

#[utoipa::path(post, path = "/cluster/drain", tag = "cluster",
    responses(
        (status = 200, description = "This node is draining: it answers /readyz 503 until it restarts, no longer campaigns, and handed over leadership if it led (`transfer`)", body = DrainResponse),
        (status = 401, description = "No API key, or not a valid one", body = ErrorBody), (status = 403, description = "The key is not an admin key", body = ErrorBody),
        (status = 409, description = "A hand-over is already under way", body = ErrorBody),
        (status = 503, description = "It drains, but could not hand over leadership: retry", body = ErrorBody)),
    security(("api_key" = [])))]
async fn drain(
    State(app): State<App>,
    _caller: AdminCaller,
) -> Result<Json<DrainResponse>, ApiError> {
    let rt = app.rt();
    rt.start_draining();
    let transfer = if rt.leads_with_other_voters() {
        let t = rt.transfer_leadership(None).await?;
        tracing::info!(
            to = t.to,
            took_ms = t.took.as_millis() as u64,
            "leadership handed over for a drain"
        );
        Some(answer(t))
    } else {
        None
    };
    Ok(Json(DrainResponse {
        node_id: rt.node_id(),
        draining: true,
        transfer,
    }))
}

//! Cluster management (role admin): init, add a learner, change membership, status, trigger a
//! snapshot, and the state digest that tests compare across replicas.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::extract::State;
use axum::Json;
use openraft::{BasicNode, ServerState};
use sessync_proto::api::{
    AddLearnerRequest, BootstrapStatus, ChangeMembershipRequest, ClusterChangeResponse,
    ClusterStatus, InitRequest, MemberStatus,
};

use sessync_proto::ErrorBody;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AdminCaller;
use super::body::JsonBody;
use super::error::ApiError;
use super::state::App;
use crate::raft_types::NodeId;

/// How long adding a learner may take (it waits until the learner has caught up).
const LEARNER_TIMEOUT: Duration = Duration::from_secs(120);
/// The membership routes' paths (as their `#[utoipa::path]`s register them).
const LEARNERS_PATH: &str = "/cluster/learners";
const MEMBERSHIP_PATH: &str = "/cluster/membership";
/// How many request timeouts a membership change may take (a joint configuration: two
/// commits).
const MEMBERSHIP_TIMEOUTS: u32 = 4;

/// The deadline of a request to `path` when it is not `request_timeout`: membership changes
/// wait for a learner to catch up or for two commits, and are bounded by their own deadlines
/// (here, on the follower that forwards them, and in the API's one-deadline layer alike).
pub(super) fn own_deadline(path: &str, request_timeout: Duration) -> Option<Duration> {
    match path {
        LEARNERS_PATH => Some(LEARNER_TIMEOUT),
        MEMBERSHIP_PATH => Some(request_timeout * MEMBERSHIP_TIMEOUTS),
        _ => None,
    }
}

/// Membership changes: run on the leader.
pub(crate) fn write_routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(add_learner))
        .routes(routes!(change_membership))
}

/// Init (on any one node), status, snapshot and digest of this node.
pub(crate) fn read_routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(init))
        .routes(routes!(status))
        .routes(routes!(snapshot))
        .routes(routes!(digest))
}

fn check_url(app: &App, field: &str, url: &str) -> Result<String, ApiError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 512 {
        return Err(ApiError::bad_request(
            field,
            "must be an http:// or https:// URL of at most 512 bytes",
        ));
    }
    if app.tls() && !url.starts_with("https://") {
        return Err(ApiError::bad_request(
            field,
            "must be an https:// URL: this node serves TLS ([tls]), and so does every node of \
             its cluster",
        ));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[utoipa::path(post, path = "/cluster/init", tag = "cluster",
    request_body = InitRequest,
    responses(
        (status = 200, description = "The cluster is initialised with these voters", body = ClusterChangeResponse),
        (status = 400, description = "A field of the request is wrong; the error names it", body = ErrorBody), (status = 401, description = "No API key, or not a valid one", body = ErrorBody), (status = 403, description = "The key is not an admin key", body = ErrorBody), (status = 413, description = "The body is over the size limit", body = ErrorBody),
        (status = 409, description = "`already_initialized`", body = ErrorBody),
        (status = 503, description = "No leader or quorum, or the node busy: retry", body = ErrorBody)),
    security(("api_key" = [])))]
async fn init(
    State(app): State<App>,
    _caller: AdminCaller,
    JsonBody(req): JsonBody<InitRequest>,
) -> Result<Json<ClusterChangeResponse>, ApiError> {
    if req.members.is_empty() {
        return Err(ApiError::bad_request(
            "members",
            "must name at least one node",
        ));
    }
    let mut members = BTreeMap::new();
    for (id, url) in &req.members {
        let field = format!("members.{id}");
        let node_id: NodeId = id
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ApiError::bad_request(&field, "the key must be a node id > 0"))?;
        members.insert(node_id, check_url(&app, &field, url)?);
    }
    if !members.contains_key(&app.rt().node_id()) {
        return Err(ApiError::bad_request(
            "members",
            format!("must include this node (id {})", app.rt().node_id()),
        ));
    }
    app.rt().initialize(members).await?;
    Ok(Json(ClusterChangeResponse {
        ok: true,
        log_index: None,
    }))
}

#[utoipa::path(post, path = "/cluster/learners", tag = "cluster",
    request_body = AddLearnerRequest,
    responses(
        (status = 200, description = "The node is a learner and has caught up", body = ClusterChangeResponse),
        (status = 400, description = "A field of the request is wrong; the error names it", body = ErrorBody), (status = 401, description = "No API key, or not a valid one", body = ErrorBody), (status = 403, description = "The key is not an admin key", body = ErrorBody), (status = 413, description = "The body is over the size limit", body = ErrorBody), (status = 503, description = "No leader or quorum, or the node busy: retry", body = ErrorBody)),
    security(("api_key" = [])))]
async fn add_learner(
    State(app): State<App>,
    _caller: AdminCaller,
    JsonBody(req): JsonBody<AddLearnerRequest>,
) -> Result<Json<ClusterChangeResponse>, ApiError> {
    if req.node_id == 0 {
        return Err(ApiError::bad_request("node_id", "must be > 0"));
    }
    let url = check_url(&app, "url", &req.url)?;
    let fut = app
        .rt()
        .raft()
        .add_learner(req.node_id, BasicNode::new(url), true);
    match tokio::time::timeout(LEARNER_TIMEOUT, fut).await {
        Err(_) => Err(ApiError::unavailable(
            "the learner did not catch up in time",
        )),
        Ok(Ok(r)) => Ok(Json(ClusterChangeResponse {
            ok: true,
            log_index: Some(r.log_id.index),
        })),
        Ok(Err(e)) => Err(ApiError::conflict(format!("cannot add learner: {e}"))),
    }
}

#[utoipa::path(post, path = "/cluster/membership", tag = "cluster",
    request_body = ChangeMembershipRequest,
    responses(
        (status = 200, description = "The voters are these nodes", body = ClusterChangeResponse),
        (status = 400, description = "A field of the request is wrong; the error names it", body = ErrorBody), (status = 401, description = "No API key, or not a valid one", body = ErrorBody), (status = 403, description = "The key is not an admin key", body = ErrorBody), (status = 413, description = "The body is over the size limit", body = ErrorBody), (status = 503, description = "No leader or quorum, or the node busy: retry", body = ErrorBody)),
    security(("api_key" = [])))]
async fn change_membership(
    State(app): State<App>,
    _caller: AdminCaller,
    JsonBody(req): JsonBody<ChangeMembershipRequest>,
) -> Result<Json<ClusterChangeResponse>, ApiError> {
    if req.voters.is_empty() {
        return Err(ApiError::bad_request(
            "voters",
            "must name at least one node",
        ));
    }
    let voters: BTreeSet<NodeId> = req.voters.iter().copied().collect();
    let fut = app.rt().raft().change_membership(voters, req.retain);
    match tokio::time::timeout(app.rt().request_timeout() * MEMBERSHIP_TIMEOUTS, fut).await {
        Err(_) => Err(ApiError::unavailable(
            "the membership change was not committed in time",
        )),
        Ok(Ok(r)) => Ok(Json(ClusterChangeResponse {
            ok: true,
            log_index: Some(r.log_id.index),
        })),
        Ok(Err(e)) => Err(ApiError::conflict(format!("cannot change membership: {e}"))),
    }
}

#[utoipa::path(get, path = "/cluster/status", tag = "cluster",
    responses(
        (status = 200, description = "This node's view of the cluster", body = ClusterStatus),
        (status = 401, description = "No API key, or not a valid one", body = ErrorBody), (status = 403, description = "The key is not an admin key", body = ErrorBody)),
    security(("api_key" = [])))]
async fn status(State(app): State<App>, _caller: AdminCaller) -> Json<ClusterStatus> {
    let m = app.rt().raft().metrics().borrow().clone();
    let membership = m.membership_config.membership();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let matched = m.replication.clone().unwrap_or_default();
    let members = membership
        .nodes()
        .map(|(id, node)| MemberStatus {
            node_id: *id,
            url: node.addr.clone(),
            voter: voters.contains(id),
            matched_index: matched.get(id).and_then(|l| l.map(|l| l.index)),
        })
        .collect();
    let role = match m.state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    };
    let readiness = app.rt().readiness();
    Json(ClusterStatus {
        node_id: app.rt().node_id(),
        site: app.rt().site().clone(),
        cluster_id: app.rt().identity().get().map(|id| id.to_string()),
        role: role.to_owned(),
        initialized: !voters.is_empty(),
        leader: m.current_leader,
        leader_url: app.rt().leader().map(|(_, u)| u),
        term: m.current_term,
        last_log_index: m.last_log_index,
        last_applied: m.last_applied.map(|l| l.index),
        snapshot_index: m.snapshot.map(|l| l.index),
        members,
        policy_file_differs: app.rt().policy_file_differs(),
        not_ready: readiness.reasons.iter().map(|r| (*r).to_owned()).collect(),
        clock_offset_ms: readiness.clock.deviation_ms,
        clock_skewed: readiness.clock.skewed,
        membership_index: app.rt().membership_index(),
        bootstrap: app
            .rt()
            .bootstrap_progress()
            .filter(|_| voters.is_empty())
            .map(|p| BootstrapStatus {
                expected: p.expected,
                answered: p.answered,
                state: p.state.as_str().to_owned(),
            }),
        version: crate::build_info::VERSION.to_owned(),
        build: crate::build_info::BUILD.to_owned(),
        draining: app.rt().is_draining(),
    })
}

#[utoipa::path(post, path = "/cluster/snapshot", tag = "cluster",
    responses(
        (status = 200, description = "A snapshot of this node's state was started", body = ClusterChangeResponse),
        (status = 401, description = "No API key, or not a valid one", body = ErrorBody), (status = 403, description = "The key is not an admin key", body = ErrorBody), (status = 503, description = "No leader or quorum, or the node busy: retry", body = ErrorBody)),
    security(("api_key" = [])))]
async fn snapshot(
    State(app): State<App>,
    _caller: AdminCaller,
) -> Result<Json<ClusterChangeResponse>, ApiError> {
    app.rt()
        .raft()
        .trigger()
        .snapshot()
        .await
        .map_err(|e| ApiError::unavailable(format!("cannot trigger a snapshot: {e}")))?;
    Ok(Json(ClusterChangeResponse {
        ok: true,
        log_index: None,
    }))
}

#[utoipa::path(get, path = "/cluster/digest", tag = "cluster",
    responses(
        (status = 200, description = "`{applied, digest, content_digest}`: this replica's applied index, the SHA-256 of its state, and of its content (what a backup's digest covers: no applied id or membership)", body = Object),
        (status = 401, description = "No API key, or not a valid one", body = ErrorBody), (status = 403, description = "The key is not an admin key", body = ErrorBody),
        (status = 500, description = "The state could not be read", body = ErrorBody)),
    security(("api_key" = [])))]
async fn digest(
    State(app): State<App>,
    _caller: AdminCaller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let d = app
        .rt()
        .state()
        .digest()
        .map_err(|e| ApiError::from_read("the state", e))?;
    Ok(Json(serde_json::json!({
        "applied": d.applied,
        "digest": d.digest,
        "content_digest": d.content,
    })))
}

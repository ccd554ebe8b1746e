//! Linearizable reads on any node, by read index.
//!
//! On the leader, openraft's `get_read_log_id` confirms leadership with a quorum and names the
//! log index a read must see. A follower asks the leader for that index over a signed internal
//! RPC (`POST /raft/read-index`), waits until its own replica has applied it, and then reads
//! locally. The leader's clock at that moment comes back too, so time-based checks (idle and
//! lifetime ends) use cluster time, not the follower's clock.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sessync_proto::Timestamp;

use crate::api::{ApiError, App};
use crate::network::client::post_signed;

/// Path of the internal read-index RPC.
pub const READ_INDEX_PATH: &str = "/raft/read-index";

/// The leader's answer: the index a linearizable read must see, and the leader's cluster time.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReadIndex {
    pub index: Option<u64>,
    pub now: Timestamp,
}

/// The route the leader serves.
pub fn routes() -> Router<App> {
    Router::new().route(READ_INDEX_PATH, post(serve))
}

async fn serve(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = crate::network::server::check_proof(&app, READ_INDEX_PATH, &headers, &body) {
        return r;
    }
    match app.raft().get_read_log_id().await {
        Ok((read, _applied)) => Json(ReadIndex {
            index: read.map(|l| l.index),
            now: app.cluster_now(),
        })
        .into_response(),
        Err(e) => {
            ApiError::unavailable(format!("not the leader or no quorum: {e}")).into_response()
        }
    }
}

/// Confirms a read index with the leader (or as the leader) and waits until this replica has
/// applied it. Returns the leader's cluster time.
pub async fn linearize(app: &App) -> Result<Timestamp, ApiError> {
    if app.is_leader() {
        if let Ok((read, applied)) = app.raft().get_read_log_id().await {
            let now = app.cluster_now();
            wait_applied(app, read.map(|l| l.index), applied.map(|l| l.index)).await?;
            return Ok(now);
        }
        // Leadership was lost in between: fall through and ask whoever leads now.
    }
    let Some((leader_id, url)) = app.leader() else {
        return Err(ApiError::unavailable(
            "no leader is elected right now; retry",
        ));
    };
    if leader_id == app.node_id() {
        return Err(ApiError::unavailable(
            "this node is stepping down as leader; retry",
        ));
    }
    let resp = post_signed(
        app.http(),
        app.cluster_secret(),
        &url,
        READ_INDEX_PATH,
        b"{}".to_vec(),
        app.request_timeout(),
    )
    .await
    .map_err(|e| {
        ApiError::unavailable(format!("cannot reach the leader (node {leader_id}): {e}"))
    })?;
    if !resp.status().is_success() {
        return Err(ApiError::unavailable(format!(
            "the leader (node {leader_id}) could not confirm a read: status {}",
            resp.status()
        )));
    }
    let ri: ReadIndex = resp.json().await.map_err(|e| {
        ApiError::unavailable(format!("bad read-index answer from node {leader_id}: {e}"))
    })?;
    let applied = app.raft().metrics().borrow().last_applied.map(|l| l.index);
    wait_applied(app, ri.index, applied).await?;
    Ok(ri.now.max(app.state().read(|s| s.clock())))
}

async fn wait_applied(app: &App, want: Option<u64>, applied: Option<u64>) -> Result<(), ApiError> {
    if want <= applied {
        return Ok(());
    }
    app.raft()
        .wait(Some(app.request_timeout().max(Duration::from_millis(100))))
        .applied_index_at_least(want, "linearizable read")
        .await
        .map(|_| ())
        .map_err(|e| ApiError::unavailable(format!("this replica did not catch up in time: {e}")))
}

//! `GET /v1/backup` (role admin): a consistent backup of the cluster's state, taken on this
//! node while it serves.
//!
//! The replica is first made current (a linearizable read: it has applied every change
//! acknowledged before the request), then the state is written from a point-in-time view
//! (`store::backup`, no write waits for it) and streamed: the header line
//! ([`sessync_proto::backup`]: cluster, index, term, cluster time, content digest, length,
//! SHA-256), then the snapshot. One backup is taken at a time per node.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use sessync_proto::backup::{BackupHeader, FORMAT, KIND, MEDIA_TYPE};
use sessync_proto::ErrorBody;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AdminCaller;
use super::error::ApiError;
use super::state::App;

/// The route's path (as its `#[utoipa::path]` registers it).
const BACKUP_PATH: &str = "/v1/backup";

/// How long writing a backup may take before its answer starts (about 30 s for a million
/// sessions on a small machine).
const BACKUP_TIMEOUT: Duration = Duration::from_secs(600);

/// The deadline of a request to `path` when it is not `request_timeout`.
pub(super) fn own_deadline(path: &str) -> Option<Duration> {
    (path == BACKUP_PATH).then_some(BACKUP_TIMEOUT)
}

pub(crate) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(backup))
}

#[utoipa::path(get, path = "/v1/backup", tag = "cluster",
    responses(
        (status = 200, description = "The backup: a JSON header line (`BackupHeader`), then the snapshot it describes", content_type = "application/vnd.sessync.backup", body = BackupHeader),
        (status = 401, description = "No API key, or not a valid one", body = ErrorBody), (status = 403, description = "The key is not an admin key", body = ErrorBody),
        (status = 409, description = "`conflict`: a backup is being taken on this node already, or the cluster has applied nothing yet", body = ErrorBody),
        (status = 503, description = "No leader or quorum to make the replica current: retry", body = ErrorBody)),
    security(("api_key" = [])))]
async fn backup(State(app): State<App>, _caller: AdminCaller) -> Result<Response, ApiError> {
    let Some(_one_at_a_time) = app.backup_slot() else {
        return Err(ApiError::conflict(
            "a backup is being taken on this node already; retry when it is done",
        ));
    };
    app.linearize().await?;
    let Some(cluster_id) = app.rt().identity().get() else {
        return Err(ApiError::conflict(
            "this node is in no cluster yet: there is nothing to back up",
        ));
    };
    let reader = app.rt().state().clone();
    let taken = tokio::task::spawn_blocking(move || reader.backup())
        .await
        .map_err(|e| ApiError::internal(format!("the backup failed: {e}")))?
        .map_err(|e| ApiError::from_read("the state", e))?;
    let head = BackupHeader {
        kind: KIND.to_owned(),
        format: FORMAT,
        cluster_id: cluster_id.to_string(),
        site: app.rt().site().clone(),
        node_id: app.rt().node_id(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        index: taken.index,
        term: taken.term,
        cluster_time: taken.cluster_time,
        digest: taken.digest,
        snapshot_bytes: taken.bytes,
        sha256: taken.sha256,
    };
    tracing::info!(
        index = head.index,
        bytes = head.snapshot_bytes,
        "backup taken; streaming it"
    );
    let line = head.line();
    let length = line.len() as u64 + head.snapshot_bytes;
    let snapshot = chunks(tokio::fs::File::from_std(taken.file));
    let body = futures::stream::once(async move { Ok(Bytes::from(line)) }).chain(snapshot);
    Ok((
        [
            (header::CONTENT_TYPE, MEDIA_TYPE.to_owned()),
            (header::CONTENT_LENGTH, length.to_string()),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// The file's bytes, a chunk at a time.
fn chunks(
    file: tokio::fs::File,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    use tokio::io::AsyncReadExt;
    futures::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; 256 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

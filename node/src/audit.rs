//! Getting node-local events (auth failures) into the replicated audit log.
//!
//! Handlers report events without waiting; a task batches them and, on the leader, proposes one
//! `RecordAudit` entry per batch, or on a follower sends the batch to the leader over a signed
//! internal RPC. The queue is bounded: under a flood, extra events are counted, not stored, and
//! one summary event says how many were dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use sessync_proto::{Timestamp, UserId};
use tokio::sync::mpsc;

use crate::api::{ApiError, App};
use crate::metrics::Metrics;
use crate::network::client::post_signed;
use crate::raft_types::{NodeId, Raft};
use crate::session::{AuditNote, Command};

/// Path of the internal RPC that carries a follower's audit events to the leader.
pub const AUDIT_PATH: &str = "/raft/audit";
/// Most events one entry carries.
const MAX_BATCH: usize = 100;
/// Events waiting at most.
const QUEUE: usize = 1000;
/// How often a batch goes out (so at most MAX_BATCH events per interval per node).
const INTERVAL: Duration = Duration::from_millis(500);

/// Reports audit events without blocking; cheap to clone.
#[derive(Clone)]
pub struct AuditReporter {
    tx: mpsc::Sender<AuditNote>,
    dropped: Arc<AtomicU64>,
    metrics: Metrics,
}

impl AuditReporter {
    pub fn spawn(
        raft: Raft,
        node_id: NodeId,
        secret: Vec<u8>,
        http: reqwest::Client,
        metrics: Metrics,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(rx, dropped.clone(), raft, node_id, secret, http));
        Self {
            tx,
            dropped,
            metrics,
        }
    }

    /// Queues an event; drops it (counted) if the queue is full.
    pub fn report(&self, kind: &str, user_id: Option<UserId>, detail: serde_json::Value) {
        let note = AuditNote {
            at: Timestamp::now(),
            kind: kind.to_owned(),
            user_id,
            session_id: None,
            detail,
        };
        if self.tx.try_send(note).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.metrics.audit_dropped.inc();
        }
    }
}

async fn run(
    mut rx: mpsc::Receiver<AuditNote>,
    dropped: Arc<AtomicU64>,
    raft: Raft,
    node_id: NodeId,
    secret: Vec<u8>,
    http: reqwest::Client,
) {
    while let Some(first) = rx.recv().await {
        tokio::time::sleep(INTERVAL).await;
        let mut notes = vec![first];
        while notes.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(n) => notes.push(n),
                Err(_) => break,
            }
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            notes.push(AuditNote {
                at: Timestamp::now(),
                kind: "audit_dropped".to_owned(),
                user_id: None,
                session_id: None,
                detail: json!({ "count": lost, "node": node_id }),
            });
        }
        if let Err(e) = deliver(&raft, node_id, &secret, &http, notes).await {
            tracing::warn!(error = %e, "could not record audit events");
        }
    }
}

async fn deliver(
    raft: &Raft,
    node_id: NodeId,
    secret: &[u8],
    http: &reqwest::Client,
    notes: Vec<AuditNote>,
) -> Result<(), String> {
    let m = raft.metrics().borrow().clone();
    let Some(leader) = m.current_leader else {
        return Err("no leader".to_owned());
    };
    if leader == node_id {
        let cmd = Command::RecordAudit {
            at: Timestamp::now(),
            notes,
        };
        return raft
            .client_write(cmd)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
    }
    let Some(url) = m
        .membership_config
        .membership()
        .get_node(&leader)
        .map(|n| n.addr.clone())
    else {
        return Err("leader address unknown".to_owned());
    };
    let body = serde_json::to_vec(&notes).map_err(|e| e.to_string())?;
    let resp = post_signed(http, secret, &url, AUDIT_PATH, body, Duration::from_secs(5))
        .await
        .map_err(|e| e.to_string())?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("leader answered {}", resp.status()))
    }
}

/// The leader's side of [`AUDIT_PATH`].
pub fn routes() -> Router<App> {
    Router::new().route(AUDIT_PATH, post(receive))
}

async fn receive(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = crate::network::server::check_proof(&app, AUDIT_PATH, &headers, &body) {
        return r;
    }
    let mut notes: Vec<AuditNote> = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => {
            return ApiError::bad_request("body", format!("is not a list of audit events: {e}"))
                .into_response()
        }
    };
    notes.truncate(MAX_BATCH + 1);
    let cmd = Command::RecordAudit {
        at: app.cluster_now(),
        notes,
    };
    match app.propose(cmd).await {
        Ok(_) => Json(json!({ "ok": true })).into_response(),
        Err(e) => e.into_response(),
    }
}

//! Getting node-local events (auth failures, delivery retries) into the replicated audit log.
//!
//! Handlers report events without waiting; a task batches them and, on the leader, proposes one
//! `RecordAudit` entry per batch, or on a follower sends the batch to the leader over a signed
//! internal RPC ([`sessync_proto::wire::AUDIT_PATH`], served by the HTTP layer). The queue is
//! bounded: under a flood, extra events are counted, not stored, and one summary event says
//! how many were dropped.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sessync_proto::wire::AUDIT_PATH;
use sessync_proto::{Timestamp, UserId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::runtime::{Runtime, RuntimeError};
use crate::session::{AuditNote, Command, RecordAudit};

/// Most events one entry carries.
pub(crate) const MAX_BATCH: usize = 100;
/// Events waiting at most.
const QUEUE: usize = 1000;
/// How often a batch goes out (so at most MAX_BATCH events per interval per node).
const INTERVAL: Duration = Duration::from_millis(500);
/// How long handing a batch to the leader may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Reports audit events without blocking; cheap to clone.
#[derive(Clone)]
pub(crate) struct AuditReporter {
    tx: mpsc::Sender<AuditNote>,
    dropped: Arc<AtomicU64>,
    metrics: Metrics,
}

impl AuditReporter {
    /// The reporter and the task that delivers its batches (to be run until `stop`).
    pub(crate) fn new(
        rt: Runtime,
        metrics: Metrics,
        stop: CancellationToken,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let task = run(rx, dropped.clone(), rt, stop);
        (
            Self {
                tx,
                dropped,
                metrics,
            },
            task,
        )
    }

    /// Queues an event; drops it (counted) if the queue is full.
    pub(crate) fn report(&self, kind: &str, user_id: Option<UserId>, detail: serde_json::Value) {
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
    rt: Runtime,
    stop: CancellationToken,
) {
    while let Some(Some(first)) = stop.run_until_cancelled(rx.recv()).await {
        if stop
            .run_until_cancelled(tokio::time::sleep(INTERVAL))
            .await
            .is_none()
        {
            return;
        }
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
                detail: json!({ "count": lost, "node": rt.node_id() }),
            });
        }
        if let Err(e) = deliver(&rt, notes).await {
            tracing::warn!(error = %e, "could not record audit events");
        }
    }
}

/// Records `notes` through Raft on the leader, or hands them to the leader.
async fn deliver(rt: &Runtime, notes: Vec<AuditNote>) -> Result<(), RuntimeError> {
    if rt.is_leader() {
        let cmd = Command::RecordAudit(RecordAudit {
            at: rt.cluster_now(),
            notes,
        });
        return rt.propose(cmd).await.map(|_| ());
    }
    let body = serde_json::to_vec(&notes).map_err(|e| RuntimeError::Raft(e.to_string()))?;
    rt.ask_leader::<serde_json::Value>(AUDIT_PATH, body, DELIVERY_TIMEOUT)
        .await
        .map(|_| ())
}

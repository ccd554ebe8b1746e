//! Touch coalescing on the leader: touches that need replicating are queued, and everything
//! queued while one write is in flight goes out together as a single `Touch` entry.

use std::collections::BTreeSet;
use std::time::Duration;

use sessync_proto::{SessionId, Timestamp};
use tokio::sync::{mpsc, oneshot};

use crate::api::ApiError;
use crate::metrics::Metrics;
use crate::raft_types::Raft;
use crate::session::Command;
use crate::store::StateReader;

/// Most sessions one `Touch` entry carries.
const MAX_BATCH: usize = 1000;
/// How long a touch may wait for its batch to commit.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

type Waiter = oneshot::Sender<Result<(), String>>;

/// Queues touches for replication; cheap to clone.
#[derive(Clone)]
pub struct TouchBatcher {
    tx: mpsc::Sender<(SessionId, Waiter)>,
}

impl TouchBatcher {
    /// Starts the batching task.
    pub fn spawn(raft: Raft, state: StateReader, metrics: Metrics) -> Self {
        let (tx, rx) = mpsc::channel(16 * MAX_BATCH);
        tokio::spawn(run(rx, raft, state, metrics));
        Self { tx }
    }

    /// Replicates a touch of `id`, returning once it is applied.
    pub async fn touch(&self, id: SessionId) -> Result<(), ApiError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send((id, done))
            .await
            .map_err(|_| ApiError::unavailable("the node is shutting down"))?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ApiError::unavailable(format!(
                "the touch was not replicated: {e}"
            ))),
            Err(_) => Err(ApiError::unavailable("the node is shutting down")),
        }
    }
}

async fn run(
    mut rx: mpsc::Receiver<(SessionId, Waiter)>,
    raft: Raft,
    state: StateReader,
    metrics: Metrics,
) {
    while let Some(first) = rx.recv().await {
        let mut ids = BTreeSet::from([first.0]);
        let mut waiters = vec![first.1];
        while ids.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((id, w)) => {
                    ids.insert(id);
                    waiters.push(w);
                }
                Err(_) => break,
            }
        }
        let at = Timestamp::now().max(state.read(|s| s.clock()));
        let n = ids.len();
        let cmd = Command::Touch {
            at,
            session_ids: ids.into_iter().collect(),
        };
        let res = match tokio::time::timeout(COMMIT_TIMEOUT, raft.client_write(cmd)).await {
            Ok(Ok(_)) => {
                metrics.touch_batches.inc();
                metrics.touches_replicated.inc_by(n as u64);
                Ok(())
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no quorum within 5s".to_owned()),
        };
        for w in waiters {
            let _ = w.send(res.clone());
        }
    }
}

//! Touch coalescing on the leader: touches that need replicating are queued, and everything
//! queued while one write is in flight goes out together as a single `Touch` entry. Each touch
//! keeps the cluster time at which the leader accepted it, so a batch applied a moment later
//! still extends a session that was valid when it was touched.

use std::collections::BTreeMap;
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

type Waiter = oneshot::Sender<Result<(), String>>;

/// Queues touches for replication; cheap to clone.
#[derive(Clone)]
pub struct TouchBatcher {
    tx: mpsc::Sender<(SessionId, Timestamp, Waiter)>,
    deadline: Duration,
}

impl TouchBatcher {
    /// Starts the batching task; `deadline` bounds each touch from queueing to commit.
    pub fn spawn(raft: Raft, state: StateReader, metrics: Metrics, deadline: Duration) -> Self {
        let (tx, rx) = mpsc::channel(16 * MAX_BATCH);
        tokio::spawn(run(rx, raft, state, metrics, deadline));
        Self { tx, deadline }
    }

    /// Replicates a touch of `id` accepted at cluster time `at`, returning once it is applied.
    pub async fn touch(&self, id: SessionId, at: Timestamp) -> Result<(), ApiError> {
        let (done, wait) = oneshot::channel();
        let queued = async {
            self.tx
                .send((id, at, done))
                .await
                .map_err(|_| ApiError::unavailable("the node is shutting down"))?;
            match wait.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(ApiError::unavailable(format!(
                    "the touch was not replicated: {e}"
                ))),
                Err(_) => Err(ApiError::unavailable("the node is shutting down")),
            }
        };
        tokio::time::timeout(self.deadline, queued)
            .await
            .unwrap_or_else(|_| {
                Err(ApiError::unavailable(
                    "no quorum: the touch was not replicated in time",
                ))
            })
    }
}

async fn run(
    mut rx: mpsc::Receiver<(SessionId, Timestamp, Waiter)>,
    raft: Raft,
    state: StateReader,
    metrics: Metrics,
    deadline: Duration,
) {
    while let Some((id, at, w)) = rx.recv().await {
        let mut touches = BTreeMap::from([(id, at)]);
        let mut waiters = vec![w];
        while touches.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((id, at, w)) => {
                    let t = touches.entry(id).or_insert(at);
                    *t = (*t).max(at);
                    waiters.push(w);
                }
                Err(_) => break,
            }
        }
        let n = touches.len();
        let cmd = Command::Touch {
            at: Timestamp::now().max(state.read(|s| s.clock())),
            touches: touches.into_iter().collect(),
        };
        let res = match tokio::time::timeout(deadline, raft.client_write(cmd)).await {
            Ok(Ok(_)) => {
                metrics.touch_batches.inc();
                metrics.touches_replicated.inc_by(n as u64);
                Ok(())
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no quorum in time".to_owned()),
        };
        for w in waiters {
            let _ = w.send(res.clone());
        }
    }
}

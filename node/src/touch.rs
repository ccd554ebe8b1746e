//! Touch coalescing on the leader: touches that need replicating are queued, and everything
//! queued while one write is in flight goes out together as a single `Touch` entry. Each touch
//! keeps the cluster time at which the leader accepted it, so a batch applied a moment later
//! still extends a session that was valid when it was touched.

use std::collections::BTreeMap;
use std::future::Future;

use sessync_proto::{SessionId, Timestamp};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::runtime::{Runtime, RuntimeError};
use crate::session::{Command, Touch};

/// Most sessions one `Touch` entry carries.
const MAX_BATCH: usize = 1000;

/// How a queued touch ended: a clone of the batch's result for each waiter.
type Waiter = oneshot::Sender<Result<(), RuntimeError>>;

/// Queues touches for replication; cheap to clone.
#[derive(Clone)]
pub(crate) struct TouchBatcher {
    tx: mpsc::Sender<(SessionId, Timestamp, Waiter)>,
    rt: Runtime,
}

impl TouchBatcher {
    /// The batcher and the task that proposes its batches (to be run until `stop`).
    pub(crate) fn new(
        rt: Runtime,
        metrics: Metrics,
        stop: CancellationToken,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (tx, rx) = mpsc::channel(16 * MAX_BATCH);
        let task = run(rx, rt.clone(), metrics, stop);
        (Self { tx, rt }, task)
    }

    /// Replicates a touch of `id` accepted at cluster time `at`, returning once it is applied;
    /// bounded by the request deadline from queueing to commit.
    pub(crate) async fn touch(&self, id: SessionId, at: Timestamp) -> Result<(), RuntimeError> {
        let waited = self.rt.request_timeout();
        let (done, wait) = oneshot::channel();
        let queued = async {
            self.tx
                .send((id, at, done))
                .await
                .map_err(|_| RuntimeError::ShuttingDown)?;
            wait.await.unwrap_or(Err(RuntimeError::ShuttingDown))
        };
        tokio::time::timeout(waited, queued)
            .await
            .unwrap_or(Err(RuntimeError::NoQuorum {
                what: "the touch was not replicated",
                waited,
            }))
    }
}

async fn run(
    mut rx: mpsc::Receiver<(SessionId, Timestamp, Waiter)>,
    rt: Runtime,
    metrics: Metrics,
    stop: CancellationToken,
) {
    while let Some(Some((id, at, w))) = stop.run_until_cancelled(rx.recv()).await {
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
        let cmd = Command::Touch(Touch {
            at: rt.cluster_now(),
            touches: touches.into_iter().collect(),
        });
        let res = match rt.propose(cmd).await {
            Ok(_) => {
                metrics.touch_batches.inc();
                metrics.touches_replicated.inc_by(n as u64);
                Ok(())
            }
            Err(e) => Err(e),
        };
        for w in waiters {
            let _ = w.send(res.clone());
        }
    }
}

//! Touch coalescing on the leader: touches that need replicating are queued, and everything
//! queued while one write is in flight goes out together as a single `Touch` entry. Each touch
//! is stamped with the cluster time at which the batcher took it, and counts (in the state
//! machine) only if the session was valid then.
//!
//! Ended is final, for every reader: a linearizable read on the leader (and the read index a
//! follower asks for) first passes a [`TouchBatcher::barrier`] through the same queue, so it
//! sees every touch taken before it applied. A reader that judged a session ended at time `t`
//! therefore came before any touch stamped after `t`, and such a touch does not count (the
//! session was not valid at its stamp): no touch committed late brings a session back. The
//! leader's expiry sweep passes the barrier too, so a touch taken before a deadline is applied
//! before the sweep that would end the session.

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

/// How a queued touch ended: the batch's result and the touch's stamp, for each waiter.
type Waiter = oneshot::Sender<Result<Timestamp, RuntimeError>>;

/// What the queue carries: a touch of a session, or a barrier that completes once every touch
/// queued before it is applied.
enum Queued {
    Touch(SessionId, Waiter),
    Barrier(Waiter),
}

/// Queues touches for replication; cheap to clone.
#[derive(Clone)]
pub(crate) struct TouchBatcher {
    tx: mpsc::Sender<Queued>,
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

    /// Replicates a touch of `id`, returning once it is applied with the cluster time it was
    /// stamped with (it counted if the session was valid then); bounded by the request
    /// deadline from queueing to commit.
    pub(crate) async fn touch(&self, id: SessionId) -> Result<Timestamp, RuntimeError> {
        self.send(|w| Queued::Touch(id, w), "the touch was not replicated")
            .await
    }

    /// Completes once every touch queued before it is applied (at once when none is pending),
    /// with the cluster time at which the batcher took it: a read judged at that time is
    /// consistent with every touch (those stamped earlier are applied, those stamped later do
    /// not count for a session already past its deadline then).
    pub(crate) async fn barrier(&self) -> Result<Timestamp, RuntimeError> {
        self.send(
            Queued::Barrier,
            "touches queued before this read were not replicated",
        )
        .await
    }

    async fn send(
        &self,
        msg: impl FnOnce(Waiter) -> Queued,
        what: &'static str,
    ) -> Result<Timestamp, RuntimeError> {
        let waited = self.rt.request_timeout();
        let (done, wait) = oneshot::channel();
        let queued = async {
            self.tx
                .send(msg(done))
                .await
                .map_err(|_| RuntimeError::ShuttingDown)?;
            wait.await.unwrap_or(Err(RuntimeError::ShuttingDown))
        };
        tokio::time::timeout(waited, queued)
            .await
            .unwrap_or(Err(RuntimeError::NoQuorum { what, waited }))
    }
}

async fn run(
    mut rx: mpsc::Receiver<Queued>,
    rt: Runtime,
    metrics: Metrics,
    stop: CancellationToken,
) {
    while let Some(Some(first)) = stop.run_until_cancelled(rx.recv()).await {
        // Everything queued now goes in one entry; each touch is stamped as it is taken, so
        // no reader that passed a barrier before it judged at a later time.
        let mut touches: BTreeMap<SessionId, Timestamp> = BTreeMap::new();
        let mut waiters: Vec<(Waiter, Timestamp)> = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            let taken = rt.cluster_now();
            match msg {
                Queued::Touch(id, w) => {
                    touches.insert(id, taken);
                    waiters.push((w, taken));
                }
                Queued::Barrier(w) => waiters.push((w, taken)),
            }
            if touches.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        let res = if touches.is_empty() {
            // Only barriers: nothing queued before them is pending.
            Ok(())
        } else {
            let n = touches.len();
            let cmd = Command::Touch(Touch {
                at: rt.cluster_now(),
                touches: touches.into_iter().collect(),
            });
            rt.propose(cmd).await.map(|_| {
                metrics.touch_batches.inc();
                metrics.touches_replicated.inc_by(n as u64);
            })
        };
        for (w, taken) in waiters {
            let _ = w.send(res.clone().map(|()| taken));
        }
    }
}

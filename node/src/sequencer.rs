//! The leader's sequencer: touches, read barriers, policy changes and the expiry sweep pass
//! through one queue, in one order. Touches that need replicating are queued, and everything
//! queued while one write is in flight goes out together as a single `Touch` entry. Each touch
//! is stamped with the cluster time at which the batcher took it, and counts (in the state
//! machine) only if the session was valid then.
//!
//! Ended is final, for every reader: a linearizable read on the leader (and the read index a
//! follower asks for) passes a [`Sequencer::barrier`] through the same queue once its read
//! index is confirmed, so it sees every touch taken before it applied, and is judged at the
//! time the queue took the barrier. A reader that judged a session ended at time `t` therefore
//! came before any touch stamped after `t`, and such a touch does not count (the session was
//! not valid at its stamp): no touch committed late brings a session back. The leader's expiry
//! sweep passes the barrier too, so a touch taken before a deadline is applied before the sweep
//! that would end the session.
//!
//! A policy change ([`Sequencer::set_policy`]) goes through the same queue, alone in its
//! round, for the same reason: it is stamped when taken and applied before any later barrier
//! completes, so a reader judged under the old policy at `t` came before a change stamped after
//! `t`, and that change first ends every session the old policy had ended by its stamp. A
//! longer `idle_timeout` or `max_lifetime` therefore never revives a session some reader saw
//! ended. Changes are merged with the replicated policy when taken, one at a time, so two
//! concurrent changes of different keys both take effect.

use std::collections::BTreeMap;
use std::future::Future;

use sessync_proto::{FieldError, Policy, PolicyUpdate, SessionId, Timestamp};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::runtime::{Runtime, RuntimeError};
use crate::session::{Command, SetPolicy, Touch};

/// Most sessions one `Touch` entry carries.
const MAX_BATCH: usize = 1000;

/// How a queued touch ended: the batch's result and the touch's stamp, for each waiter.
type Waiter = oneshot::Sender<Result<Timestamp, RuntimeError>>;

/// How a queued policy change ended: refused as it stood against the replicated policy, or the
/// policy replicated.
type PolicyWaiter = oneshot::Sender<Result<Result<Policy, FieldError>, RuntimeError>>;

/// What the queue carries: a touch of a session, a barrier that completes once every touch
/// queued before it is applied, or a policy change (by the named key).
enum Queued {
    Touch(SessionId, Waiter),
    Barrier(Waiter),
    Policy(PolicyUpdate, String, PolicyWaiter),
}

/// Queues touches for replication; cheap to clone.
#[derive(Clone)]
pub(crate) struct Sequencer {
    tx: mpsc::Sender<Queued>,
    rt: Runtime,
}

impl Sequencer {
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

    /// Replaces the keys `update` names in the replicated policy (the change audited as made by
    /// the key `by`), stamped and ordered with touches and reads (see the module's header).
    /// `Ok(Err(_))`: the policy that would result is refused, naming the field.
    pub(crate) async fn set_policy(
        &self,
        update: PolicyUpdate,
        by: String,
    ) -> Result<Result<Policy, FieldError>, RuntimeError> {
        self.send(
            |w| Queued::Policy(update, by, w),
            "the policy change was not replicated",
        )
        .await
    }

    async fn send<T>(
        &self,
        msg: impl FnOnce(oneshot::Sender<Result<T, RuntimeError>>) -> Queued,
        what: &'static str,
    ) -> Result<T, RuntimeError> {
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
    // A policy change taken while touches or barriers were being gathered: the next round's.
    let mut held: Option<Queued> = None;
    loop {
        let first = match held.take() {
            Some(msg) => msg,
            None => match stop.run_until_cancelled(rx.recv()).await {
                Some(Some(msg)) => msg,
                _ => return,
            },
        };
        if let Queued::Policy(update, by, w) = first {
            let _ = w.send(change_policy(&rt, &update, by).await);
            continue;
        }
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
                policy @ Queued::Policy(..) => {
                    // A round of its own, after this one is applied.
                    held = Some(policy);
                    break;
                }
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

/// One policy change: merged with the replicated policy as it is now, checked, stamped and
/// replicated before anything queued after it is taken.
async fn change_policy(
    rt: &Runtime,
    update: &PolicyUpdate,
    by: String,
) -> Result<Result<Policy, FieldError>, RuntimeError> {
    let current = rt.state().read(|s| s.policy().clone());
    let policy = update.apply_to(&current);
    if let Err(e) = policy.check() {
        return Ok(Err(e));
    }
    let cmd = Command::SetPolicy(SetPolicy {
        at: rt.cluster_now(),
        policy: policy.clone(),
        by: Some(by),
    });
    rt.propose(cmd).await.map(|_| Ok(policy))
}

//! Linearizable reads on any node, by read index.
//!
//! On the leader, openraft's `get_read_log_id` confirms leadership with a quorum and names the
//! log index a read must see. A follower asks the leader for that index over a signed internal
//! RPC ([`sessync_proto::wire::READ_INDEX_PATH`]), waits until its own replica has applied it,
//! and then reads locally. The leader's clock at that moment comes back too, so time-based
//! checks (idle and lifetime ends) use cluster time, not the follower's clock.

use std::time::Duration;

use openraft::error::{CheckIsLeaderError, Fatal, RaftError};
use sessync_proto::wire::{ReadIndex, READ_INDEX_PATH};
use sessync_proto::Timestamp;

use super::{Runtime, RuntimeError};

impl Runtime {
    /// Makes this node's replica reflect every change acknowledged before this call, and returns
    /// the leader's cluster time at that point; bounded by the request deadline.
    pub(crate) async fn linearize(&self) -> Result<Timestamp, RuntimeError> {
        let t = self.request_timeout();
        tokio::time::timeout(t, self.linearize_unbounded())
            .await
            .unwrap_or(Err(RuntimeError::NoQuorum {
                what: "could not confirm the read with the leader",
                waited: t,
            }))
    }

    /// The leader's side: the index a linearizable read must see, confirmed with a quorum, and
    /// the leader's cluster time (refused when this clock is off: the reader would judge by it).
    pub(crate) async fn read_index(&self) -> Result<ReadIndex, RuntimeError> {
        self.clock_guard()?;
        match self.raft().get_read_log_id().await {
            Ok((read, _applied)) => Ok(ReadIndex {
                index: read.map(|l| l.index),
                now: self.cluster_now(),
            }),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                Err(RuntimeError::LeadershipMoved { to: f.leader_id })
            }
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))) => {
                Err(RuntimeError::NoQuorum {
                    what: "leadership was not confirmed by a quorum",
                    waited: self.request_timeout(),
                })
            }
            Err(RaftError::Fatal(Fatal::Stopped)) => Err(RuntimeError::ShuttingDown),
            Err(e) => Err(RuntimeError::Raft(e.to_string())),
        }
    }

    async fn linearize_unbounded(&self) -> Result<Timestamp, RuntimeError> {
        if self.is_leader() {
            // The read is judged by this clock.
            self.clock_guard()?;
            if let Ok((read, applied)) = self.raft().get_read_log_id().await {
                self.wait_applied(read.map(|l| l.index), applied.map(|l| l.index))
                    .await?;
                // Judged at max(this clock, the applied cluster time), as a follower judges.
                return Ok(self.cluster_now());
            }
            // Leadership was lost in between: fall through and ask whoever leads now.
        }
        let ri: ReadIndex = self
            .ask_leader(READ_INDEX_PATH, b"{}".to_vec(), self.request_timeout())
            .await?;
        let applied = self.raft().metrics().borrow().last_applied.map(|l| l.index);
        self.wait_applied(ri.index, applied).await?;
        // The leader's time for this read (its linearization point), not a later stamp this
        // replica has applied since: a touch taken after that time may not be applied yet.
        Ok(ri.now)
    }

    async fn wait_applied(
        &self,
        want: Option<u64>,
        applied: Option<u64>,
    ) -> Result<(), RuntimeError> {
        if want <= applied {
            return Ok(());
        }
        let waited = self.request_timeout().max(Duration::from_millis(100));
        self.raft()
            .wait(Some(waited))
            .applied_index_at_least(want, "linearizable read")
            .await
            .map(|_| ())
            .map_err(|_| RuntimeError::NoQuorum {
                what: "this replica did not catch up",
                waited,
            })
    }
}

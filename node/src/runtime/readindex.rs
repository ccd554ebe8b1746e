//! Linearizable reads on any node, by read index.
//!
//! On the leader, openraft's `get_read_log_id` confirms leadership with a quorum and names the
//! log index a read must see. A follower asks the leader for that index over a signed internal
//! RPC ([`sessync_proto::wire::READ_INDEX_PATH`]), waits until its own replica has applied it,
//! and then reads locally. The leader's clock at that moment comes back too, so time-based
//! checks (idle and lifetime ends) use cluster time, not the follower's clock.
//!
//! Both are shared by the reads waiting when they start ([`super::rounds`]): one leadership
//! confirmation per heartbeat round trip on the leader, one read-index RPC per round trip from
//! each follower, however many reads arrive meanwhile.

use std::time::Duration;

use openraft::error::{CheckIsLeaderError, Fatal, RaftError};
use sessync_proto::wire::{ReadIndex, READ_INDEX_PATH};
use sessync_proto::Timestamp;

use super::rounds::Rounds;
use super::{Runtime, RuntimeError};

/// A leadership confirmation: the index a read must see, and what this replica had applied.
#[derive(Clone, Copy, Debug)]
pub(super) struct Confirmed {
    read: Option<u64>,
    applied: Option<u64>,
}

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
        let c = self.confirm_leadership().await?;
        let now = self.cluster_now();
        // Again once stamped: the clock may have stepped during the confirmation.
        self.clock_guard()?;
        Ok(ReadIndex { index: c.read, now })
    }

    /// A leadership confirmation by a quorum that began after this call, shared with every
    /// other read waiting for one.
    async fn confirm_leadership(&self) -> Result<Confirmed, RuntimeError> {
        let (answer, start) = self.0.leader_reads.join();
        if start {
            let rt = self.clone();
            tokio::spawn(async move {
                while let Some(round) = rt.0.leader_reads.next_round() {
                    Rounds::answer(round, &rt.leadership_round().await);
                }
            });
        }
        answer.await.unwrap_or(Err(RuntimeError::ShuttingDown))
    }

    /// One heartbeat round: openraft's `get_read_log_id`.
    async fn leadership_round(&self) -> Result<Confirmed, RuntimeError> {
        match self.raft().get_read_log_id().await {
            Ok((read, applied)) => Ok(Confirmed {
                read: read.map(|l| l.index),
                applied: applied.map(|l| l.index),
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

    /// The leader's read index, asked by a round that began after this call, shared with
    /// every other read on this follower waiting for one.
    async fn leader_read_index(&self) -> Result<ReadIndex, RuntimeError> {
        let (answer, start) = self.0.follower_reads.join();
        if start {
            let rt = self.clone();
            tokio::spawn(async move {
                while let Some(round) = rt.0.follower_reads.next_round() {
                    let ri = rt
                        .ask_leader(READ_INDEX_PATH, b"{}".to_vec(), rt.request_timeout())
                        .await;
                    Rounds::answer(round, &ri);
                }
            });
        }
        answer.await.unwrap_or(Err(RuntimeError::ShuttingDown))
    }

    async fn linearize_unbounded(&self) -> Result<Timestamp, RuntimeError> {
        if self.is_leader() {
            // The read is judged by this clock.
            self.clock_guard()?;
            if let Ok(c) = self.confirm_leadership().await {
                self.wait_applied(c.read, c.applied).await?;
                // This clock, never behind the applied cluster time, after the read index (the
                // API then judges at its barrier, taken later still: `App::linearize`); checked
                // again once read, as it may have stepped meanwhile.
                let now = self.cluster_now();
                self.clock_guard()?;
                return Ok(now);
            }
            // Leadership was lost in between: fall through and ask whoever leads now.
        }
        let ri = self.leader_read_index().await?;
        self.wait_applied(ri.index, self.applied_index()).await?;
        // The leader's time for this read (its linearization point), not a later stamp this
        // replica has applied since: a touch taken after that time may not be applied yet.
        Ok(ri.now)
    }

    /// The index of the last entry this replica has applied.
    pub(crate) fn applied_index(&self) -> Option<u64> {
        self.raft().metrics().borrow().last_applied.map(|l| l.index)
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

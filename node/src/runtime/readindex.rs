//! Linearizable reads on any node, by read index.
//!
//! On the leader, openraft's `get_read_log_id` confirms leadership with a quorum and names the
//! log index a read must see. A follower asks the leader for that index over a signed internal
//! RPC ([`sessync_proto::wire::READ_INDEX_PATH`]), waits until its own replica has applied it,
//! and then reads locally. The leader's clock at that moment comes back too, so time-based
//! checks (idle and lifetime ends) use cluster time, not the follower's clock. The leader's
//! point for a read, its own or a follower's, is composed once ([`Runtime::linearize`]): the
//! read index, then the read's barrier through the sequencer.
//!
//! Both are shared by the reads waiting when they start ([`super::rounds`]): one leadership
//! confirmation per heartbeat round trip on the leader, one read-index RPC per round trip from
//! each follower, however many reads arrive meanwhile.

use std::future::Future;
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

/// Whom a linearizable read is for ([`Runtime::linearize`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reader {
    /// A read this node serves: on a follower, the leader is asked for its point.
    ThisNode,
    /// A follower's read-index RPC: only the leader answers it, and it asks no one else.
    Follower,
}

impl Runtime {
    /// A linearizable read's point, composed in this one place: this node's replica reflects
    /// every change acknowledged before this call, and the read is judged at the returned
    /// cluster time (`now`; `index` is what a replica must have applied); bounded by the request
    /// deadline.
    ///
    /// On the leader: the clock guard, leadership confirmed by a quorum (the read index), the
    /// replica caught up to it, and then the read's `barrier` through the leader's sequencer of
    /// touches ([`crate::sequencer`]), whose time is the answer. The sequencer proposes through this
    /// runtime (it sits above it), so the caller hands its barrier in; it is awaited only here.
    /// A [`Reader::ThisNode`] read on a follower (or on a leader that just lost leadership) asks
    /// the leader, which answers with this function for a [`Reader::Follower`], waits until this
    /// replica has applied that index, and is judged at the leader's time.
    pub(crate) async fn linearize(
        &self,
        reader: Reader,
        barrier: impl Future<Output = Result<Timestamp, RuntimeError>>,
    ) -> Result<ReadIndex, RuntimeError> {
        let t = self.request_timeout();
        tokio::time::timeout(t, self.linearize_unbounded(reader, barrier))
            .await
            .unwrap_or(Err(RuntimeError::NoQuorum {
                what: "could not confirm the read with the leader",
                waited: t,
            }))
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

    async fn linearize_unbounded(
        &self,
        reader: Reader,
        barrier: impl Future<Output = Result<Timestamp, RuntimeError>>,
    ) -> Result<ReadIndex, RuntimeError> {
        if reader == Reader::Follower || self.is_leader() {
            // The read is judged by this clock.
            self.clock_guard()?;
            match self.confirm_leadership().await {
                Ok(c) => {
                    self.wait_applied(c.read, c.applied).await?;
                    // The read's linearization point: the time the sequencer took its
                    // barrier, after the read index, so at least this clock and the applied
                    // cluster time as they were then; every touch taken before it is applied.
                    let now = barrier.await?;
                    // Checked again once stamped: the clock may have stepped meanwhile.
                    self.clock_guard()?;
                    return Ok(ReadIndex {
                        index: c.read.max(self.applied_index()),
                        now,
                    });
                }
                // A follower asked the wrong node: it asks the leader again, not through us.
                Err(e) if reader == Reader::Follower => return Err(e),
                // Leadership was lost in between: ask whoever leads now.
                Err(_) => {}
            }
        }
        let ri = self.leader_read_index().await?;
        self.wait_applied(ri.index, self.applied_index()).await?;
        // The leader's time for this read (its linearization point), not a later stamp this
        // replica has applied since: a touch taken after that time may not be applied yet.
        Ok(ri)
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

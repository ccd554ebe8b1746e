//! Leadership hand-over (openraft 0.9 has no `transfer_leader`), and draining.
//!
//! The leader hands over in four steps ([`Runtime::transfer_leadership`]):
//!
//! 1. Once its own lease is over (below), it holds new log entries at the one way into the log
//!    ([`Runtime::enter_log`]) for at most [`HOLD_LEASES`] leases (`election_timeout_max`) and
//!    waits for the entries already on their way, so its log stops growing; held writes go on
//!    afterwards (through the API's forwarding, to the new leader).
//! 2. It waits until the voter asked for, or else any other voter, holds its whole log.
//! 3. It asks that voter, over a signed node-to-node call ([`ELECT_PATH`]), to start an
//!    election ([`Runtime::elect_now`] there); a drained voter refuses, and the next caught-up
//!    one is asked.
//! 4. It waits until another node leads, and reports who and how long it took.
//!
//! Why the target wins at once: a node refuses votes while its leader lease holds
//! (`election_timeout_max` since its vote was last written or confirmed). Followers confirm it
//! on every append, but the leader's own vote was written only when it became leader; so once
//! that is a lease ago (step 1 waits for it if needed), the old leader grants the up-to-date
//! target's vote, and in a three-node cluster the target wins with two of three. In a larger
//! cluster the other followers still refuse: if no new leader appears within a lease, the
//! leader stops its heartbeats, waits out their leases and asks again (heartbeats come back on
//! if the hand-over fails).
//!
//! A drained node ([`Runtime::start_draining`]) no longer campaigns and reports not ready, so
//! load balancers move away before an operator stops it; a restart undrains it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use sessync_proto::wire::ELECT_PATH;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Runtime, RuntimeError};
use crate::network::client::{post_signed, Target};
use crate::raft_types::NodeId;

/// How many leases writes are held at most during a hand-over.
const HOLD_LEASES: u32 = 2;
/// How many leases a whole hand-over may take (catch-up, lease, election, the second try).
const BUDGET_LEASES: u32 = 5;
/// Added to a lease, against the rounding of the two clocks that measure it.
const LEASE_MARGIN: Duration = Duration::from_millis(50);

/// The runtime's hand-over state.
pub(super) struct Handover {
    /// `election_timeout_max`: the leader lease openraft keeps.
    lease: Duration,
    /// Until when new log entries are held (none: not held).
    hold: watch::Sender<Option<Instant>>,
    /// Set by an operator's drain; cleared only by a restart.
    draining: AtomicBool,
    /// The term this node leads in and (at the latest) when it began to lead.
    leader_since: Mutex<Option<(u64, Instant)>>,
    /// One hand-over at a time.
    busy: tokio::sync::Mutex<()>,
    /// Entries past the hold and not yet answered by Raft: a hand-over waits for them, so the
    /// leader's log no longer grows once it picks the target.
    in_flight: AtomicUsize,
}

/// An entry on its way into the log ([`Runtime::enter_log`]).
pub(super) struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Handover {
    pub(super) fn new(lease: Duration) -> Self {
        Handover {
            lease,
            hold: watch::Sender::new(None),
            draining: AtomicBool::new(false),
            leader_since: Mutex::new(None),
            busy: tokio::sync::Mutex::new(()),
            in_flight: AtomicUsize::new(0),
        }
    }

    pub(super) fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

/// A finished hand-over.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Transferred {
    pub(crate) from: NodeId,
    /// The node that leads now (the target, unless another node won the election).
    pub(crate) to: NodeId,
    pub(crate) took: Duration,
}

/// Releases held writes when the hand-over ends, however it ends.
struct Held<'a>(&'a watch::Sender<Option<Instant>>);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.send_replace(None);
    }
}

impl Runtime {
    /// Waits while a hand-over holds new log entries (at most until the hold's end).
    pub(crate) async fn wait_while_held(&self) {
        let mut rx = self.0.handover.hold.subscribe();
        loop {
            let Some(until) = *rx.borrow_and_update() else {
                return;
            };
            match tokio::time::timeout_at(until, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return,
            }
        }
    }

    /// Waits while writes are held, then counts the caller's entry as on its way into the log
    /// until the guard is dropped (counted first, then the hold checked, so a hand-over that
    /// sets the hold and then sees no entry in flight knows none will slip past it).
    pub(super) async fn enter_log(&self) -> InFlight<'_> {
        let h = &self.0.handover;
        loop {
            h.in_flight.fetch_add(1, Ordering::SeqCst);
            let held = (*h.hold.borrow()).is_some_and(|until| Instant::now() < until);
            if !held {
                return InFlight(&h.in_flight);
            }
            h.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.wait_while_held().await;
        }
    }

    /// Waits (at most `within`) until no entry is on its way into the log.
    async fn entries_settled(&self, within: Duration) {
        let until = Instant::now() + within;
        while self.0.handover.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// On the way down (after any hand-over): this node campaigns no more. Once its listener
    /// closes it hears from no leader, and an election it started while its connections drain
    /// would raise the term, which the leader meets when the node returns and steps down for.
    pub(crate) fn stop_campaigning(&self) {
        self.raft().runtime_config().elect(false);
    }

    /// Whether an operator drained this node.
    pub(crate) fn is_draining(&self) -> bool {
        self.0.handover.draining()
    }

    /// Drains this node: it stops campaigning and reports not ready until it restarts. A
    /// leader also hands over: see [`Runtime::transfer_leadership`].
    pub(crate) fn start_draining(&self) {
        if !self.0.handover.draining.swap(true, Ordering::Relaxed) {
            self.raft().runtime_config().elect(false);
            tracing::warn!("draining: this node no longer campaigns and reports not ready");
        }
    }

    /// Remembers when this node began to lead (called on every tick of the duties, and before
    /// a hand-over), for the lease its own vote holds.
    pub(crate) fn note_leadership(&self) {
        let m = self.raft().metrics().borrow().clone();
        let mut since = self.0.handover.leader_since.lock();
        if m.current_leader != Some(self.node_id()) {
            *since = None;
        } else if since.is_none_or(|(term, _)| term != m.current_term) {
            *since = Some((m.current_term, Instant::now()));
        }
    }

    /// Whether this node leads and there is another voter to hand over to.
    pub(crate) fn leads_with_other_voters(&self) -> bool {
        let m = self.raft().metrics().borrow().clone();
        m.current_leader == Some(self.node_id())
            && m.membership_config
                .membership()
                .voter_ids()
                .any(|v| v != self.node_id())
    }

    /// On a voter another node asks to take over: starts an election now.
    pub(crate) async fn elect_now(&self) -> Result<(), RuntimeError> {
        let m = self.raft().metrics().borrow().clone();
        let me = self.node_id();
        if !m
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == me)
        {
            return Err(RuntimeError::NotAVoter { node: me });
        }
        if m.current_leader == Some(me) {
            return Ok(());
        }
        if self.is_draining() {
            return Err(RuntimeError::Draining { node: me });
        }
        tracing::info!(
            from = ?m.current_leader,
            "the leader hands over leadership: starting an election"
        );
        self.raft()
            .trigger()
            .elect()
            .await
            .map_err(|_| RuntimeError::ShuttingDown)
    }

    /// Hands this node's leadership to voter `to`, or to the voter furthest along the log,
    /// holding new writes meanwhile (module docs); bounded by [`BUDGET_LEASES`] leases.
    pub(crate) async fn transfer_leadership(
        &self,
        to: Option<NodeId>,
    ) -> Result<Transferred, RuntimeError> {
        let h = &self.0.handover;
        let Ok(_one) = h.busy.try_lock() else {
            return Err(RuntimeError::TransferUnderWay);
        };
        let started = Instant::now();
        let me = self.node_id();
        let m = self.raft().metrics().borrow().clone();
        if m.current_leader != Some(me) {
            return Err(RuntimeError::LeadershipMoved {
                to: m.current_leader,
            });
        }
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        if let Some(id) = to {
            if membership.get_node(&id).is_none() {
                return Err(RuntimeError::UnknownNode { node: id });
            }
            if !voters.contains(&id) {
                return Err(RuntimeError::NotAVoter { node: id });
            }
            if id == me {
                return Ok(Transferred {
                    from: me,
                    to: me,
                    took: Duration::ZERO,
                });
            }
        }
        if !voters.iter().any(|v| *v != me) {
            return Err(RuntimeError::NoCaughtUpVoter { node: None });
        }
        self.note_leadership();
        let term = m.current_term;
        let lease = h.lease;
        // The old leader grants the target's vote only once its own lease is over: a leader
        // elected moments ago waits for that first, still taking writes.
        let lease_end = (*h.leader_since.lock()).map(|(_, at)| at + lease + LEASE_MARGIN);
        if let Some(end) = lease_end {
            tokio::time::sleep_until(end).await;
        }
        if !self.is_leader() {
            return Err(RuntimeError::LeadershipMoved {
                to: self.leader().map(|(id, _)| id),
            });
        }
        h.hold
            .send_replace(Some(Instant::now() + lease * HOLD_LEASES));
        let _held = Held(&h.hold);
        self.entries_settled(lease).await;
        let candidates = self.caught_up_voters(to, lease).await?;
        let target = self.ask_first_willing(&candidates, lease).await?;
        if let Some(new) = self.new_leader(term, lease + LEASE_MARGIN).await {
            return Ok(self.transferred(new, started));
        }
        // More voters than the old leader and the target: their leases hold while they hear
        // heartbeats. Stop them, wait the leases out, ask again.
        tracing::info!(
            to = target,
            "no new leader within a lease: stopping heartbeats to let the followers' leases end"
        );
        let config = self.raft().runtime_config();
        config.heartbeat(false);
        let outcome = async {
            if self.is_leader() {
                tokio::time::sleep(lease + LEASE_MARGIN).await;
                self.ask_to_elect(target, lease).await?;
            }
            let budget = (lease * BUDGET_LEASES).saturating_sub(started.elapsed());
            self.new_leader(term, budget.max(lease))
                .await
                .ok_or(RuntimeError::TransferTimedOut {
                    to: target,
                    waited: started.elapsed(),
                })
        }
        .await;
        // Heartbeats back on (unless the clock guard keeps them off).
        config.heartbeat(!self.clock_keeps_quiet());
        outcome.map(|new| self.transferred(new, started))
    }

    fn transferred(&self, to: NodeId, started: Instant) -> Transferred {
        Transferred {
            from: self.node_id(),
            to,
            took: started.elapsed(),
        }
    }

    /// The possible targets: `to` once it holds the leader's whole log, else every other
    /// voter that does, as soon as one does (within one lease).
    async fn caught_up_voters(
        &self,
        to: Option<NodeId>,
        lease: Duration,
    ) -> Result<Vec<NodeId>, RuntimeError> {
        let me = self.node_id();
        let pick = |m: &openraft::RaftMetrics<NodeId, openraft::BasicNode>| {
            let last = m.last_log_index;
            let voters: BTreeSet<NodeId> = m.membership_config.membership().voter_ids().collect();
            m.replication
                .iter()
                .flatten()
                .filter(|(id, _)| **id != me && voters.contains(*id))
                .filter(|(id, _)| to.is_none_or(|t| t == **id))
                .filter(|(_, l)| l.map(|l| l.index) == last)
                .map(|(id, _)| *id)
                .collect::<Vec<_>>()
        };
        let found = self
            .raft()
            .wait(Some(lease))
            .metrics(|m| !pick(m).is_empty(), "a voter to catch up")
            .await
            .map(|m| pick(&m))
            .unwrap_or_default();
        if found.is_empty() {
            return Err(RuntimeError::NoCaughtUpVoter { node: to });
        }
        Ok(found)
    }

    /// Asks each candidate in turn to start an election until one does (a drained node
    /// refuses); the one that did.
    async fn ask_first_willing(
        &self,
        candidates: &[NodeId],
        timeout: Duration,
    ) -> Result<NodeId, RuntimeError> {
        let mut last = RuntimeError::NoCaughtUpVoter { node: None };
        for &target in candidates {
            match self.ask_to_elect(target, timeout).await {
                Ok(()) => return Ok(target),
                Err(e) => {
                    tracing::info!(to = target, error = %e, "this voter does not take over");
                    last = e;
                }
            }
        }
        Err(last)
    }

    /// Asks `target` (signed) to start an election.
    async fn ask_to_elect(&self, target: NodeId, timeout: Duration) -> Result<(), RuntimeError> {
        let unreachable = |reason: String| RuntimeError::TargetUnreachable {
            node: target,
            reason,
        };
        let url = self
            .raft()
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&target)
            .map(|n| n.addr.clone())
            .ok_or(RuntimeError::UnknownNode { node: target })?;
        let to = Target {
            id: target,
            base: &url,
        };
        let answer = post_signed(&self.0.link, to, ELECT_PATH, b"{}".to_vec(), timeout)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        if !answer.status.is_success() {
            let body = String::from_utf8_lossy(&answer.body);
            let start: String = body.chars().take(200).collect();
            return Err(unreachable(format!(
                "it answered {}: {start}",
                answer.status
            )));
        }
        Ok(())
    }

    /// Another node leading in a term after `term`, within `within`.
    async fn new_leader(&self, term: u64, within: Duration) -> Option<NodeId> {
        let me = self.node_id();
        let led = |m: &openraft::RaftMetrics<NodeId, openraft::BasicNode>| {
            m.current_term > term && m.current_leader.is_some_and(|l| l != me)
        };
        let m = self
            .raft()
            .wait(Some(within))
            .metrics(led, "a new leader")
            .await
            .ok()?;
        m.current_leader
    }
}

//! What a node knows of its own health: the clock guard's verdict (and what the node does
//! about it), contact with the leader, and readiness.
//!
//! A node whose clock is off the voters' median by more than `max_clock_skew`
//! ([`crate::clock`]) refuses to stamp commands and to judge reads by its clock
//! ([`Runtime::clock_guard`]), stops campaigning, and, as leader, stops sending heartbeats so
//! that a node with a good clock takes over; it resumes both once fresh samples put it back
//! within the bound.
//!
//! Ready means: a leader is known and was heard from within the election timeout (a follower
//! counts the leader's append calls; a leader, acknowledgements from a quorum), this replica
//! has applied the leader's commit index to within [`READY_MAX_LAG`] entries, and the clock is
//! within the bound.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::Runtime;
use crate::clock::ClockStatus;
use crate::runtime::RuntimeError;

/// Most entries a ready node's replica may be behind the leader's commit index.
const READY_MAX_LAG: u64 = 100;

/// The last append call heard from a leader.
#[derive(Clone, Copy)]
struct Contact {
    at: Instant,
    leader_commit: Option<u64>,
}

/// The runtime's health state.
pub(super) struct Health {
    election_timeout: Duration,
    contact: parking_lot::Mutex<Option<Contact>>,
    /// The verdict the node last acted on (campaigning and heartbeats off while skewed).
    acted_skewed: AtomicBool,
}

impl Health {
    pub(super) fn new(election_timeout: Duration) -> Self {
        Self {
            election_timeout,
            contact: parking_lot::Mutex::new(None),
            acted_skewed: AtomicBool::new(false),
        }
    }
}

/// Whether the node should take traffic, and why not.
#[derive(Clone, Debug)]
pub(crate) struct Readiness {
    pub(crate) ready: bool,
    /// Why not: `no_leader`, `leader_silent`, `lagging`, `clock_skew`.
    pub(crate) reasons: Vec<&'static str>,
    /// Entries between the leader's commit index (as last heard) and this replica's applied one.
    pub(crate) lag: Option<u64>,
    pub(crate) clock: ClockStatus,
}

impl Runtime {
    /// This node's clock as the guard judges it against the replicated `max_clock_skew` (this
    /// node's file's before there is one).
    pub(crate) fn clock_status(&self) -> ClockStatus {
        let bound = self.0.state.read(|s| {
            s.replicated_policy()
                .map_or(self.0.file_policy.max_clock_skew, |p| p.max_clock_skew)
        });
        self.clock().status(bound)
    }

    /// `Err(ClockSkew)` when this node's clock may not stamp commands or judge reads.
    pub(crate) fn clock_guard(&self) -> Result<(), RuntimeError> {
        let s = self.clock_status();
        if s.skewed {
            return Err(RuntimeError::ClockSkew {
                node: self.node_id(),
                deviation_ms: s.deviation_ms,
            });
        }
        Ok(())
    }

    /// Keeps the clock guard's voters current and acts on its verdict: while the clock is off,
    /// the node does not campaign and, as leader, sends no heartbeats, so the others elect a
    /// node with a good clock. Called by the node's duties on every tick.
    pub(crate) fn watch_clock(&self) -> ClockStatus {
        let voters: Vec<u64> = self
            .raft()
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .collect();
        self.clock().set_voters(voters);
        let s = self.clock_status();
        let h = &self.0.health;
        if h.acted_skewed.swap(s.skewed, Ordering::Relaxed) != s.skewed {
            let config = self.raft().runtime_config();
            config.elect(!s.skewed);
            config.heartbeat(!s.skewed);
            if s.skewed {
                tracing::error!(
                    deviation_ms = s.deviation_ms,
                    "this node's clock is off the voters' median by more than max_clock_skew: \
                     it stamps nothing, judges no local read, does not campaign, and as leader \
                     lets another node take over; fix the clock (NTP)"
                );
            } else {
                tracing::warn!(
                    deviation_ms = s.deviation_ms,
                    "this node's clock is back within max_clock_skew"
                );
            }
        }
        s
    }

    /// Records an append call from the leader (heartbeat or entries) that this node answered.
    pub(crate) fn heard_from_leader(&self, leader_commit: Option<u64>) {
        *self.0.health.contact.lock() = Some(Contact {
            at: Instant::now(),
            leader_commit,
        });
    }

    /// Whether this node should take traffic now, and why not.
    pub(crate) fn readiness(&self) -> Readiness {
        let m = self.raft().metrics().borrow().clone();
        let h = &self.0.health;
        let applied = m.last_applied.map(|l| l.index);
        let mut reasons = Vec::new();
        let lag = if m.current_leader.is_none() {
            reasons.push("no_leader");
            None
        } else if m.current_leader == Some(self.node_id()) {
            let acked = m
                .millis_since_quorum_ack
                .is_some_and(|ms| Duration::from_millis(ms) <= h.election_timeout);
            if !acked {
                reasons.push("leader_silent");
            }
            Some(
                m.last_log_index
                    .unwrap_or(0)
                    .saturating_sub(applied.unwrap_or(0)),
            )
        } else {
            let contact = *h.contact.lock();
            match contact {
                Some(c) if c.at.elapsed() <= h.election_timeout => Some(
                    c.leader_commit
                        .unwrap_or(0)
                        .saturating_sub(applied.unwrap_or(0)),
                ),
                _ => {
                    reasons.push("leader_silent");
                    None
                }
            }
        };
        if lag.is_some_and(|l| l > READY_MAX_LAG) {
            reasons.push("lagging");
        }
        let clock = self.clock_status();
        if clock.skewed {
            reasons.push("clock_skew");
        }
        Readiness {
            ready: reasons.is_empty(),
            reasons,
            lag,
            clock,
        }
    }
}

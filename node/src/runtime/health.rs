//! What a node knows of its own health: the clock guard's verdict (and what the node does
//! about it), contact with the leader, and readiness.
//!
//! A node whose clock is off the voters' median by more than `max_clock_skew`
//! ([`crate::clock`]) refuses to stamp commands and to judge reads by its clock
//! ([`Runtime::clock_guard`]), stops campaigning, and, as leader, stops sending heartbeats so
//! that a node with a good clock takes over; it resumes both once fresh samples put it back
//! within the bound.
//!
//! A node whose clock has not been measured against the voters (right after a start, or once
//! its samples have lapsed: [`crate::clock::VERDICT_TTL`]) is not trusted either: it judges no
//! local read by its clock and stamps nothing until it has a measurement (a single voter is its
//! own median, and always measured).
//!
//! Ready means: a leader is known and was heard from within the election timeout (a follower
//! counts the leader's append calls; a leader, acknowledgements from a quorum), this replica
//! has applied the leader's commit index to within [`READY_MAX_LAG`] entries, and the clock is
//! measured and within the bound.

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
    /// Why not: `no_leader`, `leader_silent`, `lagging`, `clock_skew`, `clock_unmeasured`.
    pub(crate) reasons: Vec<&'static str>,
    /// Entries between the leader's commit index (as last heard) and this replica's applied one.
    pub(crate) lag: Option<u64>,
    pub(crate) clock: ClockStatus,
}

/// What a node's role says about its contact with the leader.
#[derive(Clone, Copy, Debug)]
enum Role {
    /// No leader is known.
    NoLeader,
    /// This node leads: how long since a quorum acknowledged it (`None`: never), and its last
    /// log index.
    Leader {
        since_quorum_ack: Option<Duration>,
        last_log: Option<u64>,
    },
    /// Another node leads: how long since its last append call, and the commit index it gave
    /// (`None`: not heard from since this node started).
    Follower {
        contact: Option<(Duration, Option<u64>)>,
    },
}

/// The readiness of a node in `role` that has applied up to `applied`, with `clock`.
fn judge(
    role: Role,
    applied: Option<u64>,
    clock: ClockStatus,
    election_timeout: Duration,
) -> Readiness {
    let behind = |head: Option<u64>| head.unwrap_or(0).saturating_sub(applied.unwrap_or(0));
    let mut reasons = Vec::new();
    let lag = match role {
        Role::NoLeader => {
            reasons.push("no_leader");
            None
        }
        Role::Leader {
            since_quorum_ack,
            last_log,
        } => {
            if since_quorum_ack.is_none_or(|d| d > election_timeout) {
                reasons.push("leader_silent");
            }
            Some(behind(last_log))
        }
        Role::Follower { contact } => match contact {
            Some((since, leader_commit)) if since <= election_timeout => {
                Some(behind(leader_commit))
            }
            _ => {
                reasons.push("leader_silent");
                None
            }
        },
    };
    if lag.is_some_and(|l| l > READY_MAX_LAG) {
        reasons.push("lagging");
    }
    if clock.skewed {
        reasons.push("clock_skew");
    } else if !clock.measured {
        reasons.push("clock_unmeasured");
    }
    Readiness {
        ready: reasons.is_empty(),
        reasons,
        lag,
        clock,
    }
}

impl Runtime {
    /// This node's clock as the guard judges it against the replicated `max_clock_skew` (this
    /// node's file's before there is one), over the voters of the membership as it is now.
    pub(crate) fn clock_status(&self) -> ClockStatus {
        let voters: Vec<u64> = self
            .raft()
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .collect();
        self.clock().set_voters(voters);
        let bound = self.0.state.read(|s| {
            s.replicated_policy()
                .map_or(self.0.file_policy.max_clock_skew, |p| p.max_clock_skew)
        });
        self.clock().status(bound)
    }

    /// `Err` when this node's clock may not stamp commands or judge reads: `ClockSkew` when it
    /// is off the voters' median by more than the bound, `NoQuorum` while it has not been
    /// measured against them (just started, or cut off from them for a while).
    pub(crate) fn clock_guard(&self) -> Result<(), RuntimeError> {
        let s = self.clock_status();
        if s.skewed {
            return Err(RuntimeError::ClockSkew {
                node: self.node_id(),
                deviation_ms: s.deviation_ms,
            });
        }
        if !s.measured {
            return Err(RuntimeError::NoQuorum {
                what: "this node's clock has not been compared with the voters' clocks",
                waited: s.unmeasured_for,
            });
        }
        Ok(())
    }

    /// Keeps the clock guard's voters current and acts on its verdict: while the clock is off,
    /// the node does not campaign and, as leader, sends no heartbeats, so the others elect a
    /// node with a good clock. Called by the node's duties on every tick.
    pub(crate) fn watch_clock(&self) -> ClockStatus {
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
        let role = match m.current_leader {
            None => Role::NoLeader,
            Some(l) if l == self.node_id() => Role::Leader {
                since_quorum_ack: m.millis_since_quorum_ack.map(Duration::from_millis),
                last_log: m.last_log_index,
            },
            Some(_) => Role::Follower {
                contact: h.contact.lock().map(|c| (c.at.elapsed(), c.leader_commit)),
            },
        };
        judge(
            role,
            m.last_applied.map(|l| l.index),
            self.clock_status(),
            h.election_timeout,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(1);
    const RECENT: Duration = Duration::from_millis(300);

    fn good_clock() -> ClockStatus {
        ClockStatus {
            deviation_ms: Some(3),
            skewed: false,
            measured: true,
            unmeasured_for: Duration::ZERO,
        }
    }

    fn follower(since: Duration, leader_commit: u64) -> Role {
        Role::Follower {
            contact: Some((since, Some(leader_commit))),
        }
    }

    #[test]
    fn a_follower_more_than_the_bound_behind_the_leader_is_lagging() {
        // Within READY_MAX_LAG entries: ready.
        let r = judge(follower(RECENT, 1_100), Some(1_000), good_clock(), TIMEOUT);
        assert!(r.ready, "{r:?}");
        assert_eq!(r.lag, Some(READY_MAX_LAG));
        // One more: lagging, and only that.
        let r = judge(follower(RECENT, 1_101), Some(1_000), good_clock(), TIMEOUT);
        assert!(!r.ready);
        assert_eq!(r.reasons, ["lagging"]);
        assert_eq!(r.lag, Some(READY_MAX_LAG + 1));
        // A fresh replica that has applied nothing of a long log.
        let r = judge(follower(RECENT, 5_000), None, good_clock(), TIMEOUT);
        assert_eq!(
            (r.reasons.as_slice(), r.lag),
            (&["lagging"][..], Some(5_000))
        );
        // Ahead of the commit index it last heard (it applied since): not behind.
        let r = judge(follower(RECENT, 10), Some(12), good_clock(), TIMEOUT);
        assert!(r.ready, "{r:?}");
    }

    #[test]
    fn a_follower_that_has_not_heard_from_the_leader_is_not_ready() {
        let r = judge(
            follower(TIMEOUT + Duration::from_millis(1), 10),
            Some(10),
            good_clock(),
            TIMEOUT,
        );
        assert_eq!(r.reasons, ["leader_silent"]);
        assert_eq!(r.lag, None);
        let never = Role::Follower { contact: None };
        assert_eq!(
            judge(never, Some(10), good_clock(), TIMEOUT).reasons,
            ["leader_silent"]
        );
        let r = judge(Role::NoLeader, Some(10), good_clock(), TIMEOUT);
        assert_eq!(r.reasons, ["no_leader"]);
    }

    #[test]
    fn a_leader_without_recent_quorum_acknowledgement_is_not_ready() {
        let leader = |ack: Option<Duration>, last_log: u64| Role::Leader {
            since_quorum_ack: ack,
            last_log: Some(last_log),
        };
        let r = judge(leader(Some(RECENT), 50), Some(50), good_clock(), TIMEOUT);
        assert!(r.ready, "{r:?}");
        let r = judge(
            leader(Some(TIMEOUT * 3), 50),
            Some(50),
            good_clock(),
            TIMEOUT,
        );
        assert_eq!(r.reasons, ["leader_silent"]);
        let r = judge(leader(None, 50), Some(50), good_clock(), TIMEOUT);
        assert_eq!(r.reasons, ["leader_silent"]);
        // Its own log applied far behind its last index: lagging too.
        let r = judge(leader(Some(RECENT), 500), Some(50), good_clock(), TIMEOUT);
        assert_eq!(r.reasons, ["lagging"]);
    }

    #[test]
    fn a_clock_skewed_or_not_measured_is_not_ready() {
        let skewed = ClockStatus {
            deviation_ms: Some(180_000),
            skewed: true,
            ..good_clock()
        };
        let r = judge(follower(RECENT, 10), Some(10), skewed, TIMEOUT);
        assert_eq!(r.reasons, ["clock_skew"]);
        // A skewed verdict that has lapsed is still reported as skew.
        let lapsed = ClockStatus {
            measured: false,
            unmeasured_for: Duration::from_secs(45),
            ..skewed
        };
        let r = judge(follower(RECENT, 10), Some(10), lapsed, TIMEOUT);
        assert_eq!(r.reasons, ["clock_skew"]);
        // Never measured (the first heartbeats after a start): not ready.
        let r = judge(
            follower(RECENT, 10),
            Some(10),
            ClockStatus::default(),
            TIMEOUT,
        );
        assert_eq!(r.reasons, ["clock_unmeasured"]);
        assert!(!r.ready);
    }
}

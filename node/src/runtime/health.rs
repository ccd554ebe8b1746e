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
//! has applied the leader's commit index to within [`READY_MAX_LAG`] entries, the clock is
//! measured and within the bound, and an operator has not drained the node
//! ([`super::handover`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use sessync_proto::Timestamp;

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
    /// Why not: `no_leader`, `leader_silent`, `lagging`, `clock_skew`, `clock_unmeasured`,
    /// `draining`.
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

/// Whether a stamp at `now` is within `bound` of the latest current stamp this replica applied
/// (`anchor`: its time, and the monotonic instant it was applied) plus the monotonic time
/// since; `Err` with how far ahead of that it is. An anchor older than
/// [`crate::clock::VERDICT_TTL`] no longer counts: over that long a clock slewed by NTP may
/// drift by a few hundred ms, and a node that stamps nothing would never anchor again (the
/// clock guard, which checks every stamp for steps, still does).
fn stamp_ceiling(
    anchor: Option<(Timestamp, std::time::Instant)>,
    bound: Duration,
    now: Timestamp,
) -> Result<(), i64> {
    let Some((stamp, at)) = anchor else {
        return Ok(());
    };
    let since = at.elapsed();
    if since > crate::clock::VERDICT_TTL {
        return Ok(());
    }
    let expected = stamp.plus(since);
    if now > expected.plus(bound) {
        return Err(i64::try_from(now.since(expected).as_millis()).unwrap_or(i64::MAX));
    }
    Ok(())
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
        self.clock().status(self.skew_bound())
    }

    /// The replicated `max_clock_skew` (this node's file's before there is one).
    fn skew_bound(&self) -> Duration {
        self.0.state.read(|s| {
            s.replicated_policy()
                .map_or(self.0.file_policy.max_clock_skew, |p| p.max_clock_skew)
        })
    }

    /// `Err` when this node's clock may not stamp commands or judge reads: `ClockSkew` when it
    /// is off the voters' median by more than the bound, or stepped since it was last measured
    /// ([`crate::clock`]), or ahead of the latest stamp this replica applied by more than the
    /// monotonic time since plus the bound ([`stamp_ceiling`]); `NoQuorum` while it has not
    /// been measured against the voters (just started, or cut off from them for a while).
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
        let anchor = self.state().applied_stamp();
        if let Err(ahead_ms) = stamp_ceiling(anchor, self.skew_bound(), Timestamp::now()) {
            return Err(RuntimeError::ClockSkew {
                node: self.node_id(),
                deviation_ms: Some(ahead_ms),
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
            config.elect(!s.skewed && !self.is_draining());
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

    /// Whether the clock guard keeps this node's heartbeats off (its clock is off).
    pub(super) fn clock_keeps_quiet(&self) -> bool {
        self.0.health.acted_skewed.load(Ordering::Relaxed)
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
        let mut r = judge(
            role,
            m.last_applied.map(|l| l.index),
            self.clock_status(),
            h.election_timeout,
        );
        if self.is_draining() {
            r.reasons.push("draining");
            r.ready = false;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_further_ahead_of_the_applied_one_than_time_has_moved_is_refused() {
        let bound = Duration::from_millis(500);
        let applied = Timestamp(1_800_000_000_000);
        let at = std::time::Instant::now() - Duration::from_secs(2);
        let anchor = Some((applied, at));
        // Two seconds after it was applied: up to 2.5 s past it may be stamped.
        assert_eq!(
            stamp_ceiling(anchor, bound, applied.plus(Duration::from_secs(2))),
            Ok(())
        );
        // A clock stepped ten minutes ahead since.
        let stepped = applied.plus(Duration::from_secs(600));
        let ahead = stamp_ceiling(anchor, bound, stepped).unwrap_err();
        assert!((597_000..=598_100).contains(&ahead), "{ahead}");
        // Behind is not this check's business (cluster time never goes back: `cluster_now`).
        assert_eq!(stamp_ceiling(anchor, bound, Timestamp(0)), Ok(()));
        // No anchor (just started), or one too old to tell: nothing to judge by.
        assert_eq!(stamp_ceiling(None, bound, stepped), Ok(()));
        // (The monotonic clock may not reach back that far on a machine just booted.)
        if let Some(long_ago) = std::time::Instant::now().checked_sub(crate::clock::VERDICT_TTL * 2)
        {
            assert_eq!(
                stamp_ceiling(Some((applied, long_ago)), bound, stepped),
                Ok(())
            );
        }
        // Extreme values saturate.
        assert!(stamp_ceiling(Some((Timestamp(u64::MAX), at)), bound, Timestamp(u64::MAX)).is_ok());
        assert_eq!(
            stamp_ceiling(Some((Timestamp(0), at)), bound, Timestamp(u64::MAX)),
            Err(i64::MAX)
        );
    }

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

//! The clock guard: how far this node's wall clock is from the median of its voters' clocks,
//! measured on the node-to-node calls the nodes make anyway.
//!
//! Cluster time is the leader's clock, stamped into every command; a local read judges by this
//! node's clock. A clock that runs far off would end sessions early (a fast leader's stamps
//! pass everyone's deadlines) or keep them alive too long (a slow replica's local reads). So
//! every node estimates its **deviation**: its clock minus the median of the voters' clocks.
//!
//! Samples come from the signed node-to-node exchanges:
//! - the signed answer to a node-to-node call ([`crate::signing::AnswerNote`]) carries the
//!   answering node's clock when the request arrived and when the answer left: with the send
//!   and receive times these are NTP's four timestamps, offset `((t2-t1)+(t3-t4))/2`, round
//!   trip `(t4-t1)-(t3-t2)` (the time the answering node spent is not counted). A sample whose
//!   round trip exceeds `max_clock_skew` is discarded (its error, at most half the round trip,
//!   could pass for skew), as is one whose wall-clock round trip disagrees with the monotonic
//!   clock. A proof refused as stale is answered signed too, so a node whose clock is too far
//!   off to be heard still learns that it is;
//! - a request may carry a **report**: the receiver's deviation as the sender measures it, sent
//!   only by a node whose fresh samples cover every voter, or cover a majority and put the
//!   sender itself within `max_clock_skew` (so a node that is off, or one whose half view
//!   cannot tell, passes nothing on). The leader, which hears from every voter on each
//!   heartbeat, tells each follower its deviation this way, since a follower only hears from
//!   the leader; with a voter down, its majority view still keeps the others measured.
//!
//! The deviation is the median of the fresh samples when they cover every voter; else the
//! latest fresh report; else the median of samples covering a majority of the voters (an even
//! count takes the mean of the middle two, so two nodes that disagree both see half the
//! difference). With none of these the last verdict stands for [`VERDICT_TTL`]: a node that
//! found itself skewed stays so until fresh samples say otherwise.
//!
//! A clock **stepped** since the last look (an NTP step, a VM resumed: wall time and monotonic
//! time since the last sample or check disagree by more than the bound) is not trusted from
//! that moment: every sample and report taken before the step is dropped (they measured the
//! clock as it was) and the node counts as skewed until fresh samples measure it again (a
//! report only once [`SAMPLE_TTL`] has passed since the step, since the reporter's own samples
//! of this node may predate it). The guard looks at every sample and every verdict, and the
//! runtime asks for a verdict before each stamp, so no command is stamped by a clock stepped
//! since it was last measured.
//!
//! A clock that has not been measured is not trusted either: right after a start (before the
//! first exchanges, about two heartbeats), or once no fresh sample or report has come for
//! [`VERDICT_TTL`], the node is **unmeasured** ([`ClockStatus::measured`] false) and, like a
//! skewed one, judges nothing by its clock (the runtime acts on it). A single voter is its own
//! median, so it is always measured.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sessync_proto::Timestamp;

/// How long a sample or a report counts.
pub(crate) const SAMPLE_TTL: Duration = Duration::from_secs(10);

/// How long the last verdict stands once no fresh sample or report is left; past it (and
/// before any measurement) the clock counts as unmeasured. Long enough for a node cut off from
/// the others to keep answering local reads through a partition (a clock kept by NTP drifts by
/// milliseconds in this time), short enough that a clock stepped while cut off is not trusted
/// for long.
pub(crate) const VERDICT_TTL: Duration = Duration::from_secs(600);

/// The bound samples are judged by before the first verdict sets it (`max_clock_skew`'s
/// default).
const DEFAULT_BOUND_MS: u64 = 500;

/// A node's id, as in the Raft membership.
type NodeId = u64;

/// What this node knows of its own clock. The default is a clock never measured: not
/// trusted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ClockStatus {
    /// This clock minus the voters' median, in ms, as last measured (`None` before any
    /// measurement).
    pub(crate) deviation_ms: Option<i64>,
    /// Whether the deviation is beyond `max_clock_skew` (the last verdict, which stands when
    /// the measurement ages out).
    pub(crate) skewed: bool,
    /// Whether the verdict rests on a measurement at most [`VERDICT_TTL`] old.
    pub(crate) measured: bool,
    /// While not measured: how long since the last measurement (or since the node started,
    /// if there was none).
    pub(crate) unmeasured_for: Duration,
}

#[cfg(test)]
impl ClockStatus {
    /// Whether this clock may stamp commands and judge reads: measured, and within the bound
    /// (what `Runtime::clock_guard` checks).
    pub(crate) fn trusted(&self) -> bool {
        self.measured && !self.skewed
    }
}

/// One node-to-node exchange, NTP's four timestamps: `sent_ms` (t1) and `received_ms` (t4) by
/// this node's wall clock, the peer's `peer_received_ms` (t2) and `peer_sent_ms` (t3) from its
/// signed answer, and the `round_trip` by this node's monotonic clock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Exchange {
    pub(crate) sent_ms: u64,
    pub(crate) peer_received_ms: u64,
    pub(crate) peer_sent_ms: u64,
    pub(crate) received_ms: u64,
    pub(crate) round_trip: Duration,
}

impl Exchange {
    /// The peer's clock minus this one, if the exchange is precise enough to count: its round
    /// trip without the peer's time, `(t4-t1)-(t3-t2)`, is within `bound_ms` and agrees with
    /// the monotonic one. Values from a peer are untrusted numbers: the arithmetic is done in
    /// i128 and clamped.
    pub(crate) fn offset_ms(&self, bound_ms: u64) -> Option<i64> {
        let (t1, t2, t3, t4) = (
            i128::from(self.sent_ms),
            i128::from(self.peer_received_ms),
            i128::from(self.peer_sent_ms),
            i128::from(self.received_ms),
        );
        let bound = i128::from(bound_ms);
        let wall_trip = t4 - t1;
        let mono_trip = i128::try_from(self.round_trip.as_millis()).unwrap_or(i128::MAX);
        let delay = wall_trip - (t3 - t2);
        if t3 < t2 || !(0..=bound).contains(&delay) || (wall_trip - mono_trip).abs() > bound {
            return None;
        }
        Some(clamp(((t2 - t1) + (t3 - t4)) / 2))
    }
}

#[derive(Clone, Copy, Debug)]
struct Sample {
    /// The peer's clock minus this one, in ms (for a report: this clock minus the median).
    offset_ms: i64,
    taken: Instant,
}

impl Sample {
    fn fresh(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.taken) <= SAMPLE_TTL
    }
}

#[derive(Default)]
struct Table {
    /// The voters of the membership, as last set.
    voters: Vec<NodeId>,
    peers: HashMap<NodeId, Sample>,
    report: Option<Sample>,
    last: ClockStatus,
    /// When `last` was last measured from fresh samples or a fresh report.
    measured_at: Option<Instant>,
    /// The bound of the last verdict (`max_clock_skew`), in ms; `None` before the first.
    bound_ms: Option<u64>,
    /// The wall clock at the last look (a sample or a verdict), with the monotonic instant:
    /// a later look whose wall clock moved otherwise than the monotonic one finds a step.
    looked: Option<(Instant, u64)>,
    /// The last step found, while no fresh measurement has followed it.
    stepped: Option<Step>,
}

/// A step of the wall clock against the monotonic one.
#[derive(Clone, Copy, Debug)]
struct Step {
    at: Instant,
    /// How far the wall clock jumped (positive: ahead).
    by_ms: i64,
}

impl Table {
    fn bound(&self) -> u64 {
        self.bound_ms.unwrap_or(DEFAULT_BOUND_MS)
    }

    /// Looks at the wall clock `wall_ms` at `now`: if it moved by more than the bound otherwise
    /// than the monotonic clock since the last look, the samples and report taken before are
    /// dropped and the step is remembered.
    fn look(&mut self, now: Instant, wall_ms: u64) {
        if let Some((then, wall_then)) = self.looked {
            if now < then {
                // A look that took its instant before the last one: nothing to compare.
                return;
            }
            let mono = i128::try_from(now.saturating_duration_since(then).as_millis())
                .unwrap_or(i128::MAX);
            let moved = i128::from(wall_ms) - i128::from(wall_then) - mono;
            if moved.unsigned_abs() > u128::from(self.bound()) {
                self.peers.clear();
                self.report = None;
                let by_ms = clamp(moved);
                let by_ms = self
                    .stepped
                    .map_or(by_ms, |s| s.by_ms.saturating_add(by_ms));
                self.stepped = Some(Step { at: now, by_ms });
            }
        }
        self.looked = Some((now, wall_ms));
    }
}

/// Samples of the peers' clocks and this node's verdict; shared by the network (which records
/// samples and sends reports) and the runtime (which keeps the voters current and asks for the
/// verdict).
pub(crate) struct ClockGuard {
    me: NodeId,
    /// When the guard was made (the node started): unmeasured since then until a measurement.
    started: Instant,
    table: parking_lot::Mutex<Table>,
}

impl ClockGuard {
    /// The guard of node `me`, knowing no voters yet.
    pub(crate) fn new(me: NodeId) -> Self {
        Self {
            me,
            started: Instant::now(),
            table: parking_lot::Mutex::default(),
        }
    }

    /// The voters the median is taken over (the runtime sets them from the membership).
    pub(crate) fn set_voters(&self, voters: impl IntoIterator<Item = NodeId>) {
        let mut t = self.table.lock();
        t.voters.clear();
        t.voters.extend(voters);
    }

    /// Records an exchange with `peer` as a sample, if it is precise enough
    /// ([`Exchange::offset_ms`]).
    pub(crate) fn exchanged(&self, peer: NodeId, x: Exchange) {
        self.exchanged_at(peer, x, Instant::now());
    }

    fn exchanged_at(&self, peer: NodeId, x: Exchange, now: Instant) {
        let mut t = self.table.lock();
        t.look(now, x.received_ms);
        if let Some(offset_ms) = x.offset_ms(t.bound()) {
            t.peers.insert(
                peer,
                Sample {
                    offset_ms,
                    taken: now,
                },
            );
        }
    }

    /// Records a peer's report of this node's deviation (ignored for [`SAMPLE_TTL`] after a
    /// step: the reporter's samples may predate it).
    pub(crate) fn reported(&self, deviation_ms: i64) {
        let now = Instant::now();
        let mut t = self.table.lock();
        t.look(now, wall_ms());
        if t.stepped
            .is_some_and(|s| now.saturating_duration_since(s.at) <= SAMPLE_TTL)
        {
            return;
        }
        t.report = Some(Sample {
            offset_ms: deviation_ms,
            taken: now,
        });
    }

    /// `peer`'s deviation from the voters' median as this node measures it, when its fresh
    /// samples cover `peer` and every voter, or a majority of the voters by which this node is
    /// itself within the bound of its last verdict (a view that finds its holder off, or one
    /// that cannot tell, is not passed on).
    pub(crate) fn report_for(&self, peer: NodeId) -> Option<i64> {
        let t = self.table.lock();
        let now = Instant::now();
        let peer_offset = t.peers.get(&peer).filter(|s| s.fresh(now))?.offset_ms;
        let (median, all) = majority_median(&t, self.me, now)?;
        let within = t.bound_ms.is_some_and(|b| median.unsigned_abs() <= b);
        let stepped = t.stepped.is_some();
        (!stepped && (all || within)).then_some(peer_offset.saturating_sub(median))
    }

    /// This node's verdict on its clock, judged against `bound`.
    pub(crate) fn status(&self, bound: Duration) -> ClockStatus {
        self.status_at(bound, Instant::now(), wall_ms())
    }

    fn status_at(&self, bound: Duration, now: Instant, wall: u64) -> ClockStatus {
        let mut t = self.table.lock();
        let bound_ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
        t.bound_ms = Some(bound_ms);
        t.look(now, wall);
        let own = majority_median(&t, self.me, now);
        let report = t.report.filter(|r| r.fresh(now)).map(|r| r.offset_ms);
        let deviation = match (own, report) {
            (Some((median, all)), _) if all => Some(median.saturating_neg()),
            (_, Some(r)) => Some(r),
            (Some((median, _)), None) => Some(median.saturating_neg()),
            (None, None) => None,
        };
        if let Some(d) = deviation {
            // Measured again (everything from before a step was dropped at the step).
            t.stepped = None;
            t.last = ClockStatus {
                deviation_ms: Some(d),
                skewed: d.unsigned_abs() > bound_ms,
                measured: true,
                unmeasured_for: Duration::ZERO,
            };
            t.measured_at = Some(now);
        }
        if let Some(step) = t.stepped {
            // Stepped, not measured since: off by the step, as far as this node can tell.
            let before = t.last.deviation_ms.unwrap_or(0);
            return ClockStatus {
                deviation_ms: Some(before.saturating_add(step.by_ms)),
                skewed: true,
                measured: true,
                unmeasured_for: Duration::ZERO,
            };
        }
        let since = now.saturating_duration_since(t.measured_at.unwrap_or(self.started));
        let mut s = t.last;
        if t.measured_at.is_none() || since > VERDICT_TTL {
            s.measured = false;
            s.unmeasured_for = since;
        }
        s
    }
}

/// The median of the fresh offsets of the voters (this node, `me`, counting 0), and whether
/// they cover every voter; `None` unless they cover a majority.
fn majority_median(t: &Table, me: NodeId, now: Instant) -> Option<(i64, bool)> {
    let voters = &t.voters;
    let mut offsets: Vec<i64> = voters
        .iter()
        .filter_map(|v| {
            if *v == me {
                Some(0)
            } else {
                t.peers.get(v).filter(|s| s.fresh(now)).map(|s| s.offset_ms)
            }
        })
        .collect();
    if voters.is_empty() || offsets.len() * 2 <= voters.len() {
        return None;
    }
    offsets.sort_unstable();
    let n = offsets.len();
    let median = if n % 2 == 1 {
        offsets[n / 2]
    } else {
        clamp((i128::from(offsets[n / 2 - 1]) + i128::from(offsets[n / 2])) / 2)
    };
    Some((median, n == voters.len()))
}

fn clamp(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// This machine's wall clock, in ms.
fn wall_ms() -> u64 {
    Timestamp::now().millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: Duration = Duration::from_millis(500);
    const MIN: i64 = 60_000;

    /// An exchange whose four timestamps are these, in ms, shifted so that `t4` is now by the
    /// wall clock; its monotonic round trip is `t4 - t1`.
    fn x(t1: u64, t2: u64, t3: u64, t4: u64) -> Exchange {
        let base = wall_ms() - t4;
        Exchange {
            sent_ms: base + t1,
            peer_received_ms: base + t2,
            peer_sent_ms: base + t3,
            received_ms: base + t4,
            round_trip: Duration::from_millis(t4 - t1),
        }
    }

    /// The wall clock at instant `t`, for a clock that runs true.
    fn wall_for(t: Instant) -> u64 {
        let now = Instant::now();
        if t >= now {
            wall_ms() + (t - now).as_millis() as u64
        } else {
            wall_ms() - (now - t).as_millis() as u64
        }
    }

    fn guard(me: NodeId, voters: &[NodeId]) -> ClockGuard {
        let g = ClockGuard::new(me);
        g.set_voters(voters.iter().copied());
        g
    }

    #[test]
    fn a_fast_node_sees_itself_skewed_and_the_others_do_not() {
        // Node 3 runs three minutes fast; node 1 leads and hears from both.
        let leader = guard(1, &[1, 2, 3]);
        leader.exchanged(2, x(1_000, 1_010, 1_010, 1_020));
        leader.exchanged(
            3,
            x(1_000, 1_010 + 3 * MIN as u64, 1_010 + 3 * MIN as u64, 1_020),
        );
        let s = leader.status(BOUND);
        assert_eq!(s.deviation_ms, Some(0));
        assert!(!s.skewed);
        assert_eq!(leader.report_for(3), Some(3 * MIN));
        assert_eq!(leader.report_for(2), Some(0));

        // Node 3 only hears from the leader: its report decides, not its own half view.
        let fast = guard(3, &[1, 2, 3]);
        fast.exchanged(1, x(3 * MIN as u64, 0, 0, 3 * MIN as u64));
        fast.reported(3 * MIN);
        assert_eq!(
            fast.report_for(1),
            None,
            "no verdict yet: nothing passed on"
        );
        let s = fast.status(BOUND);
        assert_eq!(s.deviation_ms, Some(3 * MIN));
        assert!(s.skewed);
        assert_eq!(
            fast.report_for(1),
            None,
            "a half view that finds its holder off is not passed on"
        );

        // Node 2, told it is fine, is fine.
        let good = guard(2, &[1, 2, 3]);
        good.exchanged(1, x(1_000, 1_002, 1_002, 1_004));
        good.reported(0);
        assert!(!good.status(BOUND).skewed);
    }

    #[test]
    fn a_fast_leader_finds_out_from_its_followers() {
        let fast = guard(3, &[1, 2, 3]);
        let ahead = 3 * MIN as u64;
        fast.exchanged(1, x(ahead + 1_000, 1_010, 1_010, ahead + 1_020));
        fast.exchanged(2, x(ahead + 1_000, 1_012, 1_012, ahead + 1_020));
        let s = fast.status(BOUND);
        assert!(s.skewed);
        assert!(s.deviation_ms.unwrap() > 3 * MIN - 100);
    }

    #[test]
    fn the_verdict_stands_until_fresh_samples_change_it() {
        let g = guard(1, &[1, 2, 3]);
        let s = g.status(BOUND);
        assert_eq!((s.deviation_ms, s.skewed, s.measured), (None, false, false));
        g.reported(20 * MIN);
        assert!(g.status(BOUND).skewed);
        // The report ages out: the verdict stays.
        g.table.lock().report.as_mut().unwrap().taken -= SAMPLE_TTL * 2;
        assert!(g.status(BOUND).skewed);
        g.reported(10);
        let s = g.status(BOUND);
        assert!(!s.skewed);
        assert_eq!(s.deviation_ms, Some(10));
    }

    #[test]
    fn a_single_voter_is_its_own_median_and_slow_answers_do_not_count() {
        let g = guard(1, &[1]);
        assert_eq!(g.status(BOUND).deviation_ms, Some(0));
        assert!(g.status(BOUND).trusted(), "a single voter needs no peer");
        // Nor does it ever age out: it measures itself whenever asked.
        let later = Instant::now() + VERDICT_TTL * 3;
        assert!(g.status_at(BOUND, later, wall_for(later)).trusted());
        g.exchanged(2, x(0, 20 * MIN as u64, 20 * MIN as u64, 2_000));
        assert!(g.table.lock().peers.is_empty());
        // Without a majority there is no own view, and without every voter no report.
        g.set_voters([1, 2, 3, 4, 5]);
        g.exchanged(2, x(1_000, 1_000, 1_000, 1_000));
        assert_eq!(g.report_for(2), None);
        assert_eq!(g.status(BOUND).deviation_ms, Some(0));
    }

    #[test]
    fn two_nodes_that_disagree_both_see_half_the_difference() {
        let g = guard(1, &[1, 2, 3]);
        g.exchanged(
            2,
            x(1_000, 1_000 + 2 * MIN as u64, 1_000 + 2 * MIN as u64, 1_000),
        );
        let s = g.status(BOUND);
        assert_eq!(s.deviation_ms, Some(-MIN));
        assert!(s.skewed);
    }

    #[test]
    fn a_clock_not_yet_measured_is_not_trusted() {
        // Node 3 has just started in a cluster of three: no exchange yet, so no verdict, and
        // an unmeasured clock must not pass for a good one (the startup window).
        let g = guard(3, &[1, 2, 3]);
        let s = g.status(BOUND);
        assert_eq!(s.deviation_ms, None);
        assert!(!s.skewed);
        assert!(!s.measured);
        assert!(!s.trusted());
        assert!(!ClockStatus::default().trusted());
        // Nor before it knows the voters (an empty membership has no median).
        let blank = guard(3, &[]);
        assert!(!blank.status(BOUND).trusted());

        // A report from the leader measures it.
        g.reported(40);
        let s = g.status(BOUND);
        assert!(s.measured && s.trusted(), "{s:?}");
        assert_eq!(s.unmeasured_for, Duration::ZERO);

        // So do its own samples, once they cover a majority of the voters (itself and one).
        let own = guard(3, &[1, 2, 3]);
        own.exchanged(1, x(1_000, 1_006, 1_006, 1_004));
        let s = own.status(BOUND);
        assert!(s.trusted(), "{s:?}");
        assert_eq!(s.deviation_ms, Some(-2), "half of node 1's 4 ms");
    }

    #[test]
    fn without_fresh_samples_the_verdict_stands_for_a_while_then_lapses() {
        let g = guard(2, &[1, 2, 3]);
        let t0 = Instant::now();
        g.reported(10);
        assert!(g.status_at(BOUND, t0, wall_for(t0)).trusted());

        // The report ages out: the verdict stands, still measured.
        let aged = t0 + SAMPLE_TTL + Duration::from_secs(1);
        let s = g.status_at(BOUND, aged, wall_for(aged));
        assert!(s.trusted(), "{s:?}");
        assert_eq!(s.deviation_ms, Some(10));

        // Past the verdict's life without anything fresh: unmeasured again, not trusted, but
        // the last deviation is still shown.
        let lapsed = t0 + VERDICT_TTL + Duration::from_secs(1);
        let s = g.status_at(BOUND, lapsed, wall_for(lapsed));
        assert!(!s.measured && !s.trusted(), "{s:?}");
        assert_eq!(s.deviation_ms, Some(10));
        assert!(s.unmeasured_for > VERDICT_TTL, "{s:?}");

        // A skewed verdict that lapses stays skewed (the node still does not campaign).
        let fast = guard(2, &[1, 2, 3]);
        fast.reported(3 * MIN);
        assert!(fast.status_at(BOUND, t0, wall_for(t0)).skewed);
        let s = fast.status_at(BOUND, lapsed, wall_for(lapsed));
        assert!(s.skewed && !s.measured && !s.trusted(), "{s:?}");

        // A fresh report measures it again.
        g.reported(-20);
        let s = g.status(BOUND);
        assert!(s.trusted(), "{s:?}");
        assert_eq!(s.deviation_ms, Some(-20));
    }

    #[test]
    fn with_a_voter_down_the_leader_still_reports_to_the_others() {
        // Node 3 is down: the leader's view covers a majority (itself and node 2), not every
        // voter. It puts the leader within the bound, so node 2 is still told where it stands
        // (else node 2 would go unmeasured while a voter is down).
        let leader = guard(1, &[1, 2, 3]);
        leader.exchanged(2, x(1_000, 1_030, 1_030, 1_020));
        assert!(leader.status(BOUND).trusted());
        assert_eq!(leader.report_for(2), Some(10));
        assert_eq!(leader.report_for(3), None, "no fresh sample of node 3");

        // The same half view with node 2 three minutes off: both see half the difference, the
        // leader is off by it too and passes nothing on.
        let torn = guard(1, &[1, 2, 3]);
        torn.exchanged(
            2,
            x(1_000, 1_010 + 3 * MIN as u64, 1_010 + 3 * MIN as u64, 1_020),
        );
        assert!(torn.status(BOUND).skewed);
        assert_eq!(torn.report_for(2), None);
    }

    #[test]
    fn four_timestamps_leave_out_the_time_the_peer_spent() {
        // The peer is 100 ms ahead; the request takes 10 ms each way, the peer's handler
        // 300 ms. The midpoint of (t1, t4) with a stamp taken after the handler would say
        // 250 ms; the four timestamps say 100.
        let t1 = 1_000_000_u64;
        let x = Exchange {
            sent_ms: t1,
            peer_received_ms: t1 + 10 + 100,
            peer_sent_ms: t1 + 310 + 100,
            received_ms: t1 + 320,
            round_trip: Duration::from_millis(320),
        };
        assert_eq!(x.offset_ms(500), Some(100));
        // An asymmetric link errs by half the difference, never more than half the round trip.
        let x = Exchange {
            sent_ms: t1,
            peer_received_ms: t1 + 400,
            peer_sent_ms: t1 + 400,
            received_ms: t1 + 400,
            round_trip: Duration::from_millis(400),
        };
        assert_eq!(x.offset_ms(500), Some(200));
    }

    #[test]
    fn a_slow_link_gives_no_sample() {
        // 700 ms each way against a 500 ms bound: whatever the peer's clock, it does not count
        // (the old midpoint estimate took round trips up to 2 s, errors near 1 s).
        let t1 = 1_000_000_u64;
        let slow = Exchange {
            sent_ms: t1,
            peer_received_ms: t1 + 700,
            peer_sent_ms: t1 + 705,
            received_ms: t1 + 1_405,
            round_trip: Duration::from_millis(1_405),
        };
        assert_eq!(slow.offset_ms(500), None);
        let g = guard(1, &[1, 2, 3]);
        g.exchanged(2, x(0, 1_500, 1_505, 1_405));
        g.exchanged(3, x(0, 1_500, 1_505, 1_405));
        assert!(g.table.lock().peers.is_empty());
        assert!(!g.status(BOUND).skewed);
        // A peer whose answer claims it left before it arrived, or a wall-clock round trip the
        // monotonic clock does not confirm: no sample either.
        let backwards = Exchange {
            peer_received_ms: t1 + 20,
            peer_sent_ms: t1 + 10,
            ..slow
        };
        assert_eq!(backwards.offset_ms(500), None);
        let unconfirmed = Exchange {
            sent_ms: t1,
            peer_received_ms: t1 + 5,
            peer_sent_ms: t1 + 5,
            received_ms: t1 + 10,
            round_trip: Duration::from_secs(5),
        };
        assert_eq!(unconfirmed.offset_ms(500), None);
    }

    #[test]
    fn clock_arithmetic_on_extreme_values_saturates() {
        // Numbers from a secret holder (or a clock gone wild) at the ends of the range.
        let extreme = Exchange {
            sent_ms: 0,
            peer_received_ms: u64::MAX,
            peer_sent_ms: u64::MAX,
            received_ms: 0,
            round_trip: Duration::ZERO,
        };
        assert_eq!(extreme.offset_ms(u64::MAX), Some(i64::MAX));
        let other = Exchange {
            sent_ms: u64::MAX,
            peer_received_ms: 0,
            peer_sent_ms: 0,
            received_ms: u64::MAX,
            round_trip: Duration::ZERO,
        };
        assert_eq!(other.offset_ms(u64::MAX), Some(i64::MIN));
        // Medians, reports and verdicts of such offsets do not overflow either.
        let g = guard(1, &[1, 2]);
        g.table.lock().peers.insert(
            2,
            Sample {
                offset_ms: i64::MIN,
                taken: Instant::now(),
            },
        );
        let s = g.status(BOUND);
        assert!(s.skewed, "{s:?}");
        assert!(s.deviation_ms.unwrap() > 0);
        g.table.lock().peers.insert(
            2,
            Sample {
                offset_ms: i64::MAX,
                taken: Instant::now(),
            },
        );
        let _ = g.report_for(2);
        g.reported(i64::MIN);
        let s = g.status(BOUND);
        assert!(s.skewed);
        assert_eq!(clamp(i128::MAX), i64::MAX);
        assert_eq!(clamp(i128::MIN), i64::MIN);
    }

    /// A leader measured good, then its wall clock stepped by `step_ms` (positive: ahead).
    fn stepped_leader(step_ms: i64) -> (ClockGuard, Instant, u64) {
        let g = guard(1, &[1, 2, 3]);
        let t0 = Instant::now();
        let w0 = wall_ms();
        g.exchanged_at(2, at(w0, 2), t0);
        g.exchanged_at(3, at(w0, 3), t0);
        assert!(g.status_at(BOUND, t0, w0).trusted());
        // One second later by the monotonic clock, the wall clock says 1 s + the step.
        let t1 = t0 + Duration::from_secs(1);
        let w1 = w0.saturating_add_signed(1_000 + step_ms);
        (g, t1, w1)
    }

    /// A good exchange with a true peer, received at wall `w` (with a round trip of 2 ms and
    /// the peer's offset `off` ms).
    fn at(w: u64, off: u64) -> Exchange {
        Exchange {
            sent_ms: w - 2,
            peer_received_ms: w - 1 + off,
            peer_sent_ms: w - 1 + off,
            received_ms: w,
            round_trip: Duration::from_millis(2),
        }
    }

    #[test]
    fn a_clock_stepped_forward_is_distrusted_until_measured_again() {
        let (g, t1, w1) = stepped_leader(10 * MIN);
        let s = g.status_at(BOUND, t1, w1);
        assert!(s.skewed && !s.trusted(), "{s:?}");
        assert!(s.deviation_ms.unwrap() >= 10 * MIN - 10, "{s:?}");
        // The samples from before the step are gone; nothing is passed on as a report.
        assert!(g.table.lock().peers.is_empty());
        assert_eq!(g.report_for(2), None);
        // It stays distrusted while nothing fresh comes.
        let t2 = t1 + Duration::from_millis(200);
        let s = g.status_at(BOUND, t2, w1 + 200);
        assert!(s.skewed, "{s:?}");
        // Fresh samples measure the stepped clock: ten minutes ahead, still skewed.
        let back = |w: u64| Exchange {
            sent_ms: w - 2,
            peer_received_ms: w - 1 - 10 * MIN as u64,
            peer_sent_ms: w - 1 - 10 * MIN as u64,
            received_ms: w,
            round_trip: Duration::from_millis(2),
        };
        g.exchanged_at(2, back(w1 + 300), t1 + Duration::from_millis(300));
        g.exchanged_at(3, back(w1 + 300), t1 + Duration::from_millis(300));
        let t3 = t1 + Duration::from_millis(300);
        let s = g.status_at(BOUND, t3, w1 + 300);
        assert!(s.skewed && s.measured, "{s:?}");
        // Stepped back: distrusted again at once, then measured good.
        let t4 = t3 + Duration::from_secs(1);
        let w4 = w1 + 300 + 1_000 - 10 * MIN as u64;
        assert!(g.status_at(BOUND, t4, w4).skewed);
        g.exchanged_at(2, at(w4 + 10, 0), t4 + Duration::from_millis(10));
        g.exchanged_at(3, at(w4 + 10, 0), t4 + Duration::from_millis(10));
        let s = g.status_at(BOUND, t4 + Duration::from_millis(10), w4 + 10);
        assert!(s.trusted(), "{s:?}");
    }

    #[test]
    fn a_clock_stepped_backward_is_distrusted_until_measured_again() {
        let (g, t1, w1) = stepped_leader(-10 * MIN);
        let s = g.status_at(BOUND, t1, w1);
        assert!(s.skewed && !s.trusted(), "{s:?}");
        assert!(s.deviation_ms.unwrap() <= -10 * MIN + 10, "{s:?}");
        // A report arriving right after the step may rest on samples from before it: ignored.
        g.reported(0);
        assert!(g.table.lock().report.is_none());
        // Its own fresh samples measure it.
        g.exchanged_at(2, at(w1 + 50, 0), t1 + Duration::from_millis(50));
        g.exchanged_at(3, at(w1 + 50, 0), t1 + Duration::from_millis(50));
        let s = g.status_at(BOUND, t1 + Duration::from_millis(50), w1 + 50);
        assert!(s.trusted(), "{s:?}");
    }

    #[test]
    fn a_drift_within_the_bound_is_no_step() {
        let (g, t1, w1) = stepped_leader(400);
        assert!(g.status_at(BOUND, t1, w1).trusted());
    }
}

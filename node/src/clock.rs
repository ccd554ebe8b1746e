//! The clock guard: how far this node's wall clock is from the median of its voters' clocks,
//! measured on the node-to-node calls the nodes make anyway.
//!
//! Cluster time is the leader's clock, stamped into every command; a local read judges by this
//! node's clock. A clock that runs far off would end sessions early (a fast leader's stamps
//! pass everyone's deadlines) or keep them alive too long (a slow replica's local reads). So
//! every node estimates its **deviation**: its clock minus the median of the voters' clocks.
//!
//! Samples come from the signed exchanges of [`crate::signing::ClockNote`]:
//! - an answer to a node-to-node call carries the answering node's clock: with the send and
//!   receive times this gives that peer's offset (NTP's midpoint estimate, good to half the
//!   round trip); a proof refused as stale is answered with the clock too, so a node whose
//!   clock is too far off to be heard still learns that it is;
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
//! A clock that has not been measured is not trusted either: right after a start (before the
//! first exchanges, about two heartbeats), or once no fresh sample or report has come for
//! [`VERDICT_TTL`], the node is **unmeasured** ([`ClockStatus::measured`] false) and, like a
//! skewed one, judges nothing by its clock (the runtime acts on it). A single voter is its own
//! median, so it is always measured.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a sample or a report counts.
pub(crate) const SAMPLE_TTL: Duration = Duration::from_secs(10);

/// How long the last verdict stands once no fresh sample or report is left; past it (and
/// before any measurement) the clock counts as unmeasured. Long enough for a node cut off from
/// the others to keep answering local reads through a partition (a clock kept by NTP drifts by
/// milliseconds in this time), short enough that a clock stepped while cut off is not trusted
/// for long.
pub(crate) const VERDICT_TTL: Duration = Duration::from_secs(600);

/// Answers that took longer than this to come back are too imprecise to count.
const MAX_ROUND_TRIP: Duration = Duration::from_secs(2);

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

    /// Records an exchange with `peer`: sent at `sent_ms`, answered with the peer's clock at
    /// `peer_ms`, received at `received_ms` (all wall clocks), `round_trip` by the monotonic
    /// clock.
    pub(crate) fn exchanged(
        &self,
        peer: NodeId,
        sent_ms: u64,
        peer_ms: u64,
        received_ms: u64,
        round_trip: Duration,
    ) {
        if round_trip > MAX_ROUND_TRIP {
            return;
        }
        let midpoint = i128::from(sent_ms) + (i128::from(received_ms) - i128::from(sent_ms)) / 2;
        self.record(peer, clamp(i128::from(peer_ms) - midpoint));
    }

    /// Records a peer's report of this node's deviation.
    pub(crate) fn reported(&self, deviation_ms: i64) {
        self.table.lock().report = Some(Sample {
            offset_ms: deviation_ms,
            taken: Instant::now(),
        });
    }

    fn record(&self, peer: NodeId, offset_ms: i64) {
        self.table.lock().peers.insert(
            peer,
            Sample {
                offset_ms,
                taken: Instant::now(),
            },
        );
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
        (all || within).then_some(peer_offset - median)
    }

    /// This node's verdict on its clock, judged against `bound`.
    pub(crate) fn status(&self, bound: Duration) -> ClockStatus {
        self.status_at(bound, Instant::now())
    }

    fn status_at(&self, bound: Duration, now: Instant) -> ClockStatus {
        let mut t = self.table.lock();
        let own = majority_median(&t, self.me, now);
        let report = t.report.filter(|r| r.fresh(now)).map(|r| r.offset_ms);
        let deviation = match (own, report) {
            (Some((median, all)), _) if all => Some(-median),
            (_, Some(r)) => Some(r),
            (Some((median, _)), None) => Some(-median),
            (None, None) => None,
        };
        let bound_ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
        t.bound_ms = Some(bound_ms);
        if let Some(d) = deviation {
            t.last = ClockStatus {
                deviation_ms: Some(d),
                skewed: d.unsigned_abs() > bound_ms,
                measured: true,
                unmeasured_for: Duration::ZERO,
            };
            t.measured_at = Some(now);
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
        (offsets[n / 2 - 1] + offsets[n / 2]) / 2
    };
    Some((median, n == voters.len()))
}

fn clamp(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: Duration = Duration::from_millis(500);
    const MIN: i64 = 60_000;

    fn guard(me: NodeId, voters: &[NodeId]) -> ClockGuard {
        let g = ClockGuard::new(me);
        g.set_voters(voters.iter().copied());
        g
    }

    #[test]
    fn a_fast_node_sees_itself_skewed_and_the_others_do_not() {
        // Node 3 runs three minutes fast; node 1 leads and hears from both.
        let leader = guard(1, &[1, 2, 3]);
        leader.exchanged(2, 1_000, 1_010, 1_020, Duration::from_millis(20));
        leader.exchanged(
            3,
            1_000,
            1_010 + 3 * MIN as u64,
            1_020,
            Duration::from_millis(20),
        );
        let s = leader.status(BOUND);
        assert_eq!(s.deviation_ms, Some(0));
        assert!(!s.skewed);
        assert_eq!(leader.report_for(3), Some(3 * MIN));
        assert_eq!(leader.report_for(2), Some(0));

        // Node 3 only hears from the leader: its report decides, not its own half view.
        let fast = guard(3, &[1, 2, 3]);
        fast.exchanged(1, 3 * MIN as u64, 0, 3 * MIN as u64, Duration::ZERO);
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
        good.exchanged(1, 1_000, 1_002, 1_004, Duration::from_millis(4));
        good.reported(0);
        assert!(!good.status(BOUND).skewed);
    }

    #[test]
    fn a_fast_leader_finds_out_from_its_followers() {
        let fast = guard(3, &[1, 2, 3]);
        let ahead = 3 * MIN as u64;
        fast.exchanged(
            1,
            ahead + 1_000,
            1_010,
            ahead + 1_020,
            Duration::from_millis(20),
        );
        fast.exchanged(
            2,
            ahead + 1_000,
            1_012,
            ahead + 1_020,
            Duration::from_millis(20),
        );
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
        assert!(g.status_at(BOUND, later).trusted());
        g.exchanged(2, 0, 20 * MIN as u64, 0, MAX_ROUND_TRIP * 2);
        assert!(g.table.lock().peers.is_empty());
        // Without a majority there is no own view, and without every voter no report.
        g.set_voters([1, 2, 3, 4, 5]);
        g.exchanged(2, 1_000, 1_000, 1_000, Duration::ZERO);
        assert_eq!(g.report_for(2), None);
        assert_eq!(g.status(BOUND).deviation_ms, Some(0));
    }

    #[test]
    fn two_nodes_that_disagree_both_see_half_the_difference() {
        let g = guard(1, &[1, 2, 3]);
        g.exchanged(2, 1_000, 1_000 + 2 * MIN as u64, 1_000, Duration::ZERO);
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
        own.exchanged(1, 1_000, 1_006, 1_004, Duration::from_millis(4));
        let s = own.status(BOUND);
        assert!(s.trusted(), "{s:?}");
        assert_eq!(s.deviation_ms, Some(-2), "half of node 1's 4 ms");
    }

    #[test]
    fn without_fresh_samples_the_verdict_stands_for_a_while_then_lapses() {
        let g = guard(2, &[1, 2, 3]);
        let t0 = Instant::now();
        g.reported(10);
        assert!(g.status_at(BOUND, t0).trusted());

        // The report ages out: the verdict stands, still measured.
        let aged = t0 + SAMPLE_TTL + Duration::from_secs(1);
        let s = g.status_at(BOUND, aged);
        assert!(s.trusted(), "{s:?}");
        assert_eq!(s.deviation_ms, Some(10));

        // Past the verdict's life without anything fresh: unmeasured again, not trusted, but
        // the last deviation is still shown.
        let lapsed = t0 + VERDICT_TTL + Duration::from_secs(1);
        let s = g.status_at(BOUND, lapsed);
        assert!(!s.measured && !s.trusted(), "{s:?}");
        assert_eq!(s.deviation_ms, Some(10));
        assert!(s.unmeasured_for > VERDICT_TTL, "{s:?}");

        // A skewed verdict that lapses stays skewed (the node still does not campaign).
        let fast = guard(2, &[1, 2, 3]);
        fast.reported(3 * MIN);
        assert!(fast.status_at(BOUND, t0).skewed);
        let s = fast.status_at(BOUND, lapsed);
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
        leader.exchanged(2, 1_000, 1_030, 1_020, Duration::from_millis(20));
        assert!(leader.status(BOUND).trusted());
        assert_eq!(leader.report_for(2), Some(10));
        assert_eq!(leader.report_for(3), None, "no fresh sample of node 3");

        // The same half view with node 2 three minutes off: both see half the difference, the
        // leader is off by it too and passes nothing on.
        let torn = guard(1, &[1, 2, 3]);
        torn.exchanged(2, 1_000, 1_010 + 3 * MIN as u64, 1_020, Duration::ZERO);
        assert!(torn.status(BOUND).skewed);
        assert_eq!(torn.report_for(2), None);
    }
}

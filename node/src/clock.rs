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
mod tests;

//! Unit tests of the clock guard: verdicts from samples and reports, steps, arithmetic.

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

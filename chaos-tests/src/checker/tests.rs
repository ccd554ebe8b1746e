//! The checker fed hand-made histories: a clean one passes, and each kind of anomaly is
//! caught and names the operations involved.

mod fixture;

use std::collections::BTreeMap;

use fixture::{clean, sid, user, A, B, H};

use super::{check, AnomalyKind};
use crate::history::{Call, Final, Outcome, Ret, Seen};

#[test]
fn a_clean_history_has_no_anomaly() {
    let h = clean();
    assert_eq!(check(&h.0), vec![]);
}

#[test]
fn a_lost_create_is_caught() {
    let mut h = clean();
    h.0.finals
        .retain(|f| !matches!(f, Final::Session { session, .. } if *session == sid(1)));
    h.final_state(1, Seen::Absent);
    assert_eq!(h.kinds(), vec![AnomalyKind::LostWrite]);
}

#[test]
fn a_lost_end_is_caught() {
    let mut h = clean();
    h.0.finals
        .retain(|f| !matches!(f, Final::Session { session, .. } if *session == sid(2)));
    h.final_state(2, Seen::Active);
    assert_eq!(h.kinds(), vec![AnomalyKind::LostWrite]);
}

#[test]
fn a_session_that_vanishes_after_it_was_seen_is_a_lost_write() {
    let mut h = clean();
    let late = h.validate((200, 210), 1, Seen::Absent);
    let found = check(&h.0);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, AnomalyKind::LostWrite);
    assert!(found[0].ops.contains(&late));
}

#[test]
fn a_valid_read_after_an_acknowledged_end_is_a_resurrection() {
    let mut h = clean();
    let bad = h.validate((46, 47), 2, Seen::Active);
    let found = check(&h.0);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, AnomalyKind::Resurrection);
    assert_eq!(found[0].ops, vec![5, bad], "the end and the read");
}

#[test]
fn a_verify_that_leaves_another_session_valid_is_a_resurrection() {
    let mut h = clean();
    h.validate((100, 101), 3, Seen::Active);
    assert_eq!(h.kinds(), vec![AnomalyKind::Resurrection]);
}

#[test]
fn a_read_older_than_an_earlier_read_is_stale() {
    let mut h = H::new();
    h.create((0, 10), "u", 1);
    h.ok(
        (11, 12),
        Call::Verify {
            user: user("u"),
            session: sid(1),
            targets: vec![],
        },
        Ret::Verified {
            kept: sid(1),
            ended: 0,
            fanout: BTreeMap::new(),
        },
    );
    h.ok(
        (13, 14),
        Call::Get { session: sid(1) },
        Ret::Seen {
            state: Seen::Blocked,
        },
    );
    assert_eq!(h.kinds(), vec![AnomalyKind::StaleRead]);
}

#[test]
fn a_local_read_going_back_on_one_node_is_caught_but_not_across_nodes_or_a_wipe() {
    let mut h = clean();
    h.local(2, (100, 101), 2, Seen::Ended);
    // Another node may lag behind node 2.
    h.local(3, (102, 103), 2, Seen::Active);
    assert_eq!(h.kinds(), vec![]);
    // Node 2 itself may not.
    h.local(2, (104, 105), 2, Seen::Active);
    assert_eq!(h.kinds(), vec![AnomalyKind::StaleLocalRead]);
    // Unless its data was wiped in between.
    let mut h = clean();
    h.local(2, (100, 101), 2, Seen::Ended);
    h.wipe(2, (102, 103));
    h.local(2, (104, 105), 2, Seen::Absent);
    assert_eq!(h.kinds(), vec![]);
}

/// Found by the soak (membership, seed 100 + 9): the nemesis recorded the wipe of a replaced
/// node under another name than the checker looked for, so the emptied node's reads were held
/// to its old life. The name is now declared once (`history::WIPE`); a read that meets the
/// wipe's window (the node killed, its data deleted, started empty) belongs to neither life.
#[test]
fn local_reads_are_judged_within_one_life_of_a_wiped_node() {
    let mut h = clean();
    h.local(2, (100, 101), 2, Seen::Ended);
    h.wipe(2, (110, 130));
    // Sent before the kill, answered after the restart: it may have seen either life.
    h.local(2, (105, 131), 2, Seen::Absent);
    // After the restart: the new life, empty until it catches up.
    h.local(2, (140, 141), 2, Seen::Absent);
    h.local(2, (150, 151), 2, Seen::Ended);
    assert_eq!(h.kinds(), vec![]);
    // Within the new life, going back is still caught.
    h.local(2, (160, 161), 2, Seen::Absent);
    assert_eq!(h.kinds(), vec![AnomalyKind::StaleLocalRead]);
}

#[test]
fn a_caught_up_node_that_still_says_valid_is_a_resurrection() {
    let mut h = clean();
    h.finally(Final::Local {
        site: A.into(),
        node: 2,
        session: sid(2),
        state: Seen::Active,
    });
    assert_eq!(h.kinds(), vec![AnomalyKind::Resurrection]);
}

#[test]
fn a_list_over_the_limit_is_caught() {
    let mut h = clean();
    let list = h.ok(
        (100, 101),
        Call::List { user: user("u") },
        Ret::Listed {
            active: vec![sid(1), sid(5), sid(6)],
        },
    );
    let found = check(&h.0);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, AnomalyKind::OverLimit);
    assert_eq!(found[0].ops, vec![list]);
    let mut h = clean();
    h.finally(Final::Active {
        site: A.into(),
        user: user("u"),
        active: vec![sid(1), sid(5), sid(6)],
    });
    assert_eq!(h.kinds(), vec![AnomalyKind::OverLimit]);
}

#[test]
fn one_idempotency_key_with_two_sessions_is_caught() {
    let mut h = clean();
    h.ok(
        (100, 101),
        Call::Create {
            user: user("u"),
            idempotency_key: "k1".into(),
        },
        Ret::Created {
            session: sid(9),
            state: Seen::Active,
        },
    );
    h.final_state(9, Seen::Active);
    assert_eq!(h.kinds(), vec![AnomalyKind::IdempotencyBroken]);
}

#[test]
fn divergent_digests_at_one_index_are_caught_and_different_indexes_are_not() {
    let mut h = clean();
    h.finally(Final::Digest {
        site: A.into(),
        node: 4,
        applied: 41,
        digest: "older".into(),
    });
    assert_eq!(h.kinds(), vec![]);
    h.finally(Final::Digest {
        site: A.into(),
        node: 5,
        applied: 42,
        digest: "abd".into(),
    });
    assert_eq!(h.kinds(), vec![AnomalyKind::DivergentReplicas]);
}

#[test]
fn a_fanout_applied_twice_is_a_double_apply() {
    let mut h = clean();
    h.finally(Final::FanoutReceived {
        site: B.into(),
        origin: A.into(),
        op_id: "op1".into(),
        duplicate: false,
    });
    assert_eq!(h.kinds(), vec![AnomalyKind::DoubleApply]);
}

#[test]
fn a_fanout_never_applied_or_never_queued_or_still_pending_is_lost() {
    let mut h = clean();
    h.0.finals
        .retain(|f| !matches!(f, Final::FanoutReceived { .. }));
    assert_eq!(h.kinds(), vec![AnomalyKind::FanoutLost]);
    let mut h = clean();
    h.0.finals
        .retain(|f| !matches!(f, Final::FanoutQueued { .. }));
    let found = check(&h.0);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, AnomalyKind::FanoutLost);
    let verify = h.0.ops.iter().find(|o| o.call.kind() == "verify_fanout");
    assert_eq!(
        found[0].ops,
        vec![verify.unwrap().id],
        "the acknowledged verify"
    );
    let mut h = clean();
    h.finally(Final::Outbox {
        origin: A.into(),
        target: B.into(),
        pending: 1,
    });
    assert_eq!(h.kinds(), vec![AnomalyKind::FanoutLost]);
}

#[test]
fn a_forged_or_replayed_request_accepted_is_caught() {
    let mut h = clean();
    h.finally(Final::FanoutReceived {
        site: B.into(),
        origin: A.into(),
        op_id: "forged1".into(),
        duplicate: false,
    });
    assert_eq!(h.kinds(), vec![AnomalyKind::ForgedApplied]);
    // A replay that applied the operation again.
    let mut h = clean();
    h.finally(Final::Forged {
        site: B.into(),
        op_id: "op1".into(),
        replay: true,
        status: 200,
        applied: Some(true),
    });
    assert_eq!(h.kinds(), vec![AnomalyKind::ForgedApplied]);
    // A forged request acknowledged at all.
    let mut h = clean();
    h.finally(Final::Forged {
        site: B.into(),
        op_id: "forged2".into(),
        replay: false,
        status: 200,
        applied: Some(false),
    });
    assert_eq!(h.kinds(), vec![AnomalyKind::ForgedApplied]);
}

#[test]
fn a_slow_or_missing_recovery_is_caught() {
    let mut h = clean();
    h.0.faults[0].recovery_ms = Some(20_000);
    assert_eq!(h.kinds(), vec![AnomalyKind::SlowRecovery]);
    h.0.faults[0].recovery_ms = None;
    assert_eq!(h.kinds(), vec![AnomalyKind::SlowRecovery]);
}

#[test]
fn a_valid_read_after_a_touch_refused_as_ended_is_a_resurrection() {
    let mut h = H::new();
    h.create((0, 10), "u", 1);
    let refused = h.op(
        1,
        (20, 21),
        Call::Touch { session: sid(1) },
        Outcome::Fail {
            code: "conflict".into(),
            seen: Some(Seen::Ended),
        },
    );
    let bad = h.validate((30, 31), 1, Seen::Active);
    let found = check(&h.0);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, AnomalyKind::Resurrection);
    assert_eq!(found[0].ops, vec![refused, bad]);
}

/// Found by the chaos suite's partition run (seed 2): a follower relays a local validate whose
/// touch is due to the leader, so its answer may be ahead of the follower's own state.
#[test]
fn a_local_validate_with_touch_is_not_held_to_its_node() {
    let mut h = clean();
    h.op(
        2,
        (100, 101),
        Call::Validate {
            session: sid(2),
            linearizable: false,
            touch: true,
        },
        Outcome::Ok {
            ret: Ret::Seen { state: Seen::Ended },
        },
    );
    h.local(2, (102, 103), 2, Seen::Active);
    assert_eq!(h.kinds(), vec![]);
}

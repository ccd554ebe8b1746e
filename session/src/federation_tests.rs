//! Unit tests of federation in the state machine: outbox entries committed with the local
//! change, the outbox bound and age, acknowledgements, peer operations applied once and never
//! for a replayed nonce, as of their origin time, and the rule between two sites' verifies.

use sessync_proto::federation::PeerOpKind;
use sessync_proto::{EndReason, OnLimit, OpId, SessionState, SiteName};

use super::testkit::*;
use super::*;

fn site(s: &str) -> SiteName {
    SiteName::parse_field(s, "site").unwrap()
}

fn op(n: u8) -> OpId {
    OpId::from_random([n; 16])
}

fn fanout(n: u8, targets: &[&str], limit: u32) -> Option<Fanout> {
    Some(Fanout {
        op_id: op(n),
        targets: targets.iter().map(|t| site(t)).collect(),
        outbox_limit: limit,
        expires_at: None,
    })
}

fn peer_op(t: u64, nonce: &str, op_n: u8, kind: PeerOpKind, one: Option<u8>) -> Command {
    Command::PeerOp(PeerOp {
        at: at(t),
        origin: site("site-a"),
        nonce: nonce.to_owned(),
        nonce_until: at(t + 600_000),
        kind,
        op_id: op(op_n),
        user_id: user("a"),
        session_id: one.map(sid),
        origin_time: None,
        here: None,
        max_received: None,
    })
}

/// A peer's operation from `origin` to `here`, made at `origin_ms` there, applied at `t`.
fn peer_op_from(
    origin: &str,
    here: &str,
    kind: PeerOpKind,
    op_n: u8,
    origin_ms: u64,
    t: u64,
) -> Command {
    Command::PeerOp(PeerOp {
        at: at(t),
        origin: site(origin),
        nonce: format!("n{op_n}-{t}"),
        nonce_until: at(t + 600_000),
        kind,
        op_id: op(op_n),
        user_id: user("a"),
        session_id: None,
        origin_time: Some(at(origin_ms)),
        here: Some(site(here)),
        max_received: Some(1_000),
    })
}

#[test]
fn invalidate_with_targets_queues_one_entry_per_target_in_the_same_command() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    sm.create(1, "a", 1);
    let o = sm.run(Command::Invalidate(UserOp {
        at: at(2),
        user_id: user("a"),
        session_id: None,
        fanout: fanout(1, &["site-b", "site-c"], 10),
    }));
    assert_eq!(o, Outcome::Invalidated { ended: 1 });
    let l = sm.store.ledger();
    assert_eq!(l.queued(&site("site-b")), 1);
    assert_eq!(l.queued(&site("site-c")), 1);
    let e = l.outbox_entry(&site("site-b"), &op(1)).unwrap();
    assert_eq!(
        (e.kind, e.queued_at, e.session_id.clone()),
        (PeerOpKind::Invalidate, at(2), None)
    );
    assert_eq!(
        sm.audit_kinds()
            .iter()
            .filter(|k| *k == "fanout_queued")
            .count(),
        2
    );
}

#[test]
fn verify_sends_the_verified_session_and_nothing_when_not_found() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    let o = sm.run(Command::Verify(UserOp {
        at: at(1),
        user_id: user("a"),
        session_id: None,
        fanout: fanout(1, &["site-b"], 10),
    }));
    assert!(matches!(o, Outcome::NotFound { .. }));
    assert_eq!(
        sm.store.ledger().queued(&site("site-b")),
        0,
        "no local change, no fan-out"
    );
    sm.create(1, "a", 2);
    sm.run(Command::Verify(UserOp {
        at: at(3),
        user_id: user("a"),
        session_id: None,
        fanout: fanout(2, &["site-b"], 10),
    }));
    let e = sm
        .store
        .ledger()
        .outbox_entry(&site("site-b"), &op(2))
        .cloned()
        .unwrap();
    assert_eq!((e.kind, e.session_id), (PeerOpKind::Verify, Some(sid(1))));
}

#[test]
fn a_full_outbox_refuses_the_whole_command() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    sm.create(1, "a", 1);
    for n in 1..=2 {
        sm.run(Command::Invalidate(UserOp {
            at: at(1 + n as u64),
            user_id: user("b"),
            session_id: None,
            fanout: fanout(n, &["site-b"], 2),
        }));
    }
    let before = sm.muts.len();
    let o = sm.run(Command::Invalidate(UserOp {
        at: at(10),
        user_id: user("a"),
        session_id: None,
        fanout: fanout(3, &["site-c", "site-b"], 2),
    }));
    assert_eq!(
        o,
        Outcome::OutboxFull {
            site: site("site-b"),
            limit: 2
        }
    );
    assert_eq!(sm.muts.len(), before, "nothing changed");
    assert!(sm.store.get(&sid(1)).unwrap().is_live());
    assert_eq!(sm.store.ledger().queued(&site("site-c")), 0);
}

#[test]
fn acks_remove_entries_once_with_the_delay() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    sm.run(Command::Invalidate(UserOp {
        at: at(1_000),
        user_id: user("a"),
        session_id: None,
        fanout: fanout(1, &["site-b", "site-c"], 10),
    }));
    let ack = |t| {
        Command::FanoutAcked(FanoutAcked {
            at: at(t),
            acks: vec![(site("site-b"), op(1))],
        })
    };
    sm.run(ack(3_500));
    sm.run(ack(4_000));
    let l = sm.store.ledger();
    assert_eq!(
        (l.queued(&site("site-b")), l.queued(&site("site-c"))),
        (0, 1)
    );
    let delivered: Vec<_> = sm
        .muts
        .iter()
        .filter_map(|m| match m {
            Mutation::Audit(n) if n.kind == "fanout_delivered" => {
                Some(n.detail["delay_ms"].clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        delivered,
        vec![serde_json::json!(2_500)],
        "one event, commit to ack"
    );
}

#[test]
fn peer_invalidate_applies_once_and_refuses_a_replayed_nonce() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    sm.create(1, "a", 1);
    sm.create(2, "a", 2);
    let o = sm.run(peer_op(10, "n1", 1, PeerOpKind::Invalidate, None));
    assert_eq!(
        o,
        Outcome::PeerApplied {
            applied: true,
            ended: 2
        }
    );
    assert_eq!(
        sm.state(1),
        (SessionState::Ended, Some(EndReason::Invalidated))
    );
    sm.create(3, "a", 20);
    // The same operation again, with a fresh nonce: a repeat, nothing changes.
    let o = sm.run(peer_op(30, "n2", 1, PeerOpKind::Invalidate, None));
    assert_eq!(
        o,
        Outcome::PeerApplied {
            applied: false,
            ended: 0
        }
    );
    assert!(sm.store.get(&sid(3)).unwrap().is_live());
    // A used nonce is refused whatever it carries.
    let before = sm.store.all().cloned().collect::<Vec<_>>();
    let o = sm.run(peer_op(40, "n1", 9, PeerOpKind::Invalidate, None));
    assert_eq!(o, Outcome::NonceReplayed);
    assert_eq!(sm.store.all().cloned().collect::<Vec<_>>(), before);
    assert!(sm.audit_kinds().contains(&"fanout_rejected".to_owned()));
}

#[test]
fn peer_verify_supersedes_every_local_session_and_invalidate_one_only_that_one() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    sm.create(1, "a", 1);
    sm.create(2, "a", 2);
    let o = sm.run(peer_op(5, "n1", 1, PeerOpKind::Invalidate, Some(2)));
    assert_eq!(
        o,
        Outcome::PeerApplied {
            applied: true,
            ended: 1
        }
    );
    assert_eq!(
        sm.state(2),
        (SessionState::Ended, Some(EndReason::Invalidated))
    );
    assert!(sm.store.get(&sid(1)).unwrap().is_live());
    let o = sm.run(peer_op(6, "n2", 2, PeerOpKind::Verify, Some(77)));
    assert_eq!(
        o,
        Outcome::PeerApplied {
            applied: true,
            ended: 1
        }
    );
    assert_eq!(
        sm.state(1),
        (SessionState::Ended, Some(EndReason::Superseded))
    );
}

#[test]
fn expiry_forgets_old_nonces_and_received_ops() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    sm.run(peer_op(1, "n1", 1, PeerOpKind::Invalidate, None));
    assert!(sm.store.ledger().nonce_seen(&site("site-a"), "n1"));
    sm.run(Command::Expire(Expire { at: at(700_000) }));
    assert!(!sm.store.ledger().nonce_seen(&site("site-a"), "n1"));
    assert!(sm
        .store
        .ledger()
        .received(&site("site-a"), &op(1))
        .is_some());
    let week = 8 * 86_400_000;
    sm.run(Command::Expire(Expire { at: at(week) }));
    assert!(sm
        .store
        .ledger()
        .received(&site("site-a"), &op(1))
        .is_none());
}

/// Item 1 of the second review: "log out everywhere" delayed by a cut link ended the login
/// the user made at the peer a minute later. It acts as of its origin time: logins made before
/// it (or within max_clock_skew after it, erring on the side of ending) end; later ones stay.
#[test]
fn a_late_fanout_ends_only_the_sessions_created_before_its_origin_time() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    let skew = sm.store.policy().max_clock_skew.as_millis() as u64;
    sm.create(1, "a", 1_000); // before the logout at the origin (10 s)
    sm.create(2, "a", 10_000 + skew / 2); // within the bound after it
    sm.create(3, "a", 70_000); // a minute later
    let o = sm.run(peer_op_from(
        "site-a",
        "site-b",
        PeerOpKind::Invalidate,
        1,
        10_000,
        90_000,
    ));
    assert_eq!(
        o,
        Outcome::PeerApplied {
            applied: true,
            ended: 2
        }
    );
    assert_eq!(
        sm.state(1),
        (SessionState::Ended, Some(EndReason::Invalidated))
    );
    assert_eq!(
        sm.state(2),
        (SessionState::Ended, Some(EndReason::Invalidated))
    );
    assert_eq!(
        sm.state(3),
        (SessionState::Active, None),
        "made after it: untouched"
    );
}

/// Two sites apply one pair of verifies in either order, with and without a tie.
fn two_sites_verify(a_ms: u64, b_ms: u64) -> (SessionState, SessionState) {
    // Each site holds one session of the user and verifies it; each then receives the other's.
    let mut a = Sm::new(policy(0, OnLimit::Deny));
    let mut b = Sm::new(policy(0, OnLimit::Deny));
    a.create(1, "a", 1_000);
    b.create(2, "a", 1_000);
    let verify = |t, n| {
        Command::Verify(UserOp {
            at: at(t),
            user_id: user("a"),
            session_id: Some(sid(n)),
            fanout: fanout(n, &["other"], 10),
        })
    };
    a.run(verify(a_ms, 1));
    b.run(verify(b_ms, 2));
    let later = a_ms.max(b_ms) + 60_000;
    a.run(peer_op_from(
        "site-b",
        "site-a",
        PeerOpKind::Verify,
        2,
        b_ms,
        later,
    ));
    b.run(peer_op_from(
        "site-a",
        "site-b",
        PeerOpKind::Verify,
        1,
        a_ms,
        later,
    ));
    (a.state(1).0, b.state(2).0)
}

/// Item 1: two verifies of one user made at two sites before either reached the other ended
/// both chosen sessions. The later origin time wins (a tie goes to the greater site name):
/// exactly one chosen session stays active, at every site alike.
#[test]
fn concurrent_verifies_at_two_sites_leave_exactly_one_chosen_session() {
    use SessionState::{Active, Ended};
    assert_eq!(
        two_sites_verify(5_000, 6_000),
        (Ended, Active),
        "B's is later"
    );
    assert_eq!(
        two_sites_verify(6_000, 5_000),
        (Active, Ended),
        "A's is later"
    );
    assert_eq!(
        two_sites_verify(5_000, 5_000),
        (Ended, Active),
        "a tie: site-b > site-a"
    );
}

/// A verify from a peer still supersedes a session chosen here earlier, and every session
/// here that no verify chose.
#[test]
fn a_later_peer_verify_supersedes_an_earlier_local_choice() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    sm.create(1, "a", 1_000);
    sm.create(2, "a", 2_000);
    sm.run(Command::Verify(UserOp {
        at: at(3_000),
        user_id: user("a"),
        session_id: Some(sid(1)),
        fanout: None,
    }));
    assert_eq!(sm.store.get(&sid(1)).unwrap().verified_at, Some(at(3_000)));
    let o = sm.run(peer_op_from(
        "site-a",
        "site-b",
        PeerOpKind::Verify,
        1,
        4_000,
        5_000,
    ));
    assert_eq!(
        o,
        Outcome::PeerApplied {
            applied: true,
            ended: 1
        }
    );
    assert_eq!(
        sm.state(1),
        (SessionState::Ended, Some(EndReason::Superseded))
    );
}

/// Item 8: each received id is kept for audit_retention from the later of its origin and
/// apply times, and an operation older than that is refused: a redelivery is either known or
/// refused, never applied twice.
#[test]
fn a_redelivery_after_its_id_was_forgotten_is_refused_not_applied_again() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    let retention = sm.store.policy().audit_retention.as_millis() as u64;
    sm.create(1, "a", 1_000);
    let o = sm.run(peer_op_from(
        "site-a",
        "site-b",
        PeerOpKind::Invalidate,
        1,
        2_000,
        3_000,
    ));
    assert_eq!(
        o,
        Outcome::PeerApplied {
            applied: true,
            ended: 1
        }
    );
    let forgotten = 3_000 + retention + 1;
    sm.run(Command::Expire(Expire { at: at(forgotten) }));
    assert!(sm
        .store
        .ledger()
        .received(&site("site-a"), &op(1))
        .is_none());
    sm.create(2, "a", forgotten + 1);
    let o = sm.run(peer_op_from(
        "site-a",
        "site-b",
        PeerOpKind::Invalidate,
        1,
        2_000,
        forgotten + 2,
    ));
    assert!(matches!(o, Outcome::OpExpired { .. }), "{o:?}");
    assert_eq!(sm.state(2), (SessionState::Active, None));
    assert!(sm.audit_kinds().contains(&"fanout_rejected".to_owned()));
}

/// Item 8: at most `max_received` ids of one origin are kept; past it that origin's new
/// operations are refused (others' are not), and room comes back as old ids are forgotten.
#[test]
fn received_operations_per_origin_are_capped() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    let with_cap = |origin: &str, n: u8, t: u64| match peer_op_from(
        origin,
        "site-b",
        PeerOpKind::Invalidate,
        n,
        t,
        t,
    ) {
        Command::PeerOp(mut p) => {
            p.max_received = Some(2);
            Command::PeerOp(p)
        }
        _ => unreachable!(),
    };
    for n in 1..=2 {
        assert!(matches!(
            sm.run(with_cap("site-a", n, 1_000 * n as u64)),
            Outcome::PeerApplied { .. }
        ));
    }
    assert_eq!(
        sm.run(with_cap("site-a", 3, 5_000)),
        Outcome::ReceivedFull { limit: 2 }
    );
    assert!(matches!(
        sm.run(with_cap("site-c", 4, 5_000)),
        Outcome::PeerApplied { .. }
    ));
    assert_eq!(sm.store.ledger().received_count(&site("site-a")), 2);
}

/// Item 8: an entry still undelivered at its `expires_at` leaves the outbox with a
/// `fanout_expired` event (its peer would refuse it as older than it remembers).
#[test]
fn undelivered_entries_leave_the_outbox_when_they_expire() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    let mut f = fanout(1, &["site-b"], 10);
    if let Some(f) = f.as_mut() {
        f.expires_at = Some(at(50_000));
    }
    sm.run(Command::Invalidate(UserOp {
        at: at(1_000),
        user_id: user("a"),
        session_id: None,
        fanout: f,
    }));
    sm.run(Command::Expire(Expire { at: at(49_999) }));
    assert_eq!(sm.store.ledger().queued(&site("site-b")), 1);
    sm.run(Command::Expire(Expire { at: at(50_000) }));
    assert_eq!(sm.store.ledger().queued(&site("site-b")), 0);
    assert!(sm.audit_kinds().contains(&"fanout_expired".to_owned()));
}

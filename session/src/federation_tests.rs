//! Unit tests of federation in the state machine: outbox entries committed with the local
//! change, the outbox bound, acknowledgements, and peer operations applied once and never for
//! a replayed nonce.

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

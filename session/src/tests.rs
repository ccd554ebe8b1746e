//! Unit tests of the pure state machine: every policy and on_limit mode, verify and invalidate,
//! expiry with given times, and determinism (property-tested).

use std::time::Duration;

use sessync_proto::{Device, EndReason, OnLimit, Policy, SessionId, SessionState};

use super::testkit::*;
use super::*;

#[test]
fn create_under_limit_is_active() {
    let mut sm = Sm::new(policy(2, OnLimit::Deny));
    assert!(matches!(
        sm.create(1, "a", 1),
        Outcome::Created {
            replayed: false,
            ..
        }
    ));
    assert_eq!(sm.state(1), (SessionState::Active, None));
    assert!(sm.audit_kinds().contains(&"session_created".to_owned()));
}

#[test]
fn deny_refuses_at_limit_and_lists_active() {
    let mut sm = Sm::new(policy(2, OnLimit::Deny));
    sm.create(1, "a", 1);
    sm.create(2, "a", 2);
    match sm.create(3, "a", 3) {
        Outcome::LimitReached { active } => {
            assert_eq!(active.len(), 2);
            assert_eq!(active[0].id, sid(2), "newest first");
        }
        o => panic!("expected LimitReached, got {o:?}"),
    }
    assert!(sm.store.get(&sid(3)).is_none(), "nothing created");
    assert_eq!(sm.active("a"), 2);
    // Another user is not affected.
    assert!(matches!(sm.create(4, "b", 4), Outcome::Created { .. }));
    assert!(sm.audit_kinds().contains(&"limit_denied".to_owned()));
}

#[test]
fn block_new_creates_blocked_and_verify_activates_it() {
    let mut sm = Sm::new(policy(1, OnLimit::BlockNew));
    sm.create(1, "a", 1);
    sm.create(2, "a", 2);
    assert_eq!(sm.state(2), (SessionState::Blocked, None));
    assert_eq!(sm.active("a"), 1);
    let o = sm.run(Command::Verify(UserOp {
        at: at(3),
        user_id: user("a"),
        session_id: Some(sid(2)),
        fanout: None,
    }));
    assert_eq!(
        o,
        Outcome::Verified {
            verified: sid(2),
            ended: 1
        }
    );
    assert_eq!(sm.state(2), (SessionState::Active, None));
    assert_eq!(
        sm.state(1),
        (SessionState::Ended, Some(EndReason::Superseded))
    );
    assert_eq!(sm.active("a"), 1);
}

#[test]
fn evict_oldest_ends_least_recently_used() {
    let mut sm = Sm::new(policy(2, OnLimit::EvictOldest));
    sm.create(1, "a", 1);
    sm.create(2, "a", 2);
    // Session 1 is used later than 2, so 2 is the least recently used.
    sm.run(Command::Touch(Touch {
        at: at(5000),
        touches: vec![(sid(1), at(5000))],
    }));
    sm.create(3, "a", 6000);
    assert_eq!(sm.state(2), (SessionState::Ended, Some(EndReason::Evicted)));
    assert_eq!(sm.state(1).0, SessionState::Active);
    assert_eq!(sm.state(3).0, SessionState::Active);
    assert_eq!(sm.active("a"), 2);
}

#[test]
fn zero_limit_means_unlimited() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    for n in 1..=20 {
        sm.create(n, "a", u64::from(n));
    }
    assert_eq!(sm.active("a"), 20);
}

#[test]
fn verify_defaults_to_newest_and_reports_missing() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    sm.create(1, "a", 1);
    sm.create(2, "a", 2);
    sm.create(3, "a", 3);
    let o = sm.run(Command::Verify(UserOp {
        at: at(4),
        user_id: user("a"),
        session_id: None,
        fanout: None,
    }));
    assert_eq!(
        o,
        Outcome::Verified {
            verified: sid(3),
            ended: 2
        }
    );
    assert_eq!(sm.state(1).1, Some(EndReason::Superseded));
    let o = sm.run(Command::Verify(UserOp {
        at: at(5),
        user_id: user("a"),
        session_id: Some(sid(1)),
        fanout: None,
    }));
    assert!(
        matches!(o, Outcome::NotFound { .. }),
        "an ended session cannot be verified"
    );
    let o = sm.run(Command::Verify(UserOp {
        at: at(5),
        user_id: user("nobody"),
        session_id: None,
        fanout: None,
    }));
    assert!(matches!(o, Outcome::NotFound { .. }));
}

#[test]
fn invalidate_one_or_all() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    sm.create(1, "a", 1);
    sm.create(2, "a", 2);
    sm.create(3, "a", 3);
    sm.create(4, "b", 4);
    let o = sm.run(Command::Invalidate(UserOp {
        at: at(5),
        user_id: user("a"),
        session_id: Some(sid(2)),
        fanout: None,
    }));
    assert_eq!(o, Outcome::Invalidated { ended: 1 });
    assert_eq!(
        sm.state(2),
        (SessionState::Ended, Some(EndReason::Invalidated))
    );
    let o = sm.run(Command::Invalidate(UserOp {
        at: at(6),
        user_id: user("a"),
        session_id: Some(sid(4)),
        fanout: None,
    }));
    assert!(
        matches!(o, Outcome::NotFound { .. }),
        "b's session is not a's"
    );
    let o = sm.run(Command::Invalidate(UserOp {
        at: at(7),
        user_id: user("a"),
        session_id: None,
        fanout: None,
    }));
    assert_eq!(o, Outcome::Invalidated { ended: 2 });
    assert_eq!(sm.active("a"), 0);
    assert_eq!(sm.state(4).0, SessionState::Active);
    // Again: nothing left to end, still fine.
    let o = sm.run(Command::Invalidate(UserOp {
        at: at(8),
        user_id: user("a"),
        session_id: None,
        fanout: None,
    }));
    assert_eq!(o, Outcome::Invalidated { ended: 0 });
}

#[test]
fn end_is_idempotent_and_unknown_is_not_found() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    sm.create(1, "a", 1);
    let end = |sm: &mut Sm, t| {
        sm.run(Command::End(End {
            at: at(t),
            session_id: sid(1),
            reason: EndReason::Logout,
        }))
    };
    let Outcome::Ended { session } = end(&mut sm, 10) else {
        panic!()
    };
    assert_eq!(session.end_reason, Some(EndReason::Logout));
    assert_eq!(session.ended_at, Some(at(10)));
    let before = sm.muts.len();
    let Outcome::Ended { session } = end(&mut sm, 20) else {
        panic!()
    };
    assert_eq!(session.ended_at, Some(at(10)), "the first end stands");
    assert_eq!(sm.muts.len(), before, "a repeated end changes nothing");
    let o = sm.run(Command::End(End {
        at: at(30),
        session_id: sid(9),
        reason: EndReason::Logout,
    }));
    assert!(matches!(o, Outcome::NotFound { .. }));
}

#[test]
fn idle_expiry_at_exact_times() {
    let p = policy(0, OnLimit::Deny);
    let idle_end = 600_000 + 2_000; // idle_timeout + touch_interval after creation at 0
    let mut sm = Sm::new(p.clone());
    sm.create(1, "a", 0);
    let s = sm.store.get(&sid(1)).unwrap().clone();
    assert!(s.is_valid_at(at(idle_end - 1), &p));
    assert!(!s.is_valid_at(at(idle_end), &p));
    sm.run(Command::Expire(Expire {
        at: at(idle_end - 1),
    }));
    assert_eq!(sm.state(1).0, SessionState::Active);
    sm.run(Command::Expire(Expire { at: at(idle_end) }));
    assert_eq!(
        sm.state(1),
        (SessionState::Ended, Some(EndReason::IdleTimeout))
    );
    assert_eq!(sm.store.get(&sid(1)).unwrap().ended_at, Some(at(idle_end)));
}

#[test]
fn touches_extend_idle_but_not_lifetime() {
    let p = policy(0, OnLimit::Deny);
    let mut sm = Sm::new(p);
    sm.create(1, "a", 0);
    // Touch every 5 minutes for the whole hour: idle never ends it, the lifetime does.
    let mut t = 0;
    while t < 3_600_000 {
        t += 300_000;
        sm.run(Command::Touch(Touch {
            at: at(t),
            touches: vec![(sid(1), at(t))],
        }));
        sm.run(Command::Expire(Expire { at: at(t) }));
    }
    assert_eq!(
        sm.state(1),
        (SessionState::Ended, Some(EndReason::MaxLifetime))
    );
    assert_eq!(sm.store.get(&sid(1)).unwrap().ended_at, Some(at(3_600_000)));
}

#[test]
fn touch_never_ends_a_session_earlier_than_idle_timeout_after_it() {
    // A touch within touch_interval of the last replicated one is not replicated; the idle end
    // still lies at least idle_timeout after it.
    let p = policy(0, OnLimit::Deny);
    let mut sm = Sm::new(p.clone());
    sm.create(1, "a", 0);
    let touch_at = at(1_999); // just under touch_interval: coalesced away, nothing replicated
    let s = sm.store.get(&sid(1)).unwrap();
    assert!(s.idle_end(&p) >= touch_at.plus(p.idle_timeout));
}

#[test]
fn create_ends_the_users_expired_sessions_first() {
    let mut sm = Sm::new(policy(1, OnLimit::Deny));
    sm.create(1, "a", 0);
    // Past session 1's idle end, but before any Expire sweep ran.
    assert!(matches!(
        sm.create(2, "a", 700_000),
        Outcome::Created { .. }
    ));
    assert_eq!(
        sm.state(1),
        (SessionState::Ended, Some(EndReason::IdleTimeout))
    );
}

#[test]
fn ended_sessions_are_removed_after_retention() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    sm.create(1, "a", 0);
    sm.run(Command::End(End {
        at: at(10),
        session_id: sid(1),
        reason: EndReason::Logout,
    }));
    sm.run(Command::Expire(Expire {
        at: at(10 + 86_400_000 - 1),
    }));
    assert!(sm.store.get(&sid(1)).is_some());
    sm.run(Command::Expire(Expire {
        at: at(10 + 86_400_000),
    }));
    assert!(sm.store.get(&sid(1)).is_none());
    assert!(sm.store.by_token(&TokenHash::of("token-1")).is_none());
}

#[test]
fn idempotent_create_replays_the_same_session() {
    let mut sm = Sm::new(policy(1, OnLimit::Deny));
    let create = |sm: &mut Sm, n: u8| {
        sm.run(Command::Create(Create {
            at: at(u64::from(n)),
            session_id: sid(n),
            token_hash: TokenHash::of("t"),
            user_id: user("a"),
            device: Device::default(),
            origin: None,
            idempotency_key: Some("login-42".to_owned()),
            by: Some("app".to_owned()),
        }))
    };
    assert!(matches!(
        create(&mut sm, 1),
        Outcome::Created {
            replayed: false,
            ..
        }
    ));
    match create(&mut sm, 2) {
        Outcome::Created {
            session,
            replayed: true,
        } => assert_eq!(session.id, sid(1)),
        o => panic!("expected a replay, got {o:?}"),
    }
    assert!(sm.store.get(&sid(2)).is_none());
}

#[test]
fn policy_change_applies_to_existing_sessions() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    sm.create(1, "a", 0);
    let shorter = Policy {
        idle_timeout: Duration::from_secs(60),
        ..policy(0, OnLimit::Deny)
    };
    sm.run(Command::SetPolicy(SetPolicy {
        at: at(1),
        policy: shorter,
        by: None,
    }));
    sm.run(Command::Expire(Expire { at: at(62_000) }));
    assert_eq!(
        sm.state(1),
        (SessionState::Ended, Some(EndReason::IdleTimeout))
    );
}

#[test]
fn a_touch_accepted_before_the_deadline_counts_even_if_applied_after_it() {
    let p = policy(0, OnLimit::Deny);
    let mut sm = Sm::new(p.clone());
    sm.create(1, "a", 0);
    let deadline = 600_000 + 2_000;
    sm.run(Command::Touch(Touch {
        at: at(deadline + 50),
        touches: vec![(sid(1), at(deadline - 10))],
    }));
    let s = sm.store.get(&sid(1)).unwrap();
    assert_eq!(s.last_seen_at, at(deadline - 10));
    assert!(s.idle_end(&p) >= at(deadline - 10).plus(p.idle_timeout));
    // A touch accepted after the deadline does not revive the session.
    sm.run(Command::Touch(Touch {
        at: at(3 * deadline),
        touches: vec![(sid(1), at(3 * deadline))],
    }));
    assert_eq!(
        sm.store.get(&sid(1)).unwrap().last_seen_at,
        at(deadline - 10)
    );
}

#[test]
fn lowering_the_limit_evicts_the_least_recently_used() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    for n in 1..=5 {
        sm.create(n, "a", u64::from(n));
    }
    sm.create(6, "b", 6);
    sm.run(Command::SetPolicy(SetPolicy {
        at: at(10),
        policy: policy(3, OnLimit::Deny),
        by: None,
    }));
    assert_eq!(sm.active("a"), 3);
    assert_eq!(sm.state(1), (SessionState::Ended, Some(EndReason::Evicted)));
    assert_eq!(sm.state(2), (SessionState::Ended, Some(EndReason::Evicted)));
    assert_eq!(sm.state(5).0, SessionState::Active);
    assert_eq!(sm.active("b"), 1);
}

#[test]
fn cluster_time_never_runs_backwards() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    sm.create(1, "a", 5_000);
    sm.create(2, "a", 1_000); // stamped earlier, applied later
    assert_eq!(sm.store.get(&sid(2)).unwrap().created_at, at(5_000));
    assert_eq!(sm.store.clock(), at(5_000));
}

#[test]
fn a_longer_policy_never_revives_a_session_past_its_old_deadline() {
    let p = policy(0, OnLimit::Deny);
    let idle_end = 600_000 + 2_000;
    let mut sm = Sm::new(p.clone());
    sm.create(1, "a", 0);
    sm.create(2, "a", idle_end - 1_000);
    let longer = Policy {
        idle_timeout: Duration::from_secs(7_200),
        max_lifetime: Duration::from_secs(86_400),
        ..p
    };
    // No Expire ran between the deadline and the policy change.
    sm.run(Command::SetPolicy(SetPolicy {
        at: at(idle_end + 50_000),
        policy: longer,
        by: None,
    }));
    assert_eq!(
        sm.state(1),
        (SessionState::Ended, Some(EndReason::IdleTimeout))
    );
    assert_eq!(sm.store.get(&sid(1)).unwrap().ended_at, Some(at(idle_end)));
    assert_eq!(
        sm.state(2),
        (SessionState::Active, None),
        "live under the old policy"
    );
}

#[test]
fn a_state_change_is_stamped_with_its_position_and_a_touch_is_not() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    sm.create(1, "a", 10);
    let created = sm.index;
    sm.create(2, "b", 20);
    let pos = |sm: &Sm, n| sm.store.get(&sid(n)).unwrap().changed.unwrap();
    assert_eq!((pos(&sm, 1).index, pos(&sm, 1).at), (created, at(10)));
    sm.run(Command::Touch(Touch {
        at: at(5000),
        touches: vec![(sid(1), at(5000))],
    }));
    assert_eq!(
        pos(&sm, 1).index,
        created,
        "a touch is not a change of state"
    );
    sm.run(Command::End(End {
        at: at(6000),
        session_id: sid(1),
        reason: EndReason::Logout,
    }));
    let ended = sm.index;
    assert_eq!((pos(&sm, 1).index, pos(&sm, 1).at), (ended, at(6000)));
    // What a subscriber resuming after the create has missed: session 2, then 1's end.
    let after = |i, u: Option<&str>, max| {
        let u = u.map(user);
        sm.store
            .changed_after(&ChangeCursor::after_index(i), u.as_ref(), max)
            .iter()
            .map(|s| s.id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(after(created, None, 10), vec![sid(2), sid(1)]);
    assert_eq!(
        after(created, None, 1),
        vec![sid(2)],
        "the oldest first, up to max"
    );
    assert_eq!(after(created, Some("a"), 10), vec![sid(1)]);
    assert_eq!(after(ended, None, 10), Vec::<SessionId>::new());
}

//! Unit tests of logins under the bounds that keep a user's state small and a token private:
//! idempotent replays (the session as it is now, only to the same API key, only within the
//! window) and the cap on blocked sessions.

use std::time::Duration;

use sessync_proto::{Device, EndReason, OnLimit, Policy, SessionState};

use super::testkit::*;
use super::*;

#[test]
fn an_idempotent_replay_past_the_deadline_shows_the_session_ended() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    let create = |t| {
        Command::Create(Create {
            at: at(t),
            session_id: sid(t as u8),
            token_hash: TokenHash::of("token-k"),
            user_id: user("a"),
            device: Device::default(),
            origin: None,
            idempotency_key: Some("key-1".to_owned()),
            by: Some("app".to_owned()),
        })
    };
    assert!(matches!(
        sm.run(create(0)),
        Outcome::Created {
            replayed: false,
            ..
        }
    ));
    match sm.run(create(700_000)) {
        Outcome::Created {
            session,
            replayed: true,
        } => {
            assert_eq!(session.id, sid(0));
            assert_eq!(session.state, SessionState::Ended);
            assert_eq!(session.end_reason, Some(EndReason::IdleTimeout));
        }
        o => panic!("expected the replayed session, got {o:?}"),
    }
    assert_eq!(sm.state(0).0, SessionState::Ended, "and the state says so");
}

#[test]
fn an_idempotency_key_replays_only_to_the_same_api_key_and_only_within_the_window() {
    let mut sm = Sm::new(Policy {
        idempotency_window: Duration::from_secs(60),
        ..policy(0, OnLimit::Deny)
    });
    let create = |t: u64, n: u8, by: Option<&str>| {
        Command::Create(Create {
            at: at(t),
            session_id: sid(n),
            token_hash: TokenHash::of(&format!("token-{n}")),
            user_id: user("a"),
            device: Device::default(),
            origin: None,
            idempotency_key: Some("key-1".to_owned()),
            by: by.map(str::to_owned),
        })
    };
    assert!(matches!(
        sm.run(create(0, 1, Some("app"))),
        Outcome::Created {
            replayed: false,
            ..
        }
    ));
    // Another API key (or none) does not get the session (nor its token) back.
    for by in [Some("other-app"), None] {
        match sm.run(create(1_000, 2, by)) {
            Outcome::Refused { message } => assert!(message.contains("idempotency_key")),
            o => panic!("expected a refusal for {by:?}, got {o:?}"),
        }
    }
    assert!(sm.store.get(&sid(2)).is_none());
    // The same key within the window: a replay.
    assert!(matches!(
        sm.run(create(59_000, 3, Some("app"))),
        Outcome::Created { replayed: true, session } if session.id == sid(1)
    ));
    // Past the window the key is forgotten: a new session, which the key now names.
    assert!(matches!(
        sm.run(create(61_000, 4, Some("app"))),
        Outcome::Created { replayed: false, session } if session.id == sid(4)
    ));
    assert!(matches!(
        sm.run(create(62_000, 5, Some("app"))),
        Outcome::Created { replayed: true, session } if session.id == sid(4)
    ));
}

#[test]
fn blocked_sessions_per_user_are_capped_by_max_blocked_sessions() {
    let mut sm = Sm::new(Policy {
        max_blocked_sessions: 3,
        ..policy(1, OnLimit::BlockNew)
    });
    for n in 1..=6u8 {
        sm.run(Command::Create(Create {
            at: at(u64::from(n)),
            session_id: sid(n),
            token_hash: TokenHash::of(&format!("t{n}")),
            user_id: user("a"),
            device: Device::default(),
            origin: None,
            idempotency_key: None,
            by: Some("app".to_owned()),
        }));
    }
    // One active, then blocked ones: never more than three; the oldest blocked ended first.
    let state = |n: u8| {
        let s = sm.store.get(&sid(n)).unwrap();
        (s.state, s.end_reason)
    };
    assert_eq!(state(1), (SessionState::Active, None));
    assert_eq!(state(2), (SessionState::Ended, Some(EndReason::Evicted)));
    assert_eq!(state(3), (SessionState::Ended, Some(EndReason::Evicted)));
    for n in 4..=6 {
        assert_eq!(state(n), (SessionState::Blocked, None), "session {n}");
    }
    // The ended ones are out of the user's live index (what commands iterate).
    assert_eq!(sm.store.live_sessions(&user("a")).count(), 4);
    assert_eq!(sm.store.user_sessions(&user("a")).count(), 6);
}

#[test]
fn a_batch_applies_its_commands_in_order_as_if_each_were_an_entry() {
    let create = |n: u8, t: u64| {
        Command::Create(Create {
            at: at(t),
            session_id: sid(n),
            token_hash: TokenHash::of(&format!("token-{n}")),
            user_id: user("a"),
            device: Device::default(),
            origin: None,
            idempotency_key: None,
            by: Some("app".to_owned()),
        })
    };
    let commands = vec![create(1, 10), create(2, 20), create(3, 30)];
    let mut one_by_one = Sm::new(policy(2, OnLimit::Deny));
    let alone: Vec<Outcome> = commands.iter().map(|c| one_by_one.run(c.clone())).collect();
    let mut batched = Sm::new(policy(2, OnLimit::Deny));
    let Outcome::Batch { outcomes } = batched.run(Command::Batch(Batch {
        commands: commands.clone(),
    })) else {
        panic!("a batch answers a batch of outcomes");
    };
    let kind = |o: &Outcome| std::mem::discriminant(o);
    assert_eq!(outcomes.len(), 3);
    assert!(
        matches!(outcomes[2], Outcome::LimitReached { .. }),
        "the limit holds inside a batch"
    );
    assert_eq!(
        outcomes.iter().map(kind).collect::<Vec<_>>(),
        alone.iter().map(kind).collect::<Vec<_>>()
    );
    assert_eq!(batched.active("a"), one_by_one.active("a"));
    assert_eq!(batched.store.clock(), one_by_one.store.clock());

    // A batch inside a batch is refused as a whole; the commands around it still apply.
    let Outcome::Batch { outcomes } = batched.run(Command::Batch(Batch {
        commands: vec![Command::Batch(Batch { commands }), create(4, 40)],
    })) else {
        panic!("a batch answers a batch of outcomes");
    };
    assert!(matches!(outcomes[0], Outcome::Refused { .. }));
    assert!(matches!(outcomes[1], Outcome::LimitReached { .. }));
}

/// A replay hands out a fresh token: `IssueToken` (the new hash made by the leader, in the
/// command) opens the session beside the token an earlier answer gave, which keeps working (a
/// retried create's answers may arrive in any order); applied to two replicas it makes the
/// same change, and a session that has ended keeps what it had.
#[test]
fn a_replay_command_adds_a_token_deterministically() {
    let commands = [
        Command::Create(Create {
            at: at(0),
            session_id: sid(1),
            token_hash: TokenHash::of("first"),
            user_id: user("a"),
            device: Device::default(),
            origin: None,
            idempotency_key: Some("key-1".to_owned()),
            by: Some("app".to_owned()),
        }),
        Command::IssueToken(IssueToken {
            at: at(1_000),
            session_id: sid(1),
            token_hash: TokenHash::of("fresh"),
        }),
    ];
    let run = || {
        let mut sm = Sm::new(policy(0, OnLimit::Deny));
        let outcomes: Vec<Outcome> = commands.iter().map(|c| sm.run(c.clone())).collect();
        (sm, outcomes)
    };
    let (sm, outcomes) = run();
    match &outcomes[1] {
        Outcome::Created {
            session,
            replayed: true,
        } => assert_eq!(session.replay_tokens, [TokenHash::of("fresh")]),
        o => panic!("expected the replayed session with its new token, got {o:?}"),
    }
    assert_eq!(
        sm.store.by_token(&TokenHash::of("first")).map(|s| &s.id),
        Some(&sid(1)),
        "the first answer's token still works"
    );
    assert_eq!(
        sm.store.by_token(&TokenHash::of("fresh")).map(|s| &s.id),
        Some(&sid(1))
    );
    assert_eq!(sm.state(1), (SessionState::Active, None));
    assert!(sm
        .audit_kinds()
        .contains(&"session_token_issued".to_owned()));
    // Deterministic: another replica applying the same commands makes the same changes.
    let (again, outcomes_again) = run();
    assert_eq!(outcomes, outcomes_again);
    assert_eq!(sm.muts, again.muts);
    // The command's JSON in the log, as every replica reads it.
    let json = serde_json::to_value(&commands[1]).unwrap();
    assert_eq!(json["op"], "issue_token");
    assert_eq!(
        serde_json::from_value::<Command>(json).unwrap(),
        commands[1]
    );

    // An ended session keeps its hash: a replay of it hands out nothing.
    let mut sm = sm;
    let late = Command::IssueToken(IssueToken {
        at: at(700_000),
        session_id: sid(1),
        token_hash: TokenHash::of("late"),
    });
    match sm.run(late) {
        Outcome::Created {
            session,
            replayed: true,
        } => {
            assert_eq!(session.state, SessionState::Ended);
            assert_eq!(session.replay_tokens, [TokenHash::of("fresh")]);
        }
        o => panic!("expected the ended session, got {o:?}"),
    }
    assert!(sm.store.by_token(&TokenHash::of("late")).is_none());
}

/// At most `MAX_REPLAY_TOKENS` replays' tokens are kept: past it the oldest replay's stops
/// working, never the create's own.
#[test]
fn replay_tokens_are_bounded_oldest_first() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    sm.create(1, "a", 0);
    let n = crate::record::MAX_REPLAY_TOKENS + 2;
    for i in 0..n {
        sm.run(Command::IssueToken(IssueToken {
            at: at(10 + i as u64),
            session_id: sid(1),
            token_hash: TokenHash::of(&format!("replay-{i}")),
        }));
    }
    let s = sm.store.get(&sid(1)).unwrap();
    assert_eq!(s.replay_tokens.len(), crate::record::MAX_REPLAY_TOKENS);
    assert!(
        sm.store.by_token(&s.token_hash).is_some(),
        "the create's own works"
    );
    assert!(sm.store.by_token(&TokenHash::of("replay-0")).is_none());
    assert!(sm.store.by_token(&TokenHash::of("replay-1")).is_none());
    let newest = TokenHash::of(&format!("replay-{}", n - 1));
    assert!(sm.store.by_token(&newest).is_some());
}

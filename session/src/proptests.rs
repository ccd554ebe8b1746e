//! Property tests of the state machine: under any sequence of commands no user holds more
//! active sessions than the limit, and the same commands always give the same state.

use proptest::prelude::*;
use sessync_proto::{Device, EndReason, OnLimit, Timestamp};

use super::testkit::*;
use super::*;

// ---- property tests: invariants under any sequence of commands ----

#[derive(Clone, Debug)]
enum Op {
    Create(u8, u8),
    Touch(u8),
    End(u8),
    Verify(u8, Option<u8>),
    Invalidate(u8, Option<u8>),
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..40, 0u8..3).prop_map(|(s, u)| Op::Create(s, u)),
        2 => (0u8..40).prop_map(Op::Touch),
        1 => (0u8..40).prop_map(Op::End),
        1 => (0u8..3, proptest::option::of(0u8..40)).prop_map(|(u, s)| Op::Verify(u, s)),
        1 => (0u8..3, proptest::option::of(0u8..40)).prop_map(|(u, s)| Op::Invalidate(u, s)),
        1 => Just(Op::Expire),
    ]
}

fn to_command(op: &Op, t: Timestamp) -> Command {
    let u = |n: u8| user(&format!("user-{n}"));
    match op {
        Op::Create(s, n) => Command::Create(Create {
            at: t,
            session_id: sid(*s),
            token_hash: TokenHash::of(&format!("tok-{s}")),
            user_id: u(*n),
            device: Device::default(),
            origin: None,
            idempotency_key: None,
            by: Some("app".to_owned()),
        }),
        Op::Touch(s) => Command::Touch(Touch {
            at: t,
            touches: vec![(sid(*s), t)],
        }),
        Op::End(s) => Command::End(End {
            at: t,
            session_id: sid(*s),
            reason: EndReason::Logout,
        }),
        Op::Verify(n, s) => Command::Verify(UserOp {
            at: t,
            user_id: u(*n),
            session_id: s.map(sid),
            fanout: None,
        }),
        Op::Invalidate(n, s) => Command::Invalidate(UserOp {
            at: t,
            user_id: u(*n),
            session_id: s.map(sid),
            fanout: None,
        }),
        Op::Expire => Command::Expire(Expire { at: t }),
    }
}

fn on_limit() -> impl Strategy<Value = OnLimit> {
    prop_oneof![
        Just(OnLimit::Deny),
        Just(OnLimit::BlockNew),
        Just(OnLimit::EvictOldest)
    ]
}

proptest! {
    #[test]
    fn never_more_active_than_the_limit(
        limit in 1u32..4,
        mode in on_limit(),
        ops in proptest::collection::vec((op(), 0u64..400_000), 1..120),
    ) {
        let mut sm = Sm::new(policy(limit, mode));
        let mut t = 0;
        for (op, dt) in &ops {
            t += dt;
            sm.run(to_command(op, at(t)));
            for n in 0..3u8 {
                let u = format!("user-{n}");
                let active_now = sm.store.user_sessions(&user(&u))
                    .filter(|s| s.is_valid_at(at(t), sm.store.policy()))
                    .count();
                prop_assert!(active_now <= limit as usize, "{u} has {active_now} > {limit}");
                prop_assert!(sm.active(&u) <= limit as usize);
            }
        }
    }

    #[test]
    fn same_commands_give_identical_state(
        mode in on_limit(),
        ops in proptest::collection::vec((op(), 0u64..400_000), 1..80),
    ) {
        let mut a = Sm::new(policy(2, mode));
        let mut b = Sm::new(policy(2, mode));
        let mut t = 0;
        for (op, dt) in &ops {
            t += dt;
            let cmd = to_command(op, at(t));
            prop_assert_eq!(a.run(cmd.clone()), b.run(cmd));
        }
        prop_assert_eq!(&a.muts, &b.muts);
        let dump = |s: &SessionStore| serde_json::to_string(&s.all().collect::<Vec<_>>()).unwrap();
        prop_assert_eq!(dump(&a.store), dump(&b.store));
    }
}

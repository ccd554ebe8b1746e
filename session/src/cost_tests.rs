//! What a user's command costs: the records a create, verify or invalidate visits follow the
//! user's live sessions, never the ended ones retention still keeps (issue 10, item 6).

use sessync_proto::{Device, OnLimit, Policy, SessionId, SessionState};

use super::testkit::*;
use super::*;

/// Ended sessions kept for the user: enough that visiting them shows at once.
const KEPT: u16 = 3000;

/// A session id of its own (the testkit's `sid` has 256).
fn nth(n: u16) -> SessionId {
    let mut bytes = [0xab; 16];
    bytes[..2].copy_from_slice(&n.to_be_bytes());
    SessionId::from_random(bytes)
}

fn create(n: u16, t: u64) -> Command {
    Command::Create(Create {
        at: at(t),
        session_id: nth(n),
        token_hash: TokenHash::of(&format!("cost-{n}")),
        user_id: user("a"),
        device: Device::default(),
        origin: None,
        idempotency_key: None,
        by: Some("app".to_owned()),
    })
}

fn user_op(t: u64, session_id: Option<SessionId>) -> UserOp {
    UserOp {
        at: at(t),
        user_id: user("a"),
        session_id,
        fanout: None,
    }
}

/// The user's live sessions by their records, sorted: what the live index must hold.
fn live_by_record(sm: &Sm) -> Vec<SessionId> {
    let mut v: Vec<SessionId> = sm
        .store
        .user_sessions(&user("a"))
        .filter(|s| s.is_live())
        .map(|s| s.id.clone())
        .collect();
    v.sort();
    v
}

/// Runs `cmd` and answers what it visited of the user's sessions, checking that the live index
/// still holds exactly the live sessions.
fn visits(sm: &mut Sm, cmd: Command) -> (Outcome, usize) {
    sm.store.take_visited();
    let o = sm.run(cmd);
    let visited = sm.store.take_visited();
    assert_eq!(sm.store.live_index(&user("a")), live_by_record(sm));
    (o, visited)
}

#[test]
fn a_users_commands_do_not_visit_the_ended_sessions_retention_keeps() {
    // Unlimited while the history is made; a day of retention keeps every ended session.
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    let half = KEPT / 2;
    for n in 0..half {
        sm.run(create(n, u64::from(n)));
    }
    // Half ended by an invalidate ...
    let o = sm.run(Command::Invalidate(user_op(u64::from(half), None)));
    assert_eq!(
        o,
        Outcome::Invalidated {
            ended: u32::from(half)
        }
    );
    // ... and half by time (idle timeout 10 min): the leader's sweep ends them.
    for n in half..KEPT {
        sm.run(create(n, 10_000 + u64::from(n)));
    }
    let later = 10_000 + u64::from(KEPT) + 700_000;
    sm.run(Command::Expire(Expire { at: at(later) }));
    assert_eq!(
        sm.store.user_sessions(&user("a")).count(),
        usize::from(KEPT)
    );
    assert!(sm.store.live_index(&user("a")).is_empty());

    // Now a limit of 2 with blocked sessions over it, so a create takes every path of
    // admission (the active ones counted, the blocked ones under their cap).
    sm.run(Command::SetPolicy(SetPolicy {
        at: at(later),
        policy: Policy {
            max_blocked_sessions: 3,
            ..policy(2, OnLimit::BlockNew)
        },
        by: None,
    }));
    let mut t = later;
    let mut next = KEPT;
    let mut step = |sm: &mut Sm| {
        t += 1;
        next += 1;
        visits(sm, create(next, t))
    };
    for _ in 0..5 {
        step(&mut sm);
    }
    let live = sm.store.live_index(&user("a")).len();
    assert_eq!(live, 5, "two active, three blocked");

    // Each command looks at the live sessions a few times (expiry, the limit, the blocked
    // cap): a small multiple of 5, never the 3000 ended ones.
    let bound = 10 * live;
    let (o, visited) = step(&mut sm);
    assert!(matches!(o, Outcome::Created { .. }), "{o:?}");
    assert!(visited <= bound, "a create visited {visited} sessions");

    let (o, visited) = visits(&mut sm, Command::Verify(user_op(t + 1, None)));
    assert!(matches!(o, Outcome::Verified { .. }), "{o:?}");
    assert!(visited <= bound, "a verify visited {visited} sessions");
    assert_eq!(
        sm.store
            .live_sessions(&user("a"))
            .map(|s| s.state)
            .collect::<Vec<_>>(),
        [SessionState::Active]
    );

    let (_, visited) = visits(&mut sm, create(next + 1, t + 2));
    assert!(visited <= bound, "a create visited {visited} sessions");
    let (o, visited) = visits(&mut sm, Command::Invalidate(user_op(t + 3, None)));
    assert_eq!(o, Outcome::Invalidated { ended: 2 });
    assert!(visited <= bound, "an invalidate visited {visited} sessions");

    // Past every deadline, a create first ends what time has ended: still only live ones.
    sm.run(create(next + 2, t + 4));
    let (_, visited) = visits(&mut sm, create(next + 3, t + 4 + 2 * 3_600_000));
    assert!(visited <= bound, "a create after expiry visited {visited}");
    assert_eq!(sm.store.live_index(&user("a")), [nth(next + 3)]);
}

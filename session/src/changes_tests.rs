//! What an event subscriber's catch-up costs and returns: the sessions changed after a
//! position, read by change position (the store's change index), never by visiting every
//! session the store keeps.

use sessync_proto::{Device, EndReason, OnLimit, SessionId, SessionState};

use super::testkit::*;
use super::*;

/// Sessions kept: enough that visiting them all shows at once.
const KEPT: u16 = 3000;

fn nth(n: u16) -> SessionId {
    let mut bytes = [0xcd; 16];
    bytes[..2].copy_from_slice(&n.to_be_bytes());
    SessionId::from_random(bytes)
}

fn create(n: u16, u: &str, t: u64) -> Command {
    Command::Create(Create {
        at: at(t),
        session_id: nth(n),
        token_hash: TokenHash::of(&format!("changes-{n}")),
        user_id: user(u),
        device: Device::default(),
        origin: None,
        idempotency_key: None,
        by: Some("app".to_owned()),
    })
}

fn end(n: u16, t: u64) -> Command {
    Command::End(End {
        at: at(t),
        session_id: nth(n),
        reason: EndReason::Logout,
    })
}

#[test]
fn a_catch_up_visits_only_the_sessions_changed_after_the_position() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    for n in 0..KEPT {
        sm.run(create(n, &format!("u{n}"), u64::from(n)));
    }
    let position = sm.index;
    // Three sessions change after the position, in this order.
    for (i, n) in [7u16, 2999, 1500].into_iter().enumerate() {
        sm.run(end(n, 10_000 + i as u64));
    }
    sm.store.take_visited();
    let page = sm
        .store
        .changed_after(&ChangeCursor::after_index(position), None, 500);
    let got: Vec<SessionId> = page.iter().map(|s| s.id.clone()).collect();
    assert_eq!(
        got,
        [nth(7), nth(2999), nth(1500)],
        "in the order they changed"
    );
    assert!(page.iter().all(|s| s.state == SessionState::Ended));
    let visited = sm.store.take_visited();
    assert!(
        visited <= 3,
        "a catch-up of 3 changes visited {visited} of {KEPT} sessions"
    );
}

#[test]
fn a_catch_up_page_cut_inside_one_entry_resumes_within_it() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    for n in 0..10 {
        sm.run(create(n, "a", u64::from(n)));
    }
    let position = sm.index;
    // One entry ends all ten: ten changes at one position.
    sm.run(Command::Invalidate(UserOp {
        at: at(100),
        user_id: user("a"),
        session_id: None,
        fanout: None,
    }));
    for filter in [None, Some(user("a"))] {
        // Pages of 4, each after the last one sent, as a subscriber reads them.
        let mut cursor = ChangeCursor::after_index(position);
        let mut got = Vec::new();
        loop {
            let page = sm.store.changed_after(&cursor, filter.as_ref(), 4);
            let full = page.len() == 4;
            for s in page {
                cursor = ChangeCursor::after(s.changed.unwrap().index, s.id.clone());
                got.push(s.id.clone());
            }
            if !full {
                break;
            }
        }
        got.sort();
        let mut want: Vec<SessionId> = (0..10).map(nth).collect();
        want.sort();
        assert_eq!(got, want, "every change once (user filter: {filter:?})");
    }
}

#[test]
fn the_change_index_follows_every_put_and_delete() {
    let mut sm = Sm::new(policy(0, OnLimit::Deny));
    for n in 0..20 {
        sm.run(create(n, &format!("u{}", n % 3), u64::from(n)));
    }
    for n in [3u16, 11, 3] {
        sm.run(end(n, 1000));
    }
    // A store loaded from the records alone (as at open, or a snapshot install) answers alike.
    let mut loaded = SessionStore::new();
    for s in sm.store.all() {
        loaded.insert(Record::Session(s.clone()));
    }
    let all = |st: &SessionStore| -> Vec<(u64, SessionId)> {
        st.changed_after(&ChangeCursor::default(), None, usize::MAX)
            .into_iter()
            .map(|s| (s.changed.unwrap().index, s.id.clone()))
            .collect()
    };
    let want = {
        let mut v: Vec<(u64, SessionId)> = sm
            .store
            .all()
            .map(|s| (s.changed.unwrap().index, s.id.clone()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        all(&sm.store),
        want,
        "one entry per session, at its last change"
    );
    assert_eq!(all(&loaded), want);
    // Per user, the same order.
    let of_u1: Vec<_> = want
        .iter()
        .filter(|(_, id)| sm.store.get(id).unwrap().user_id == user("u1"))
        .cloned()
        .collect();
    let got: Vec<_> = sm
        .store
        .changed_after(&ChangeCursor::default(), Some(&user("u1")), usize::MAX)
        .into_iter()
        .map(|s| (s.changed.unwrap().index, s.id.clone()))
        .collect();
    assert_eq!(got, of_u1);
    // A removed session leaves the index.
    sm.store
        .apply_mutation(&Mutation::Delete(RecordKey::Session(nth(3))));
    assert!(all(&sm.store).iter().all(|(_, id)| *id != nth(3)));
    assert_eq!(all(&sm.store).len(), 19);
}

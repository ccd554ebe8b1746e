//! Storage tests on real RocksDB directories: openraft's storage suite (snapshots included),
//! determinism of applying the same log, restart; the sample log the snapshot tests
//! (`snapshot_tests`) use too.

use std::collections::BTreeMap;

use openraft::storage::RaftStateMachine;
use openraft::testing::{StoreBuilder, Suite};
use openraft::{BasicNode, CommittedLeaderId, EntryPayload, Membership};
use sessync_proto::{Device, EndReason, Policy, SessionId, Timestamp, UserId};
use tempfile::TempDir;

use super::*;
use crate::raft_types::{Entry, LogId, StorageError, TypeConfig};
use crate::session::{
    Command, Create, End, Expire, FanoutAcked, PeerOp, SetPolicy, TokenHash, UserOp,
};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = TempDir::new().expect("temp dir");
        let (log, sm) = open(dir.path()).expect("open store");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() -> Result<(), StorageError> {
    Suite::test_all(Builder)
}

pub(super) fn log_id(index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(1, 1), index)
}

pub(super) fn entry(index: u64, cmd: Command) -> Entry {
    Entry {
        log_id: log_id(index),
        payload: EntryPayload::Normal(cmd),
    }
}

/// A log: membership, policy, 30 logins of 3 users, ends, a verify, invalidates fanned out to a
/// peer (one acknowledged), a peer's verify, expiry.
pub(crate) fn sample_log() -> Vec<Entry> {
    let t0 = 1_800_000_000_000;
    let mut out = vec![Entry {
        log_id: log_id(1),
        payload: EntryPayload::Membership(Membership::new(
            vec![std::collections::BTreeSet::from([1u64])],
            BTreeMap::from([(1u64, BasicNode::new("http://127.0.0.1:1"))]),
        )),
    }];
    let mut idx = 2;
    let mut push = |cmd: Command| {
        out.push(entry(idx, cmd));
        idx += 1;
    };
    push(Command::SetPolicy(SetPolicy {
        at: Timestamp(t0),
        policy: Policy::default(),
        by: None,
    }));
    for n in 0..30u8 {
        push(Command::Create(Create {
            at: Timestamp(t0 + u64::from(n) * 1000),
            session_id: SessionId::from_random([n; 16]),
            token_hash: TokenHash::of(&format!("tok-{n}")),
            user_id: UserId::parse_field(&format!("user-{}", n % 3), "user_id").unwrap(),
            device: Device {
                name: Some(format!("device {n}")),
                ..Device::default()
            },
            origin: Some("test".to_owned()),
            idempotency_key: None,
            by: Some("app".to_owned()),
        }));
    }
    push(Command::End(End {
        at: Timestamp(t0 + 40_000),
        session_id: SessionId::from_random([0; 16]),
        reason: EndReason::Logout,
    }));
    push(Command::Verify(UserOp {
        at: Timestamp(t0 + 41_000),
        user_id: UserId::parse_field("user-1", "user_id").unwrap(),
        session_id: None,
        fanout: None,
    }));
    let site_b = sessync_proto::SiteName::parse_field("site-b", "site").unwrap();
    let op = |n: u8| sessync_proto::OpId::from_random([n; 16]);
    push(Command::Invalidate(UserOp {
        at: Timestamp(t0 + 42_000),
        user_id: UserId::parse_field("user-2", "user_id").unwrap(),
        session_id: None,
        fanout: Some(crate::session::Fanout {
            op_id: op(1),
            targets: vec![site_b.clone()],
            outbox_limit: 100,
            expires_at: Some(Timestamp(t0 + 86_400_000)),
        }),
    }));
    push(Command::Invalidate(UserOp {
        at: Timestamp(t0 + 42_500),
        user_id: UserId::parse_field("user-0", "user_id").unwrap(),
        session_id: None,
        fanout: Some(crate::session::Fanout {
            op_id: op(2),
            targets: vec![site_b.clone()],
            outbox_limit: 100,
            expires_at: Some(Timestamp(t0 + 86_400_000)),
        }),
    }));
    push(Command::FanoutAcked(FanoutAcked {
        at: Timestamp(t0 + 43_000),
        acks: vec![(site_b.clone(), op(1))],
    }));
    push(Command::PeerOp(PeerOp {
        at: Timestamp(t0 + 44_000),
        origin: site_b,
        nonce: "nonce-1".to_owned(),
        nonce_until: Timestamp(t0 + 10_000_000),
        kind: sessync_proto::federation::PeerOpKind::Verify,
        op_id: op(3),
        user_id: UserId::parse_field("user-1", "user_id").unwrap(),
        session_id: None,
        origin_time: Some(Timestamp(t0 + 43_500)),
        here: None,
        max_received: Some(1_000),
    }));
    push(Command::Expire(Expire {
        at: Timestamp(t0 + 3_600_000),
    }));
    out
}

pub(crate) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

#[test]
fn same_log_gives_byte_identical_state_however_it_is_batched() {
    rt().block_on(async {
        let log = sample_log();
        let (da, db) = (TempDir::new().unwrap(), TempDir::new().unwrap());
        let (_, mut a) = open(da.path()).unwrap();
        let (_, mut b) = open(db.path()).unwrap();
        // A applies everything in one call, B one entry at a time.
        a.apply(log.clone()).await.unwrap();
        for e in log.clone() {
            b.apply(vec![e]).await.unwrap();
        }
        let da = a.reader().digest().unwrap();
        let db = b.reader().digest().unwrap();
        let (ia, ha, ib, hb) = (da.applied, da.digest, db.applied, db.digest);
        assert_eq!(ia, Some(log.len() as u64));
        assert_eq!((ia, &ha), (ib, &hb));
        assert!(!a
            .reader()
            .audit(&AuditQuery {
                limit: 1000,
                ..Default::default()
            })
            .unwrap()
            .is_empty());
    });
}

#[test]
fn state_survives_reopen() {
    rt().block_on(async {
        let dir = TempDir::new().unwrap();
        let log = sample_log();
        let before = {
            let (_, mut sm) = open(dir.path()).unwrap();
            sm.apply(log.clone()).await.unwrap();
            let sessions = sm.reader().read(|s| s.len());
            (sm.reader().digest().unwrap(), sessions, change_index(&sm))
        };
        let (_, mut sm) = open(dir.path()).unwrap();
        let (applied, _) = sm.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(log.len() as u64)));
        assert_eq!(
            (
                sm.reader().digest().unwrap(),
                sm.reader().read(|s| s.len()),
                change_index(&sm)
            ),
            before,
            "the state, and the change index derived from it at open"
        );
    });
}

/// What the store's change index holds, in its order: (log index, session id) of every session
/// with a change position.
pub(super) fn change_index(sm: &StateMachineStore) -> Vec<(u64, String)> {
    let all = sm.reader().read(|s| {
        s.changed_after(&crate::session::ChangeCursor::default(), None, usize::MAX)
            .into_iter()
            .map(|x| (x.changed.unwrap().index, x.id.to_string()))
            .collect::<Vec<_>>()
    });
    assert!(!all.is_empty());
    all
}

/// The federation records of [`sample_log`] are in memory, not only on disk.
pub(super) fn assert_federation_loaded(sm: &StateMachineStore) {
    let site_b = sessync_proto::SiteName::parse_field("site-b", "site").unwrap();
    sm.reader().read(|s| {
        let l = s.ledger();
        assert_eq!(l.queued(&site_b), 1, "one entry left in the outbox");
        assert!(l.nonce_seen(&site_b, "nonce-1"));
        assert!(l
            .received(&site_b, &sessync_proto::OpId::from_random([3; 16]))
            .is_some());
    });
}

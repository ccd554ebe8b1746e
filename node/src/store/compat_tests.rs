//! Storage compatibility: a data directory written by an earlier version opens as it is.
//!
//! `node/tests/fixtures/data-v1/` was written by `sessync-node` at commit 3217cc6 (before the
//! typed storage layout and the one-struct-per-command log format) with
//! `node/tests/fixtures/make-data-dir.sh`; it holds every kind of command in its log, federation
//! records, audit events and a snapshot. Every stored value must read and, written again by
//! this version, give the same bytes; the state digest must be the one the old node reported.
//!
//! The snapshot is the exception: that version stored it as one JSON value (format 1), and
//! opening the directory converts it, once, to a snapshot file of the current format. The value
//! must still read; the file must carry the same state, install, and replace the value.

use std::collections::BTreeSet;
use std::path::Path;

use openraft::storage::RaftStateMachine;
use openraft::RaftLogReader;
use rocksdb::{IteratorMode, Options, DB};
use sessync_proto::api::AuditEvent;
use sessync_proto::{Device, SessionId, Timestamp, UserId};
use tempfile::TempDir;

use super::layout::{self, Cf, RaftKey, SmKey};
use super::snapshot_v1::SnapshotPayload;
use super::*;
use crate::raft_types::{Entry, LogId, StoredMembership};
use crate::session::{Command, Create, TokenHash};

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data-v1")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of the fixture's data directory (RocksDB writes to what it opens).
fn data_copy() -> TempDir {
    let dir = TempDir::new().unwrap();
    copy_dir(&fixture().join("data"), dir.path());
    dir
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// Every `(key, value)` of `cf`, read raw.
fn raw(db: &DB, cf: Cf) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.iterator_cf(cf.of(db), IteratorMode::Start)
        .map(|kv| {
            let (k, v) = kv.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

/// Decodes `bytes` as `T` and checks that encoding it again gives the same bytes.
fn same_bytes<T: serde::de::DeserializeOwned + serde::Serialize>(what: &str, bytes: &[u8]) -> T {
    let v: T = serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "{what} does not read: {e}: {}",
            String::from_utf8_lossy(bytes)
        )
    });
    let again = serde_json::to_vec(&v).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&again),
        String::from_utf8_lossy(bytes),
        "{what} is written differently"
    );
    v
}

#[test]
fn the_previous_versions_data_dir_opens_with_the_state_it_reported() {
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture().join("expected.json")).unwrap()).unwrap();
    let dir = data_copy();
    let (_, sm) = open(dir.path()).expect("the old data dir opens");
    let super::reader::StateDigest {
        applied, digest, ..
    } = sm.reader().digest().unwrap();
    assert_eq!(applied, expected["applied"].as_u64());
    assert_eq!(digest, expected["digest"].as_str().unwrap());
    sm.reader().read(|s| {
        assert!(s.len() >= 5, "the sessions are loaded");
        assert!(
            s.ledger().all_received().count() >= 1,
            "the federation records are loaded"
        );
        assert!(s.replicated_policy().is_some());
    });
}

#[test]
fn every_stored_value_reads_and_is_written_the_same_way() {
    let dir = data_copy();
    let names = Cf::ALL.map(Cf::name);
    let db = DB::open_cf_for_read_only(&Options::default(), dir.path(), names, false).unwrap();
    let mut kinds = BTreeSet::new();
    for (k, v) in raw(&db, Cf::Logs) {
        let entry: Entry = same_bytes("a log entry", &v);
        assert_eq!(layout::key_index(&k), Some(entry.log_id.index));
        if let openraft::EntryPayload::Normal(cmd) = &entry.payload {
            let json = serde_json::to_value(cmd).unwrap();
            kinds.insert(json["op"].as_str().unwrap().to_owned());
        }
    }
    let all = [
        "create",
        "end",
        "expire",
        "fanout_acked",
        "invalidate",
        "peer_op",
        "record_audit",
        "set_policy",
        "touch",
        "verify",
    ];
    assert_eq!(
        kinds,
        all.iter().map(|k| (*k).to_owned()).collect(),
        "the log holds every kind"
    );
    for cf in Cf::RECORDS {
        let rows = raw(&db, cf);
        assert!(!rows.is_empty(), "{} holds records", cf.name());
        for (k, v) in rows {
            let record = layout::decode(cf, &k, &v).unwrap();
            let (cf2, k2, v2) = layout::encode_record(&record).unwrap();
            assert_eq!((cf2, &k2), (cf, &k), "the record lives where it was");
            assert_eq!(String::from_utf8_lossy(&v2), String::from_utf8_lossy(&v));
        }
    }
    for (k, v) in raw(&db, Cf::Audit) {
        let ev: AuditEvent = same_bytes("an audit event", &v);
        assert_eq!(layout::key_index(&k), Some(ev.seq));
    }
    let sm = |key: SmKey| {
        db.get_cf(Cf::Sm.of(&db), key.bytes())
            .unwrap()
            .unwrap_or_else(|| panic!("sm holds {:?}", key))
    };
    same_bytes::<Option<LogId>>("applied", &sm(SmKey::Applied));
    same_bytes::<StoredMembership>("membership", &sm(SmKey::Membership));
    same_bytes::<sessync_proto::Policy>("policy", &sm(SmKey::Policy));
    same_bytes::<Timestamp>("clock", &sm(SmKey::Clock));
    same_bytes::<u64>("audit counter", &sm(SmKey::AuditNext));
    same_bytes::<openraft::SnapshotMeta<u64, openraft::BasicNode>>(
        "snapshot meta",
        &sm(SmKey::SnapshotMeta),
    );
    let snapshot: SnapshotPayload = same_bytes("snapshot data", &sm(SmKey::SnapshotData));
    assert!(!snapshot.sessions.is_empty());
    for key in [RaftKey::Vote, RaftKey::Committed] {
        let v = db.get_cf(Cf::Raft.of(&db), key.bytes()).unwrap();
        assert!(v.is_some(), "raft holds {key:?}");
    }
}

#[test]
fn the_previous_versions_data_dir_takes_new_entries_and_its_snapshot_installs() {
    rt().block_on(async {
        let dir = data_copy();
        let (mut log, mut sm) = open(dir.path()).unwrap();
        let (applied, _) = sm.applied_state().await.unwrap();
        let applied = applied.expect("the fixture applied entries");
        let entries = log.try_get_log_entries(..).await.unwrap();
        assert_eq!(entries.last().map(|e| e.log_id), Some(applied));
        let next = Entry {
            log_id: LogId::new(applied.leader_id, applied.index + 1),
            payload: openraft::EntryPayload::Normal(Command::Create(Create {
                at: Timestamp(applied.index.max(1) * 1_000 + 1_900_000_000_000),
                session_id: SessionId::from_random([9; 16]),
                token_hash: TokenHash::of("a-new-token"),
                user_id: UserId::parse_field("zed", "user_id").unwrap(),
                device: Device::default(),
                origin: None,
                idempotency_key: None,
                by: Some("app".to_owned()),
            })),
        };
        sm.apply(vec![next]).await.unwrap();
        assert!(sm
            .reader()
            .read(|s| s.get(&SessionId::from_random([9; 16])).is_some()));

        let snap = sm
            .get_current_snapshot()
            .await
            .unwrap()
            .expect("a snapshot");
        let fresh = TempDir::new().unwrap();
        let (_, mut other) = open(fresh.path()).unwrap();
        other
            .install_snapshot(&snap.meta, snap.snapshot)
            .await
            .unwrap();
        let (installed, _) = other.applied_state().await.unwrap();
        assert_eq!(installed, snap.meta.last_log_id);
        assert!(other.reader().read(|s| s.len()) > 0);
    });
}

/// The format-1 snapshot of a copy of the fixture, and its meta, read raw.
fn old_snapshot(dir: &Path) -> (SnapshotPayload, crate::raft_types::SnapshotMeta) {
    let names = Cf::ALL.map(Cf::name);
    let db = DB::open_cf_for_read_only(&Options::default(), dir, names, false).unwrap();
    let get = |key: SmKey| db.get_cf(Cf::Sm.of(&db), key.bytes()).unwrap();
    let payload = serde_json::from_slice(&get(SmKey::SnapshotData).unwrap()).unwrap();
    let meta = serde_json::from_slice(&get(SmKey::SnapshotMeta).unwrap()).unwrap();
    (payload, meta)
}

#[test]
fn the_previous_versions_snapshot_becomes_a_file_with_the_same_state() {
    rt().block_on(async {
        let dir = data_copy();
        let (old, old_meta) = old_snapshot(dir.path());
        let (mut log, mut sm) = open(dir.path()).expect("the old data dir opens");
        let snap = sm
            .get_current_snapshot()
            .await
            .unwrap()
            .expect("a snapshot");
        assert_eq!(snap.meta, old_meta, "the meta stays as it was");
        let file = dir
            .path()
            .join("snapshots")
            .join(format!("{}.snap", old_meta.snapshot_id));
        assert!(file.is_file(), "converted to {}", file.display());

        // Installed elsewhere, it gives exactly the old snapshot's records ...
        let fresh = TempDir::new().unwrap();
        let (_, mut other) = open(fresh.path()).unwrap();
        other
            .install_snapshot(&snap.meta, snap.snapshot)
            .await
            .unwrap();
        other.reader().read(|s| {
            let sessions: Vec<_> = s.all().cloned().collect();
            let mut expected = old.sessions.clone();
            expected.sort_by(|a, b| a.id.cmp(&b.id));
            assert_eq!(sessions, expected);
            assert_eq!(s.ledger().outbox().count(), old.outbox.len());
            assert_eq!(s.ledger().all_received().count(), old.received.len());
            assert_eq!(s.replicated_policy(), old.policy.as_ref());
            assert_eq!(s.clock(), old.clock);
        });
        let mut audit = other
            .reader()
            .audit(&AuditQuery {
                limit: usize::MAX,
                ..Default::default()
            })
            .unwrap();
        audit.reverse();
        assert_eq!(audit, old.audit);
        // ... and the state the log up to the snapshot gives. This version also stamps each
        // session with the position of its last change, and a verified one with the time of its
        // verify, which the old one did not record: the same state but for those stamps.
        let upto = old_meta
            .last_log_id
            .expect("the snapshot has entries")
            .index;
        let replayed_dir = TempDir::new().unwrap();
        let (_, mut replayed) = open(replayed_dir.path()).unwrap();
        replayed
            .apply(log.try_get_log_entries(..=upto).await.unwrap())
            .await
            .unwrap();
        let unstamped = |sm: &StateMachineStore| {
            sm.reader().read(|s| {
                let sessions: Vec<_> = s
                    .all()
                    .map(|x| {
                        let mut x = x.clone();
                        x.changed = None;
                        x.verified_at = None;
                        x
                    })
                    .collect();
                (sessions, s.clock(), s.replicated_policy().cloned())
            })
        };
        assert_eq!(unstamped(&other), unstamped(&replayed));
        assert!(replayed
            .reader()
            .read(|s| s.all().all(|x| x.changed.is_some())));
        let audit_of = |sm: &StateMachineStore| {
            sm.reader()
                .audit(&AuditQuery {
                    limit: usize::MAX,
                    ..Default::default()
                })
                .unwrap()
        };
        assert_eq!(audit_of(&other), audit_of(&replayed));

        // Converted once: the value is gone, and opening again keeps the file.
        drop((log, sm));
        let names = Cf::ALL.map(Cf::name);
        let db = DB::open_cf_for_read_only(&Options::default(), dir.path(), names, false).unwrap();
        let value = db
            .get_cf(Cf::Sm.of(&db), SmKey::SnapshotData.bytes())
            .unwrap();
        assert!(value.is_none(), "the format-1 value is removed");
        drop(db);
        let (_, mut sm) = open(dir.path()).unwrap();
        let again = sm.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(again.meta, old_meta);
        assert!(file.is_file());
    });
}

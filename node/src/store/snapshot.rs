//! Snapshots of the state machine: built from a RocksDB point-in-time view on openraft's builder
//! task, off the apply path, and installed on a lagging or new node in one synced batch.

use std::io::Cursor;
use std::sync::Arc;

use openraft::{RaftSnapshotBuilder, SnapshotMeta, StorageIOError};
use rocksdb::{IteratorMode, SnapshotWithThreadMode, DB};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sessync_proto::api::AuditEvent;
use sessync_proto::{Policy, Timestamp};

use super::layout::{self, Cf, SmKey};
use super::{any_err, read_err};
use crate::raft_types::{LogId, NodeId, StorageError, StoredMembership, TypeConfig};
use crate::session::{OutboxEntry, ReceivedOp, Record, SeenNonce, Session};

/// The state a snapshot carries: the same records the `sessions`, `audit`, `federation` and
/// `sm` families hold. Its JSON is the snapshot's format on the wire and on disk.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct SnapshotPayload {
    pub(crate) policy: Option<Policy>,
    pub(crate) clock: Timestamp,
    pub(crate) audit_next: u64,
    pub(crate) sessions: Vec<Session>,
    pub(crate) audit: Vec<AuditEvent>,
    #[serde(default)]
    pub(crate) outbox: Vec<OutboxEntry>,
    #[serde(default)]
    pub(crate) received: Vec<ReceivedOp>,
    #[serde(default)]
    pub(crate) nonces: Vec<SeenNonce>,
}

impl SnapshotPayload {
    /// Adds one record.
    fn push(&mut self, r: Record) {
        match r {
            Record::Session(s) => self.sessions.push(s),
            Record::Outbox(e) => self.outbox.push(e),
            Record::Received(x) => self.received.push(x),
            Record::Nonce(n) => self.nonces.push(n),
        }
    }

    /// Every record the snapshot carries (the audit log aside).
    pub(crate) fn into_records(self) -> impl Iterator<Item = Record> {
        let s = self.sessions.into_iter().map(Record::Session);
        let o = self.outbox.into_iter().map(Record::Outbox);
        let r = self.received.into_iter().map(Record::Received);
        let n = self.nonces.into_iter().map(Record::Nonce);
        s.chain(o).chain(r).chain(n)
    }
}

type RocksSnapshot<'a> = SnapshotWithThreadMode<'a, DB>;

self_cell::self_cell!(
    /// A RocksDB point-in-time view that owns its database handle, so it can move to another task.
    struct OwnedView {
        owner: Arc<DB>,
        #[covariant]
        dependent: RocksSnapshot,
    }
);

/// Builds a snapshot from the view taken when openraft asked for a builder.
pub(crate) struct SnapshotBuilder {
    view: OwnedView,
    applied: Option<LogId>,
    membership: StoredMembership,
}

impl SnapshotBuilder {
    /// Captures the current state: cheap, and consistent with `applied` because it runs on the
    /// state machine's task between two applies.
    pub(super) fn capture(
        db: Arc<DB>,
        applied: Option<LogId>,
        membership: StoredMembership,
    ) -> Self {
        Self {
            view: OwnedView::new(db, |db| db.snapshot()),
            applied,
            membership,
        }
    }

    fn payload(&self) -> Result<SnapshotPayload, StorageError> {
        let db = self.view.borrow_owner();
        let snap = self.view.borrow_dependent();
        let mut p = SnapshotPayload {
            policy: sm_value(snap, db, SmKey::Policy)?,
            clock: sm_value(snap, db, SmKey::Clock)?.unwrap_or_default(),
            audit_next: sm_value(snap, db, SmKey::AuditNext)?.unwrap_or(0),
            ..Default::default()
        };
        for cf in Cf::RECORDS {
            for item in snap.iterator_cf(cf.of(db), IteratorMode::Start) {
                let (k, v) = item.map_err(read_err)?;
                p.push(layout::decode(cf, &k, &v).map_err(read_err)?);
            }
        }
        for item in snap.iterator_cf(Cf::Audit.of(db), IteratorMode::Start) {
            let (_, v) = item.map_err(read_err)?;
            p.audit
                .push(layout::decode_value(Cf::Audit, &v).map_err(read_err)?);
        }
        Ok(p)
    }
}

/// One `sm` value as the view holds it.
fn sm_value<T: DeserializeOwned>(
    snap: &RocksSnapshot<'_>,
    db: &DB,
    key: SmKey,
) -> Result<Option<T>, StorageError> {
    snap.get_cf(Cf::Sm.of(db), key.bytes())
        .map_err(read_err)?
        .map(|b| layout::decode_value(Cf::Sm, &b).map_err(read_err))
        .transpose()
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<openraft::Snapshot<TypeConfig>, StorageError> {
        let payload = self.payload()?;
        let data = serde_json::to_vec(&payload)
            .map_err(|e| StorageIOError::write_snapshot(None, any_err(e)))?;
        let snapshot_id = match self.applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.leader_id.node_id, l.index),
            None => "empty".to_owned(),
        };
        let meta = SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        };
        save_current(self.view.borrow_owner(), &meta, &data)?;
        tracing::info!(
            bytes = data.len(),
            sessions = payload.sessions.len(),
            "built snapshot"
        );
        Ok(openraft::Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

/// Serializes saves, so a build finishing late cannot race an install.
static SAVE: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// Stores `meta` and `data` as the current snapshot, synced, unless a newer one is stored
/// already (a build that started before a newer snapshot was installed must not replace it).
pub(super) fn save_current(
    db: &DB,
    meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
    data: &[u8],
) -> Result<(), StorageError> {
    let _one_at_a_time = SAVE.lock();
    if let Some(current) = load_current(db)? {
        if current.meta.last_log_id > meta.last_log_id {
            tracing::info!(
                stale = %meta.snapshot_id,
                current = %current.meta.snapshot_id,
                "not storing a snapshot older than the current one"
            );
            return Ok(());
        }
    }
    let sm = Cf::Sm.of(db);
    let meta_bytes = serde_json::to_vec(meta)
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), any_err(e)))?;
    let mut batch = rocksdb::WriteBatch::default();
    batch.put_cf(sm, SmKey::SnapshotMeta.bytes(), meta_bytes);
    batch.put_cf(sm, SmKey::SnapshotData.bytes(), data);
    let mut opts = rocksdb::WriteOptions::default();
    opts.set_sync(true);
    db.write_opt(batch, &opts)
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), any_err(e)).into())
}

/// The current snapshot, if one was built or installed.
pub(super) fn load_current(
    db: &DB,
) -> Result<Option<openraft::Snapshot<TypeConfig>>, StorageError> {
    let sm = Cf::Sm.of(db);
    let read =
        |e: rocksdb::Error| StorageError::from(StorageIOError::read_snapshot(None, any_err(e)));
    let (Some(meta), Some(data)) = (
        db.get_cf(sm, SmKey::SnapshotMeta.bytes()).map_err(read)?,
        db.get_cf(sm, SmKey::SnapshotData.bytes()).map_err(read)?,
    ) else {
        return Ok(None);
    };
    let meta: SnapshotMeta<NodeId, openraft::BasicNode> = serde_json::from_slice(&meta)
        .map_err(|e| StorageIOError::read_snapshot(None, any_err(e)))?;
    Ok(Some(openraft::Snapshot {
        meta,
        snapshot: Box::new(Cursor::new(data)),
    }))
}

//! Snapshots of the state machine: built from a RocksDB point-in-time view on openraft's builder
//! task, off the apply path, and installed on a lagging or new node in one synced batch.

use std::io::Cursor;
use std::sync::Arc;

use openraft::{RaftSnapshotBuilder, SnapshotMeta, StorageIOError};
use rocksdb::{IteratorMode, SnapshotWithThreadMode, DB};
use serde::{Deserialize, Serialize};
use sessync_proto::api::AuditEvent;
use sessync_proto::{Policy, Timestamp};

use super::any_err;
use super::keys;
use crate::raft_types::{LogId, NodeId, StorageError, StoredMembership, TypeConfig};
use crate::session::{Mutation, OutboxEntry, ReceivedOp, SeenNonce, Session};

/// The state a snapshot carries: the same records the `sessions`, `audit`, `federation` and
/// `sm` families hold.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SnapshotPayload {
    pub policy: Option<Policy>,
    pub clock: Timestamp,
    pub audit_next: u64,
    pub sessions: Vec<Session>,
    pub audit: Vec<AuditEvent>,
    #[serde(default)]
    pub outbox: Vec<OutboxEntry>,
    #[serde(default)]
    pub received: Vec<ReceivedOp>,
    #[serde(default)]
    pub nonces: Vec<SeenNonce>,
}

impl SnapshotPayload {
    /// The federation records as mutations, for folding into a store.
    pub fn federation_mutations(&self) -> impl Iterator<Item = Mutation> + '_ {
        let o = self.outbox.iter().cloned().map(Mutation::PutOutbox);
        let r = self.received.iter().cloned().map(Mutation::PutReceived);
        let n = self.nonces.iter().cloned().map(Mutation::PutNonce);
        o.chain(r).chain(n)
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
pub struct SnapshotBuilder {
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
        let read =
            |e: rocksdb::Error| StorageError::from(StorageIOError::read_state_machine(any_err(e)));
        let decode = |e: serde_json::Error| {
            StorageError::from(StorageIOError::read_state_machine(any_err(e)))
        };
        let sm = super::state_machine::cf(db, "sm");
        let get = |key: &[u8]| snap.get_cf(sm, key).map_err(read);
        let mut p = SnapshotPayload {
            policy: get(keys::POLICY)?
                .map(|b| serde_json::from_slice(&b))
                .transpose()
                .map_err(decode)?,
            clock: get(keys::CLOCK)?
                .map(|b| serde_json::from_slice(&b))
                .transpose()
                .map_err(decode)?
                .unwrap_or_default(),
            audit_next: get(keys::AUDIT_NEXT)?
                .map(|b| serde_json::from_slice(&b))
                .transpose()
                .map_err(decode)?
                .unwrap_or(0),
            ..Default::default()
        };
        for item in snap.iterator_cf(
            super::state_machine::cf(db, "sessions"),
            IteratorMode::Start,
        ) {
            let (_, v) = item.map_err(read)?;
            p.sessions.push(serde_json::from_slice(&v).map_err(decode)?);
        }
        for item in snap.iterator_cf(super::state_machine::cf(db, "audit"), IteratorMode::Start) {
            let (_, v) = item.map_err(read)?;
            p.audit.push(serde_json::from_slice(&v).map_err(decode)?);
        }
        let fed = super::state_machine::cf(db, "federation");
        for item in snap.iterator_cf(fed, IteratorMode::Start) {
            let (k, v) = item.map_err(read)?;
            match k.first() {
                Some(b'o') => p.outbox.push(serde_json::from_slice(&v).map_err(decode)?),
                Some(b'r') => p.received.push(serde_json::from_slice(&v).map_err(decode)?),
                Some(b'n') => p.nonces.push(serde_json::from_slice(&v).map_err(decode)?),
                _ => {}
            }
        }
        Ok(p)
    }
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
    let sm = super::state_machine::cf(db, "sm");
    let meta_bytes = serde_json::to_vec(meta)
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), any_err(e)))?;
    let mut batch = rocksdb::WriteBatch::default();
    batch.put_cf(sm, keys::SNAPSHOT, meta_bytes);
    batch.put_cf(sm, keys::SNAPSHOT_DATA, data);
    let mut opts = rocksdb::WriteOptions::default();
    opts.set_sync(true);
    db.write_opt(batch, &opts)
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), any_err(e)).into())
}

/// The current snapshot, if one was built or installed.
pub(super) fn load_current(
    db: &DB,
) -> Result<Option<openraft::Snapshot<TypeConfig>>, StorageError> {
    let sm = super::state_machine::cf(db, "sm");
    let read =
        |e: rocksdb::Error| StorageError::from(StorageIOError::read_snapshot(None, any_err(e)));
    let (Some(meta), Some(data)) = (
        db.get_cf(sm, keys::SNAPSHOT).map_err(read)?,
        db.get_cf(sm, keys::SNAPSHOT_DATA).map_err(read)?,
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

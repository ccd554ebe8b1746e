//! The replicated state machine on RocksDB.
//!
//! Each log entry is applied by [`crate::session::apply`] to the in-memory [`SessionStore`], and
//! its mutations are written in one RocksDB batch together with the applied log id, membership,
//! clock and audit counter, so the state on disk always matches exactly one applied index.
//! Readers (the runtime and through it the HTTP API) share the in-memory store through a
//! [`StateReader`]. Snapshots are built by `snapshot` and installed by `snapshot_install`; a
//! snapshot install a crash interrupted is finished here, at load, before the state is read.

use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend};
use parking_lot::RwLock;
use rocksdb::{IteratorMode, WriteBatch, DB};
use serde::de::DeserializeOwned;
use sessync_proto::api::AuditEvent;
use tokio::sync::broadcast;

use super::audit_log::AuditLog;
use super::layout::{self, Cf, SmKey};
use super::reader::{AppliedChange, AppliedStamp, InstallSeq, StateReader};
use super::snapshot::{self, SnapshotBuilder};
use super::snapshot_dir::{SnapshotDir, SnapshotFile, Temp};
use super::snapshot_install::{self, WritePlan};
use super::{read_err, snapshot_read_err, snapshot_v1, snapshot_write_err, write_err};
use crate::raft_types::{Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use crate::session::{self, Command, Mutation, Outcome, Record, Session, SessionStore};

/// How many applied changes a slow event subscriber may fall behind before it is told it lagged.
const CHANGES_BUFFER: usize = 1024;

/// The state machine half of the store.
pub(crate) struct StateMachineStore {
    db: Arc<DB>,
    snapshots: SnapshotDir,
    state: Arc<RwLock<SessionStore>>,
    applied: Option<LogId>,
    membership: StoredMembership,
    audit: AuditLog,
    changes: broadcast::Sender<AppliedChange>,
    /// Installs in progress, for readers of the state on disk.
    installs: InstallSeq,
    stamp: AppliedStamp,
}

/// Reads one `sm` value.
pub(super) fn get_sm<T: DeserializeOwned>(db: &DB, key: SmKey) -> Result<Option<T>, StorageError> {
    db.get_cf(Cf::Sm.of(db), key.bytes())
        .map_err(read_err)?
        .map(|b| layout::decode_value(Cf::Sm, &b).map_err(read_err))
        .transpose()
}

/// Adds writing one `sm` value to `batch`.
pub(super) fn put_sm<T: serde::Serialize>(
    db: &DB,
    batch: &mut WriteBatch,
    key: SmKey,
    v: &T,
) -> Result<(), StorageError> {
    let bytes = layout::encode(Cf::Sm, v).map_err(write_err)?;
    batch.put_cf(Cf::Sm.of(db), key.bytes(), bytes);
    Ok(())
}

impl StateMachineStore {
    /// Loads the applied state from disk, after converting a format-1 snapshot and finishing
    /// an interrupted snapshot install; removes snapshot files a stop left behind.
    pub(super) fn load(db: Arc<DB>, snapshots: SnapshotDir) -> Result<Self, StorageError> {
        snapshot_v1::convert(&db, &snapshots)?;
        snapshot_install::recover(&db, &snapshots)?;
        let current = snapshot::current_meta(&db)?
            .map(|m| snapshots.file_of(&m.snapshot_id))
            .transpose()
            .map_err(|e| snapshot_read_err(None, e))?;
        snapshots.remove_snapshots_except(current.as_deref());
        snapshots.remove_temps(Temp::Build);
        snapshots.remove_temps(Temp::Recv);
        snapshots.remove_temps(Temp::Backup);
        let applied = get_sm::<Option<LogId>>(&db, SmKey::Applied)?.flatten();
        let membership = get_sm::<StoredMembership>(&db, SmKey::Membership)?.unwrap_or_default();
        let audit_next = get_sm::<u64>(&db, SmKey::AuditNext)?.unwrap_or(0);
        let audit = AuditLog::load(&db, audit_next)?;
        let mut store = SessionStore::new();
        store.restore_meta(
            get_sm(&db, SmKey::Clock)?.unwrap_or_default(),
            get_sm(&db, SmKey::Policy)?,
        );
        for cf in Cf::RECORDS {
            for item in db.iterator_cf(cf.of(&db), IteratorMode::Start) {
                let (k, v) = item.map_err(read_err)?;
                store.insert(layout::decode(cf, &k, &v).map_err(read_err)?);
            }
        }
        let (changes, _) = broadcast::channel(CHANGES_BUFFER);
        Ok(Self {
            db,
            snapshots,
            state: Arc::new(RwLock::new(store)),
            applied,
            membership,
            audit,
            changes,
            installs: InstallSeq::default(),
            stamp: AppliedStamp::default(),
        })
    }

    /// The snapshots directory.
    pub(super) fn snapshots(&self) -> SnapshotDir {
        self.snapshots.clone()
    }

    /// A read handle for the runtime.
    pub(crate) fn reader(&self) -> StateReader {
        StateReader::new(
            self.db.clone(),
            self.state.clone(),
            self.changes.clone(),
            self.audit.stats(),
            self.installs.clone(),
            self.stamp.clone(),
            self.snapshots.clone(),
        )
    }

    /// Adds an entry's mutations to `batch`; returns the sessions they changed.
    fn persist(
        &mut self,
        batch: &mut WriteBatch,
        muts: &[Mutation],
    ) -> Result<Vec<Session>, StorageError> {
        let db = self.db.clone();
        let mut changed = Vec::new();
        for m in muts {
            match m {
                Mutation::Put(r) => {
                    layout::put(&db, batch, r).map_err(write_err)?;
                    if let Record::Session(s) = r {
                        changed.push(s.clone());
                    }
                }
                Mutation::Delete(k) => layout::delete(&db, batch, k),
                Mutation::SetPolicy(p) => put_sm(&db, batch, SmKey::Policy, p)?,
                Mutation::Audit(n) => {
                    let ev = AuditEvent {
                        seq: 0,
                        at: n.at,
                        kind: n.kind.clone(),
                        user_id: n.user_id.clone(),
                        session_id: n.session_id.clone(),
                        detail: n.detail.clone(),
                    };
                    self.audit.append(&db, batch, ev)?;
                }
                Mutation::TrimAudit(cutoff) => self.audit.trim_older_than(&db, batch, *cutoff),
            }
        }
        // The caps of the replicated policy, after every entry (a SetPolicy may lower them).
        let (max_events, max_bytes) = {
            let st = self.state.read();
            (st.policy().audit_max_events, st.policy().audit_max_bytes)
        };
        self.audit.enforce_caps(&db, batch, max_events, max_bytes);
        Ok(changed)
    }

    fn apply_one(&mut self, entry: Entry) -> Result<Outcome, StorageError> {
        let mut batch = WriteBatch::default();
        let mut changed = Vec::new();
        let outcome = match entry.payload {
            EntryPayload::Blank => Outcome::Done,
            EntryPayload::Normal(cmd) => {
                let (outcome, muts) = {
                    let mut st = self.state.write();
                    let before = st.clock();
                    let applied = session::apply(&mut st, &cmd, entry.log_id.index);
                    if st.clock() > before {
                        let bound = st.replicated_policy().map_or_else(
                            || sessync_proto::Policy::default().max_clock_skew,
                            |p| p.max_clock_skew,
                        );
                        self.stamp.applied(st.clock(), bound);
                    }
                    applied
                };
                changed = self.persist(&mut batch, &muts)?;
                // A touch only slides last_seen_at: not a state change worth announcing.
                if matches!(cmd, Command::Touch(_)) {
                    changed.clear();
                }
                outcome
            }
            EntryPayload::Membership(m) => {
                self.membership = StoredMembership::new(Some(entry.log_id), m);
                Outcome::Done
            }
        };
        self.applied = Some(entry.log_id);
        let db = self.db.clone();
        put_sm(&db, &mut batch, SmKey::Applied, &self.applied)?;
        put_sm(&db, &mut batch, SmKey::Membership, &self.membership)?;
        put_sm(&db, &mut batch, SmKey::Clock, &self.state.read().clock())?;
        put_sm(&db, &mut batch, SmKey::AuditNext, &self.audit.next())?;
        db.write(batch).map_err(write_err)?;
        for session in changed {
            // Nobody listening is fine.
            let _ = self.changes.send(AppliedChange {
                index: entry.log_id.index,
                session,
            });
        }
        Ok(outcome)
    }

    /// Installs the snapshot `meta` from `file` (see `snapshot_install`), then swaps the new
    /// in-memory state in.
    pub(super) async fn install(
        &mut self,
        meta: &SnapshotMeta,
        file: SnapshotFile,
        plan: WritePlan,
    ) -> Result<(), StorageError> {
        let (file, path) = file.into_parts().await;
        let (db, dir, m) = (self.db.clone(), self.snapshots.clone(), meta.clone());
        let installs = self.installs.clone();
        // Reading and writing every record takes seconds for a large state: off the async
        // threads.
        let installed = tokio::task::spawn_blocking(move || {
            snapshot_install::install(&db, &dir, &m, file, path, plan, &installs)
        })
        .await
        .map_err(|e| snapshot_write_err(Some(meta), e))??;
        let old = std::mem::replace(&mut *self.state.write(), installed.store);
        // Readers of the disk may read again (it holds the new state since the last batch).
        self.installs.end();
        // Dropping a large store takes a while: not while readers wait for the lock.
        drop(old);
        self.audit.replace(installed.audit, installed.audit_next);
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        tracing::info!(snapshot = %meta.snapshot_id, "installed snapshot");
        Ok(())
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcome>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        entries.into_iter().map(|e| self.apply_one(e)).collect()
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder::capture(
            self.db.clone(),
            self.snapshots.clone(),
            self.applied,
            self.membership.clone(),
        )
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotFile>, StorageError> {
        let file = self
            .snapshots
            .begin_receiving()
            .map_err(|e| snapshot_write_err(None, e))?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<SnapshotFile>,
    ) -> Result<(), StorageError> {
        self.install(meta, *snapshot, WritePlan::default()).await
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<openraft::Snapshot<TypeConfig>>, StorageError> {
        snapshot::load_current(&self.db, &self.snapshots)
    }
}

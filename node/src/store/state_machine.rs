//! The replicated state machine on RocksDB.
//!
//! Each log entry is applied by [`crate::session::apply`] to the in-memory [`SessionStore`], and
//! its mutations are written in one RocksDB batch together with the applied log id, membership,
//! clock and audit counter, so the state on disk always matches exactly one applied index.
//! Readers (the HTTP API) share the in-memory store through a [`StateReader`].

use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, SnapshotMeta, StorageIOError};
use parking_lot::RwLock;
use rocksdb::{ColumnFamily, Direction, IteratorMode, WriteBatch, WriteOptions, DB};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sessync_proto::api::AuditEvent;
use sessync_proto::{SessionId, Timestamp, UserId};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

use super::any_err;
use super::keys::{self, index_key, key_index};
use super::snapshot::{self, SnapshotBuilder, SnapshotPayload};
use crate::raft_types::{Entry, LogId, NodeId, StorageError, StoredMembership, TypeConfig};
use crate::session::{self, Command, Mutation, Outcome, Session, SessionStore};

/// Most old audit events one entry removes; later entries remove the rest.
const AUDIT_TRIM_BATCH: usize = 100_000;

pub(crate) fn cf<'a>(db: &'a DB, name: &str) -> &'a ColumnFamily {
    db.cf_handle(name)
        .unwrap_or_else(|| panic!("column family {name} is created at open"))
}

/// A session change as it was applied, for live subscribers.
#[derive(Clone, Debug)]
pub struct AppliedChange {
    pub index: u64,
    pub session: Session,
}

/// The state machine half of the store.
pub struct StateMachineStore {
    db: Arc<DB>,
    state: Arc<RwLock<SessionStore>>,
    applied: Option<LogId>,
    membership: StoredMembership,
    audit_next: u64,
    changes: broadcast::Sender<AppliedChange>,
}

/// A read handle on the applied state, shared with the HTTP API.
#[derive(Clone)]
pub struct StateReader {
    db: Arc<DB>,
    state: Arc<RwLock<SessionStore>>,
    changes: broadcast::Sender<AppliedChange>,
}

/// Filters for reading the audit log, newest first.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub user_id: Option<UserId>,
    pub session_id: Option<SessionId>,
    pub kind: Option<String>,
    pub since: Option<Timestamp>,
    pub limit: usize,
}

fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T, StorageError> {
    serde_json::from_slice(b).map_err(|e| StorageIOError::read_state_machine(any_err(e)).into())
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec(v).map_err(|e| StorageIOError::write_state_machine(any_err(e)).into())
}

fn get<T: DeserializeOwned>(db: &DB, key: &[u8]) -> Result<Option<T>, StorageError> {
    db.get_cf(cf(db, "sm"), key)
        .map_err(|e| StorageError::from(StorageIOError::read_state_machine(any_err(e))))?
        .map(|b| decode(&b))
        .transpose()
}

impl StateMachineStore {
    /// Loads the applied state from disk.
    pub(super) fn load(db: Arc<DB>) -> Result<Self, StorageError> {
        let applied = get::<Option<LogId>>(&db, keys::APPLIED)?.flatten();
        let membership = get::<StoredMembership>(&db, keys::MEMBERSHIP)?.unwrap_or_default();
        let audit_next = get::<u64>(&db, keys::AUDIT_NEXT)?.unwrap_or(0);
        let mut store = SessionStore::new();
        store.restore_meta(
            get(&db, keys::CLOCK)?.unwrap_or_default(),
            get(&db, keys::POLICY)?,
        );
        for item in db.iterator_cf(cf(&db, "sessions"), IteratorMode::Start) {
            let (_, v) = item.map_err(|e| StorageIOError::read_state_machine(any_err(e)))?;
            store.put(decode(&v)?);
        }
        for item in db.iterator_cf(cf(&db, "federation"), IteratorMode::Start) {
            let (k, v) = item.map_err(|e| StorageIOError::read_state_machine(any_err(e)))?;
            let m = match k.first() {
                Some(b'o') => Mutation::PutOutbox(decode(&v)?),
                Some(b'r') => Mutation::PutReceived(decode(&v)?),
                Some(b'n') => Mutation::PutNonce(decode(&v)?),
                _ => continue,
            };
            store.apply_mutation(&m);
        }
        let (changes, _) = broadcast::channel(1024);
        Ok(Self {
            db,
            state: Arc::new(RwLock::new(store)),
            applied,
            membership,
            audit_next,
            changes,
        })
    }

    /// A read handle for the API.
    pub fn reader(&self) -> StateReader {
        StateReader {
            db: self.db.clone(),
            state: self.state.clone(),
            changes: self.changes.clone(),
        }
    }

    fn persist(
        &mut self,
        batch: &mut WriteBatch,
        muts: &[Mutation],
    ) -> Result<Vec<Session>, StorageError> {
        let db = self.db.clone();
        let mut changed = Vec::new();
        for m in muts {
            match m {
                Mutation::PutSession(s) => {
                    batch.put_cf(cf(&db, "sessions"), s.id.as_str(), encode(s)?);
                    changed.push(s.clone());
                }
                Mutation::DeleteSession(id) => batch.delete_cf(cf(&db, "sessions"), id.as_str()),
                Mutation::SetPolicy(p) => batch.put_cf(cf(&db, "sm"), keys::POLICY, encode(p)?),
                Mutation::Audit(n) => {
                    let ev = AuditEvent {
                        seq: self.audit_next,
                        at: n.at,
                        kind: n.kind.clone(),
                        user_id: n.user_id.clone(),
                        session_id: n.session_id.clone(),
                        detail: n.detail.clone(),
                    };
                    batch.put_cf(cf(&db, "audit"), index_key(ev.seq), encode(&ev)?);
                    self.audit_next += 1;
                }
                Mutation::PutOutbox(e) => {
                    let k = keys::outbox_key(&e.site, &e.op_id);
                    batch.put_cf(cf(&db, "federation"), k, encode(e)?);
                }
                Mutation::DeleteOutbox { site, op_id } => {
                    batch.delete_cf(cf(&db, "federation"), keys::outbox_key(site, op_id));
                }
                Mutation::PutReceived(r) => {
                    let k = keys::received_key(&r.origin, &r.op_id);
                    batch.put_cf(cf(&db, "federation"), k, encode(r)?);
                }
                Mutation::DeleteReceived { origin, op_id } => {
                    batch.delete_cf(cf(&db, "federation"), keys::received_key(origin, op_id));
                }
                Mutation::PutNonce(n) => {
                    let k = keys::nonce_key(&n.origin, &n.nonce);
                    batch.put_cf(cf(&db, "federation"), k, encode(n)?);
                }
                Mutation::DeleteNonce { origin, nonce } => {
                    batch.delete_cf(cf(&db, "federation"), keys::nonce_key(origin, nonce));
                }
                Mutation::TrimAudit(cutoff) => {
                    // Events are stamped with cluster time, which never runs backwards in the
                    // log, so the old ones are a prefix of the sequence: one range delete.
                    let mut end = None;
                    let it = db.iterator_cf(cf(&db, "audit"), IteratorMode::Start);
                    for item in it.take(AUDIT_TRIM_BATCH) {
                        let (k, v) =
                            item.map_err(|e| StorageIOError::read_state_machine(any_err(e)))?;
                        let ev: AuditEvent = decode(&v)?;
                        if ev.at >= *cutoff {
                            break;
                        }
                        end = key_index(&k).map(|i| i + 1);
                    }
                    if let Some(end) = end {
                        batch.delete_range_cf(cf(&db, "audit"), index_key(0), index_key(end));
                    }
                }
            }
        }
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
                    session::apply(&mut st, &cmd)
                };
                changed = self.persist(&mut batch, &muts)?;
                // A touch only slides last_seen_at: not a state change worth announcing.
                if matches!(cmd, Command::Touch { .. }) {
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
        let sm = cf(&self.db, "sm");
        batch.put_cf(sm, keys::APPLIED, encode(&self.applied)?);
        batch.put_cf(sm, keys::MEMBERSHIP, encode(&self.membership)?);
        batch.put_cf(sm, keys::CLOCK, encode(&self.state.read().clock())?);
        batch.put_cf(sm, keys::AUDIT_NEXT, encode(&self.audit_next)?);
        self.db
            .write(batch)
            .map_err(|e| StorageIOError::write_state_machine(any_err(e)))?;
        for session in changed {
            // Nobody listening is fine.
            let _ = self.changes.send(AppliedChange {
                index: entry.log_id.index,
                session,
            });
        }
        Ok(outcome)
    }

    fn install(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        data: &[u8],
    ) -> Result<(), StorageError> {
        let payload: SnapshotPayload = serde_json::from_slice(data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), any_err(e)))?;
        let db = self.db.clone();
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(cf(&db, "sessions"), b"".as_slice(), [0xffu8].as_slice());
        batch.delete_range_cf(cf(&db, "audit"), index_key(0), index_key(u64::MAX));
        batch.delete_cf(cf(&db, "audit"), index_key(u64::MAX));
        batch.delete_range_cf(cf(&db, "federation"), b"".as_slice(), [0xffu8].as_slice());
        for s in &payload.sessions {
            batch.put_cf(cf(&db, "sessions"), s.id.as_str(), encode(s)?);
        }
        let fed = payload.federation_mutations().collect::<Vec<_>>();
        self.persist(&mut batch, &fed)?;
        for ev in &payload.audit {
            batch.put_cf(cf(&db, "audit"), index_key(ev.seq), encode(ev)?);
        }
        let sm = cf(&db, "sm");
        match &payload.policy {
            Some(p) => batch.put_cf(sm, keys::POLICY, encode(p)?),
            None => batch.delete_cf(sm, keys::POLICY),
        }
        batch.put_cf(sm, keys::CLOCK, encode(&payload.clock)?);
        batch.put_cf(sm, keys::AUDIT_NEXT, encode(&payload.audit_next)?);
        batch.put_cf(sm, keys::APPLIED, encode(&meta.last_log_id)?);
        batch.put_cf(sm, keys::MEMBERSHIP, encode(&meta.last_membership)?);
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        db.write_opt(batch, &opts)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), any_err(e)))?;
        snapshot::save_current(&db, meta, data)?;

        let mut store = SessionStore::new();
        for m in &fed {
            store.apply_mutation(m);
        }
        store.restore_meta(payload.clock, payload.policy);
        for s in payload.sessions {
            store.put(s);
        }
        *self.state.write() = store;
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.audit_next = payload.audit_next;
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
        SnapshotBuilder::capture(self.db.clone(), self.applied, self.membership.clone())
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<std::io::Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(std::io::Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<std::io::Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        self.install(meta, snapshot.get_ref())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<openraft::Snapshot<TypeConfig>>, StorageError> {
        snapshot::load_current(&self.db)
    }
}

impl StateReader {
    /// Runs `f` with the applied session store (never hold it across an await).
    pub fn read<R>(&self, f: impl FnOnce(&SessionStore) -> R) -> R {
        f(&self.state.read())
    }

    /// Subscribes to session changes as they are applied.
    pub fn subscribe(&self) -> broadcast::Receiver<AppliedChange> {
        self.changes.subscribe()
    }

    /// Audit events matching `q`, newest first.
    pub fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, StorageError> {
        let mut out = Vec::new();
        let it = self
            .db
            .iterator_cf(cf(&self.db, "audit"), IteratorMode::End);
        for item in it {
            let (_, v) = item.map_err(|e| StorageIOError::read_state_machine(any_err(e)))?;
            let ev: AuditEvent = decode(&v)?;
            if let Some(since) = q.since {
                if ev.at < since {
                    break;
                }
            }
            let keep = q
                .user_id
                .as_ref()
                .is_none_or(|u| ev.user_id.as_ref() == Some(u))
                && q.session_id
                    .as_ref()
                    .is_none_or(|s| ev.session_id.as_ref() == Some(s))
                && q.kind.as_ref().is_none_or(|k| &ev.kind == k);
            if keep {
                out.push(ev);
                if out.len() >= q.limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The applied log index and a SHA-256 over every state record (sessions, audit, policy,
    /// clock, counters, membership), read from one point-in-time view. Replicas at the same
    /// index must agree on it.
    pub fn digest(&self) -> Result<(Option<u64>, String), StorageError> {
        let snap = self.db.snapshot();
        let read =
            |e: rocksdb::Error| StorageError::from(StorageIOError::read_state_machine(any_err(e)));
        let mut h = Sha256::new();
        for name in ["sessions", "audit", "federation"] {
            for item in snap.iterator_cf(
                cf(&self.db, name),
                IteratorMode::From(b"", Direction::Forward),
            ) {
                let (k, v) = item.map_err(read)?;
                h.update((k.len() as u64).to_be_bytes());
                h.update(&k);
                h.update((v.len() as u64).to_be_bytes());
                h.update(&v);
            }
        }
        let mut applied = None;
        for key in keys::SM_STATE_KEYS {
            let v = snap
                .get_cf(cf(&self.db, "sm"), key)
                .map_err(read)?
                .unwrap_or_default();
            if key == keys::APPLIED {
                applied = serde_json::from_slice::<Option<LogId>>(&v)
                    .ok()
                    .flatten()
                    .map(|l| l.index);
            }
            h.update(key);
            h.update((v.len() as u64).to_be_bytes());
            h.update(&v);
        }
        Ok((applied, hex::encode(h.finalize())))
    }
}

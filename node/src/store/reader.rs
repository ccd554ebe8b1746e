//! The read side of the applied state: the shared in-memory store, the audit log on disk, the
//! stream of applied changes, and the state digest that replicas compare.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use rocksdb::{Direction, IteratorMode, DB};
use sessync_proto::api::AuditEvent;
use sessync_proto::{SessionId, Timestamp, UserId};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

use super::audit_log::AuditStats;
use super::layout::{self, Cf, SmKey};
use super::read_err;
use crate::raft_types::{LogId, StorageError};
use crate::session::{Session, SessionStore};

/// A session change as it was applied, for live subscribers.
#[derive(Clone, Debug)]
pub(crate) struct AppliedChange {
    pub(crate) index: u64,
    pub(crate) session: Session,
}

/// A read handle on the applied state; cheap to clone.
#[derive(Clone)]
pub(crate) struct StateReader {
    db: Arc<DB>,
    state: Arc<RwLock<SessionStore>>,
    changes: broadcast::Sender<AppliedChange>,
    audit: Arc<AuditStats>,
}

/// Closes the database once every other handle on it is gone. RocksDB closes when the last
/// handle drops, and openraft's storage tasks drop theirs a moment after `Raft::shutdown`
/// returns; holding one handle here makes this the last, so the close (and the release of the
/// directory's lock) has finished when [`DbCloser::close`] returns.
pub(crate) struct DbCloser(Arc<DB>);

impl DbCloser {
    /// Waits, at most `within`, until this is the only handle, then closes the database;
    /// whether it did.
    pub(crate) async fn close(self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while Arc::strong_count(&self.0) > 1 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Closing flushes and syncs: off the async threads.
        let db = self.0;
        tokio::task::spawn_blocking(move || drop(db)).await.is_ok()
    }
}

/// Filters for reading the audit log, newest first.
#[derive(Clone, Debug, Default)]
pub(crate) struct AuditQuery {
    pub(crate) user_id: Option<UserId>,
    pub(crate) session_id: Option<SessionId>,
    pub(crate) kind: Option<String>,
    pub(crate) since: Option<Timestamp>,
    /// Only events with a smaller sequence number (the page after a cursor).
    pub(crate) before: Option<u64>,
    pub(crate) limit: usize,
}

impl StateReader {
    pub(super) fn new(
        db: Arc<DB>,
        state: Arc<RwLock<SessionStore>>,
        changes: broadcast::Sender<AppliedChange>,
        audit: Arc<AuditStats>,
    ) -> Self {
        Self {
            db,
            state,
            changes,
            audit,
        }
    }

    /// How many audit events are kept and have been trimmed (for metrics).
    pub(crate) fn audit_stats(&self) -> &AuditStats {
        &self.audit
    }

    /// The handle that closes the database at shutdown (see [`DbCloser`]).
    pub(crate) fn closer(&self) -> DbCloser {
        DbCloser(self.db.clone())
    }

    /// Runs `f` with the applied session store (never hold it across an await).
    pub(crate) fn read<R>(&self, f: impl FnOnce(&SessionStore) -> R) -> R {
        f(&self.state.read())
    }

    /// Subscribes to session changes as they are applied.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<AppliedChange> {
        self.changes.subscribe()
    }

    /// Audit events matching `q`, newest first.
    pub(crate) fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, StorageError> {
        let mut out = Vec::new();
        let key;
        let mode = match q.before {
            // Newest first, from just below the previous page's last event.
            Some(0) => return Ok(out),
            Some(seq) => {
                key = layout::index_key(seq - 1);
                IteratorMode::From(&key, Direction::Reverse)
            }
            None => IteratorMode::End,
        };
        let it = self.db.iterator_cf(Cf::Audit.of(&self.db), mode);
        for item in it {
            let (_, v) = item.map_err(read_err)?;
            let ev: AuditEvent = layout::decode_value(Cf::Audit, &v).map_err(read_err)?;
            if q.since.is_some_and(|since| ev.at < since) {
                break;
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

    /// The applied log index and a SHA-256 over every state record (sessions, audit,
    /// federation, policy, clock, counters, membership), read from one point-in-time view.
    /// Replicas at the same index must agree on it.
    pub(crate) fn digest(&self) -> Result<(Option<u64>, String), StorageError> {
        let snap = self.db.snapshot();
        let mut h = Sha256::new();
        for cf in Cf::STATE {
            for item in
                snap.iterator_cf(cf.of(&self.db), IteratorMode::From(b"", Direction::Forward))
            {
                let (k, v) = item.map_err(read_err)?;
                h.update((k.len() as u64).to_be_bytes());
                h.update(&k);
                h.update((v.len() as u64).to_be_bytes());
                h.update(&v);
            }
        }
        let mut applied = None;
        for key in SmKey::STATE {
            let v = snap
                .get_cf(Cf::Sm.of(&self.db), key.bytes())
                .map_err(read_err)?
                .unwrap_or_default();
            if key == SmKey::Applied {
                applied = serde_json::from_slice::<Option<LogId>>(&v)
                    .ok()
                    .flatten()
                    .map(|l| l.index);
            }
            h.update(key.bytes());
            h.update((v.len() as u64).to_be_bytes());
            h.update(&v);
        }
        Ok((applied, hex::encode(h.finalize())))
    }
}

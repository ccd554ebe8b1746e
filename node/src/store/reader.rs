//! The read side of the applied state: the shared in-memory store, the audit log on disk, the
//! stream of applied changes, and the state digest that replicas compare.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use rocksdb::{Direction, IteratorMode, SnapshotWithThreadMode, DB};
use sessync_proto::api::AuditEvent;
use sessync_proto::{SessionId, Timestamp, UserId};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

use super::audit_log::AuditStats;
use super::backup::content_digest;
use super::identity::ClusterIdentity;
use super::layout::{self, Cf, SmKey};
use super::read_err;
use super::snapshot_dir::SnapshotDir;
use crate::raft_types::{LogId, StorageError};
use crate::session::{Session, SessionStore};

/// A session change as it was applied, for live subscribers.
#[derive(Clone, Debug)]
pub(crate) struct AppliedChange {
    pub(crate) index: u64,
    pub(crate) session: Session,
}

/// Why the state on disk could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// A snapshot is being written over the state on disk (or its install stopped part way and
    /// is finished when the node restarts): what is there now is neither state.
    #[error("a snapshot is being installed on this node; retry in a moment, or ask another node")]
    Installing,
    #[error(transparent)]
    Storage(Box<StorageError>),
}

impl From<StorageError> for ReadError {
    fn from(e: StorageError) -> Self {
        ReadError::Storage(Box::new(e))
    }
}

/// Counts snapshot installs as a sequence lock over the state on disk: odd while one writes
/// over it, even otherwise. A reader takes its RocksDB view between two loads of the same even
/// value, so it saw the state before an install or after it, never part of one.
#[derive(Clone, Default)]
pub(super) struct InstallSeq(Arc<AtomicU64>);

impl InstallSeq {
    /// The write pass of an install begins (left odd if the install fails: the store is then
    /// half written until it reopens and finishes the install).
    pub(super) fn begin(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    /// The install is done and its state swapped in.
    pub(super) fn end(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    /// Runs `read` on a point-in-time view of the state on disk, if no install wrote over it
    /// meanwhile.
    fn consistent<'a, R>(
        &self,
        db: &'a DB,
        read: impl FnOnce(&SnapshotWithThreadMode<'a, DB>) -> Result<R, StorageError>,
    ) -> Result<R, ReadError> {
        let before = self.0.load(Ordering::SeqCst);
        if before % 2 == 1 {
            return Err(ReadError::Installing);
        }
        let view = db.snapshot();
        if self.0.load(Ordering::SeqCst) != before {
            return Err(ReadError::Installing);
        }
        Ok(read(&view)?)
    }
}

/// The latest stamp this replica applied while it was current (within the skew bound of this
/// node's wall clock when applied), and the monotonic instant it was applied at: how far cluster
/// time can have moved since is known without the wall clock. Kept in memory (a restarted node
/// has none until it applies a current stamp); stamps applied in a catch-up are old and not
/// recorded.
#[derive(Clone, Default)]
pub(crate) struct AppliedStamp(Arc<parking_lot::Mutex<Option<(Timestamp, std::time::Instant)>>>);

impl AppliedStamp {
    /// The replica has applied cluster time `clock`; `bound` is `max_clock_skew`.
    pub(super) fn applied(&self, clock: Timestamp, bound: Duration) {
        let bound_ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
        if clock.millis().abs_diff(Timestamp::now().millis()) <= bound_ms {
            *self.0.lock() = Some((clock, std::time::Instant::now()));
        }
    }

    /// The latest current stamp applied, and when.
    pub(crate) fn latest(&self) -> Option<(Timestamp, std::time::Instant)> {
        *self.0.lock()
    }
}

/// A read handle on the applied state; cheap to clone.
#[derive(Clone)]
pub(crate) struct StateReader {
    db: Arc<DB>,
    state: Arc<RwLock<SessionStore>>,
    stamp: AppliedStamp,
    changes: broadcast::Sender<AppliedChange>,
    audit: Arc<AuditStats>,
    installs: InstallSeq,
    snapshots: SnapshotDir,
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

/// A replica's digests ([`StateReader::digest`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StateDigest {
    pub(crate) applied: Option<u64>,
    pub(crate) digest: String,
    pub(crate) content: String,
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
        installs: InstallSeq,
        stamp: AppliedStamp,
        snapshots: SnapshotDir,
    ) -> Self {
        Self {
            db,
            state,
            stamp,
            changes,
            audit,
            installs,
            snapshots,
        }
    }

    /// The snapshots directory (a backup's temporary file goes there).
    pub(super) fn snapshots(&self) -> &SnapshotDir {
        &self.snapshots
    }

    /// Runs `read` on a point-in-time view of the state on disk ([`InstallSeq::consistent`]).
    pub(super) fn consistent<R>(
        &self,
        read: impl FnOnce(&DB, &SnapshotWithThreadMode<'_, DB>) -> Result<R, StorageError>,
    ) -> Result<R, ReadError> {
        self.installs
            .consistent(&self.db, |view| read(&self.db, view))
    }

    /// This node's cluster identity, loaded from the store (make one and share it).
    pub(crate) fn cluster_identity(&self) -> Result<ClusterIdentity, ReadError> {
        Ok(ClusterIdentity::load(self.db.clone())?)
    }

    /// How many audit events are kept and have been trimmed (for metrics).
    pub(crate) fn audit_stats(&self) -> &AuditStats {
        &self.audit
    }

    /// The handle that closes the database at shutdown (see [`DbCloser`]).
    pub(crate) fn closer(&self) -> DbCloser {
        DbCloser(self.db.clone())
    }

    /// The latest current stamp this replica applied, and the instant it did ([`AppliedStamp`]).
    pub(crate) fn applied_stamp(&self) -> Option<(Timestamp, std::time::Instant)> {
        self.stamp.latest()
    }

    /// Runs `f` with the applied session store (never hold it across an await).
    pub(crate) fn read<R>(&self, f: impl FnOnce(&SessionStore) -> R) -> R {
        f(&self.state.read())
    }

    /// Subscribes to session changes as they are applied.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<AppliedChange> {
        self.changes.subscribe()
    }

    /// Audit events matching `q`, newest first, from one point-in-time view.
    pub(crate) fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, ReadError> {
        self.installs
            .consistent(&self.db, |view| audit_events(&self.db, view, q))
    }

    /// The applied log index, a SHA-256 over every state record (sessions, audit, federation,
    /// policy, clock, counters, membership), and the content digest (`backup`: the same
    /// without the applied id and membership), read from one point-in-time view. Replicas at
    /// the same index must agree on both.
    pub(crate) fn digest(&self) -> Result<StateDigest, ReadError> {
        self.installs.consistent(&self.db, |view| {
            let (applied, digest) = state_digest(&self.db, view)?;
            Ok(StateDigest {
                applied,
                digest,
                content: content_digest(&self.db, view)?,
            })
        })
    }
}

fn audit_events(
    db: &DB,
    view: &SnapshotWithThreadMode<'_, DB>,
    q: &AuditQuery,
) -> Result<Vec<AuditEvent>, StorageError> {
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
    for item in view.iterator_cf(Cf::Audit.of(db), mode) {
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

fn state_digest(
    db: &DB,
    view: &SnapshotWithThreadMode<'_, DB>,
) -> Result<(Option<u64>, String), StorageError> {
    let mut h = Sha256::new();
    for cf in Cf::STATE {
        for item in view.iterator_cf(cf.of(db), IteratorMode::From(b"", Direction::Forward)) {
            let (k, v) = item.map_err(read_err)?;
            h.update((k.len() as u64).to_be_bytes());
            h.update(&k);
            h.update((v.len() as u64).to_be_bytes());
            h.update(&v);
        }
    }
    let mut applied = None;
    for key in SmKey::STATE {
        let v = view
            .get_cf(Cf::Sm.of(db), key.bytes())
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

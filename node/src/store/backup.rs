//! Online backups and the content digest they promise.
//!
//! A backup is a snapshot file written from a RocksDB point-in-time view of the applied state
//! (consistent with the applied log id it holds, as every view is: an entry's changes and the
//! applied id are one batch), so taking one never holds up the apply path or a write. It is
//! written to a temporary file beside the snapshots, hashed, and handed out open and already
//! unlinked: nothing is left behind, however the transfer ends.
//!
//! The content digest covers what a restore must bring back (records, audit log, policy, cluster
//! time, audit counter) and not where it sits in a log (applied id, membership), which a restore
//! into a new cluster changes; items are hashed in their canonical encoding, in a snapshot's
//! order, so a backup's digest and a restored node's agree.

use std::fs::File;
use std::io::Read;

use sessync_proto::{Policy, Timestamp};
use sha2::{Digest, Sha256};

use super::layout::{self, Cf, SmKey};
use super::reader::{ReadError, StateReader};
use super::snapshot::{sm_value, view_header, view_items, write_file, RocksSnapshot};
use super::snapshot_dir::Temp;
use super::snapshot_format::Item;
use super::{read_err, snapshot_write_err};
use crate::raft_types::{LogId, SnapshotMeta, StorageError, StoredMembership};

/// A backup just taken: what it holds, and its snapshot file, open (and already unlinked).
pub(crate) struct TakenBackup {
    pub(crate) index: u64,
    pub(crate) term: u64,
    pub(crate) cluster_time: Timestamp,
    pub(crate) digest: String,
    pub(crate) bytes: u64,
    pub(crate) sha256: String,
    pub(crate) file: File,
}

/// The content digest, fed item by item.
pub(super) struct ContentHash(Sha256);

impl ContentHash {
    pub(super) fn new() -> Self {
        ContentHash(Sha256::new())
    }

    fn part(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
    }

    /// One record or audit event, in its canonical encoding.
    pub(super) fn item(&mut self, item: &Item) -> Result<(), StorageError> {
        match item {
            Item::Record(r) => {
                let (cf, k, v) = layout::encode_record(r).map_err(read_err)?;
                self.part(cf.name().as_bytes());
                self.part(&k);
                self.part(&v);
            }
            Item::Audit(ev) => {
                self.part(Cf::Audit.name().as_bytes());
                self.part(&layout::index_key(ev.seq));
                self.part(&layout::encode(Cf::Audit, ev).map_err(read_err)?);
            }
        }
        Ok(())
    }

    /// The digest, after the state that is not a record.
    pub(super) fn finish(
        mut self,
        policy: &Option<Policy>,
        clock: Timestamp,
        audit_next: u64,
    ) -> Result<String, StorageError> {
        let policy = serde_json::to_vec(policy).map_err(read_err)?;
        self.part(&policy);
        self.part(&clock.millis().to_be_bytes());
        self.part(&audit_next.to_be_bytes());
        Ok(hex::encode(self.0.finalize()))
    }
}

/// The content digest of the state `view` holds.
pub(super) fn content_digest(
    db: &rocksdb::DB,
    view: &RocksSnapshot<'_>,
) -> Result<String, StorageError> {
    let header = view_header(db, view, SnapshotMeta::default())?;
    let mut hash = ContentHash::new();
    for item in view_items(db, view) {
        hash.item(&item?)?;
    }
    hash.finish(&header.policy, header.clock, header.audit_next)
}

impl StateReader {
    /// Writes a backup of the applied state as it is now (blocking: seconds for a large state).
    pub(crate) fn backup(&self) -> Result<TakenBackup, ReadError> {
        let dir = self.snapshots().clone();
        self.consistent(|db, view| {
            let applied = sm_value::<Option<LogId>>(view, db, SmKey::Applied)?
                .flatten()
                .ok_or_else(|| read_err(NothingApplied))?;
            let membership =
                sm_value::<StoredMembership>(view, db, SmKey::Membership)?.unwrap_or_default();
            let meta = SnapshotMeta {
                last_log_id: Some(applied),
                last_membership: membership,
                snapshot_id: format!(
                    "{}-{}-{}",
                    applied.leader_id.term, applied.leader_id.node_id, applied.index
                ),
            };
            let header = view_header(db, view, meta.clone())?;
            let (policy, clock, audit_next) =
                (header.policy.clone(), header.clock, header.audit_next);
            let mut hash = ContentHash::new();
            let items = view_items(db, view).map(|item| {
                let item = item?;
                hash.item(&item)?;
                Ok(item)
            });
            let temp = dir.temp(Temp::Backup);
            let (_, bytes) = write_file(&temp, header, items, &meta)?;
            let digest = hash.finish(&policy, clock, audit_next)?;
            let opened = File::open(&temp).map_err(|e| snapshot_write_err(Some(&meta), e));
            // The open handle keeps the file readable; the name goes now, whatever happens next.
            let _ = std::fs::remove_file(&temp);
            let mut file = opened?;
            let sha256 = sha256_of(&mut file).map_err(|e| snapshot_write_err(Some(&meta), e))?;
            Ok(TakenBackup {
                index: applied.index,
                term: applied.leader_id.term,
                cluster_time: clock,
                digest,
                bytes,
                sha256,
                file,
            })
        })
    }
}

/// The SHA-256 of what `file` holds; leaves it rewound.
fn sha256_of(file: &mut File) -> std::io::Result<String> {
    use std::io::{Seek, SeekFrom};
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(hex::encode(hash.finalize()))
}

/// A backup of a cluster that has applied nothing yet.
#[derive(Debug, thiserror::Error)]
#[error("this node has applied nothing yet: there is no state to back up")]
struct NothingApplied;

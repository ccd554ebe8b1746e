//! Installing a snapshot file: in bounded batches, yet in one atomic step.
//!
//! 1. *Read pass*: the file is read whole and checked (every line, the line count and checksum
//!    of its end line, that it is the snapshot openraft named) while the new in-memory store and
//!    audit index are built. A bad file is refused here, and nothing has changed.
//! 2. The file is renamed into place (`<id>.snap`) and a synced marker, the snapshot's meta under
//!    `SmKey::SnapshotInstall`, says an install of it has begun.
//! 3. *Write pass*: the state families are cleared and the records written in batches of
//!    [`BATCH`] (not synced: the last write's sync makes the earlier ones durable too).
//! 4. One synced batch writes the rest: applied log id, membership, policy, clock, audit
//!    counter, the snapshot meta, and removes the marker.
//!
//! A crash between 2 and 4 leaves the marker, and [`recover`] redoes 3 and 4 from the kept file
//! when the store opens, before anything is loaded: no restarted node sees the state half
//! installed. The state machine swaps the new in-memory store in after 4. Readers of the state
//! on disk (the audit log, the digest) are told to retry from 2 until the swap
//! ([`InstallSeq`]): none of them sees the state half installed either.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use rocksdb::{WriteBatch, DB};

use super::audit_log::AuditIndex;
use super::layout::{self, Cf, SmKey};
use super::reader::InstallSeq;
use super::snapshot::current_meta;
use super::snapshot_dir::{SnapshotDir, Temp};
use super::snapshot_format::{Header, Item, Reader, SnapshotError};
use super::state_machine::{get_sm, put_sm};
use super::{snapshot_read_err, snapshot_write_err, synced};
use crate::raft_types::{SnapshotMeta, StorageError};
use crate::session::SessionStore;

/// Records per batch of the write pass: a few MiB of values at a time.
pub(super) const BATCH: usize = 10_000;

/// The read buffer of a snapshot file.
const READ_BUF: usize = 256 * 1024;

/// How the write pass batches; tests stop it part way, as a crash would.
#[derive(Clone, Copy, Debug)]
pub(super) struct WritePlan {
    pub(super) batch: usize,
    /// Stop with an error after this many batches, leaving the marker (tests only).
    pub(super) stop_after: Option<usize>,
}

impl Default for WritePlan {
    fn default() -> Self {
        Self {
            batch: BATCH,
            stop_after: None,
        }
    }
}

/// What the read pass built: the state machine swaps it in once the install is done.
pub(super) struct Installed {
    pub(super) store: SessionStore,
    pub(super) audit: AuditIndex,
    pub(super) audit_next: u64,
}

/// Installs the snapshot `meta` from `file` (opened at `path`): steps 1 to 4 above.
pub(super) fn install(
    db: &DB,
    dir: &SnapshotDir,
    meta: &SnapshotMeta,
    file: File,
    path: PathBuf,
    plan: WritePlan,
    installs: &InstallSeq,
) -> Result<Installed, StorageError> {
    let ours = take_in(dir, file, path).map_err(|e| snapshot_read_err(Some(meta), e))?;
    let checked = dir
        .file_of(&meta.snapshot_id)
        .and_then(|target| Ok((target, read_state(&ours, meta)?)));
    let (target, installed) = match checked {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&ours);
            tracing::warn!(snapshot = %meta.snapshot_id, error = %e, "refused a snapshot");
            return Err(snapshot_read_err(Some(meta), e));
        }
    };
    // Held to the end: no build makes another snapshot current meanwhile, and none removes
    // the file the marker names.
    let _one_at_a_time = dir.lock();
    dir.publish(&ours, &target)
        .map_err(|e| snapshot_write_err(Some(meta), e))?;
    let marker = layout::encode(Cf::Sm, meta).map_err(|e| snapshot_write_err(Some(meta), e))?;
    // From here to the state machine's swap, readers of the disk are told to retry.
    installs.begin();
    db.put_cf_opt(
        Cf::Sm.of(db),
        SmKey::SnapshotInstall.bytes(),
        marker,
        &synced(),
    )
    .map_err(|e| snapshot_write_err(Some(meta), e))?;
    write_state(db, &target, meta, plan)?;
    let current = current_meta(db)?
        .map(|m| dir.file_of(&m.snapshot_id))
        .transpose()
        .map_err(|e| snapshot_read_err(Some(meta), e))?;
    dir.remove_snapshots_except(current.as_deref());
    dir.remove_temps(Temp::Recv);
    Ok(installed)
}

/// The snapshot file in this store's directory: the file a transfer wrote there as it is, any
/// other (openraft may hand over another store's file) copied in.
fn take_in(dir: &SnapshotDir, mut file: File, path: PathBuf) -> Result<PathBuf, SnapshotError> {
    if dir.is_received(&path) {
        file.sync_all()?;
        return Ok(path);
    }
    let temp = dir.temp(Temp::Recv);
    let mut copy = || -> Result<(), SnapshotError> {
        file.seek(SeekFrom::Start(0))?;
        let mut out = File::create_new(&temp)?;
        std::io::copy(&mut file, &mut out)?;
        out.sync_all()?;
        Ok(())
    };
    copy().inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })?;
    Ok(temp)
}

/// Opens the snapshot file at `path` for reading, checking that it is `meta`'s.
fn open(
    path: &Path,
    meta: &SnapshotMeta,
) -> Result<(Reader<BufReader<File>>, Header), SnapshotError> {
    let file = File::open(path)?;
    let (reader, header) = Reader::open(BufReader::with_capacity(READ_BUF, file))?;
    if header.meta != *meta {
        return Err(SnapshotError::WrongSnapshot {
            expected: meta.to_string(),
            found: header.meta.to_string(),
        });
    }
    Ok((reader, header))
}

/// Step 1: reads and checks the whole file, building the new store as it goes.
fn read_state(path: &Path, meta: &SnapshotMeta) -> Result<Installed, SnapshotError> {
    let (mut reader, header) = open(path, meta)?;
    let mut store = SessionStore::new();
    store.restore_meta(header.clock, header.policy);
    let mut audit = AuditIndex::default();
    while let Some(item) = reader.next_item()? {
        match item {
            Item::Record(r) => store.insert(r),
            Item::Audit(ev) => {
                // Trims drop a prefix of the index: it must be in sequence order.
                if let Some(prev) = audit.last_seq().filter(|p| *p >= ev.seq) {
                    return Err(SnapshotError::AuditOrder { seq: ev.seq, prev });
                }
                let stored = layout::encode(Cf::Audit, &ev)?.len() as u64;
                audit.push(ev.seq, stored, ev.at);
            }
        }
    }
    Ok(Installed {
        store,
        audit,
        audit_next: header.audit_next,
    })
}

/// Steps 3 and 4: writes the state of the (checked) file at `path`, then the last batch.
fn write_state(
    db: &DB,
    path: &Path,
    meta: &SnapshotMeta,
    plan: WritePlan,
) -> Result<(), StorageError> {
    let (mut reader, header) = open(path, meta).map_err(|e| snapshot_read_err(Some(meta), e))?;
    let mut batch = WriteBatch::default();
    for cf in Cf::STATE {
        layout::clear(db, &mut batch, cf);
    }
    let (mut in_batch, mut batches) = (0, 0);
    while let Some(item) = reader
        .next_item()
        .map_err(|e| snapshot_read_err(Some(meta), e))?
    {
        match item {
            Item::Record(r) => layout::put(db, &mut batch, &r),
            Item::Audit(ev) => layout::put_audit(db, &mut batch, &ev),
        }
        .map_err(|e| snapshot_write_err(Some(meta), e))?;
        in_batch += 1;
        if in_batch == plan.batch {
            db.write(std::mem::take(&mut batch))
                .map_err(|e| snapshot_write_err(Some(meta), e))?;
            in_batch = 0;
            batches += 1;
            if plan.stop_after == Some(batches) {
                return Err(snapshot_write_err(
                    Some(meta),
                    std::io::Error::other("install stopped (test)"),
                ));
            }
        }
    }
    let sm = Cf::Sm.of(db);
    match &header.policy {
        Some(p) => put_sm(db, &mut batch, SmKey::Policy, p)?,
        None => batch.delete_cf(sm, SmKey::Policy.bytes()),
    }
    put_sm(db, &mut batch, SmKey::Clock, &header.clock)?;
    put_sm(db, &mut batch, SmKey::AuditNext, &header.audit_next)?;
    put_sm(db, &mut batch, SmKey::Applied, &meta.last_log_id)?;
    put_sm(db, &mut batch, SmKey::Membership, &meta.last_membership)?;
    // The state is this snapshot's either way; it becomes the one sent to others only if no
    // newer one is current.
    if current_meta(db)?.is_none_or(|c| c.last_log_id <= meta.last_log_id) {
        put_sm(db, &mut batch, SmKey::SnapshotMeta, meta)?;
    }
    batch.delete_cf(sm, SmKey::SnapshotInstall.bytes());
    db.write_opt(batch, &synced())
        .map_err(|e| snapshot_write_err(Some(meta), e))
}

/// Finishes an install a crash interrupted (its marker is still there), from its kept file.
/// Runs when the store opens, before the state is loaded.
pub(super) fn recover(db: &DB, dir: &SnapshotDir) -> Result<(), StorageError> {
    let Some(meta) = get_sm::<SnapshotMeta>(db, SmKey::SnapshotInstall)? else {
        return Ok(());
    };
    tracing::warn!(snapshot = %meta.snapshot_id, "finishing a snapshot install a stop interrupted");
    let path = dir
        .file_of(&meta.snapshot_id)
        .map_err(|e| snapshot_read_err(Some(&meta), e))?;
    write_state(db, &path, &meta, WritePlan::default())
}

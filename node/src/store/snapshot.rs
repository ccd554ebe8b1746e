//! Building snapshots, and the current one.
//!
//! A snapshot is built on openraft's builder task from a RocksDB point-in-time view taken
//! between two applies (so building never blocks the apply path), streamed record by record
//! into a file (`snapshot_format`) on a blocking thread, synced, renamed into place, and only
//! then made current by its meta in the `sm` family (`snapshot_meta`). The file a meta names is
//! `<snapshot id>.snap` in the snapshots directory; the older files go once a newer one is
//! current. Installing one is `snapshot_install`.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

use openraft::RaftSnapshotBuilder;
use rocksdb::{IteratorMode, ReadOptions, SnapshotWithThreadMode, DB};
use serde::de::DeserializeOwned;

use super::layout::{self, Cf, SmKey};
use super::snapshot_dir::{SnapshotDir, SnapshotFile, Temp};
use super::snapshot_format::{Header, Item, Writer, FORMAT};
use super::{read_err, snapshot_read_err, snapshot_write_err, synced};
use crate::raft_types::{LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

/// The write buffer of a snapshot file: the only state a build holds besides one record.
const WRITE_BUF: usize = 256 * 1024;

/// How far a build reads ahead in RocksDB's files.
const SCAN_READAHEAD: usize = 2 * 1024 * 1024;

pub(super) type RocksSnapshot<'a> = SnapshotWithThreadMode<'a, DB>;

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
    view: Arc<OwnedView>,
    dir: SnapshotDir,
    applied: Option<LogId>,
    membership: StoredMembership,
}

impl SnapshotBuilder {
    /// Captures the current state: cheap, and consistent with `applied` because it runs on the
    /// state machine's task between two applies.
    pub(super) fn capture(
        db: Arc<DB>,
        dir: SnapshotDir,
        applied: Option<LogId>,
        membership: StoredMembership,
    ) -> Self {
        Self {
            view: Arc::new(OwnedView::new(db, |db| db.snapshot())),
            dir,
            applied,
            membership,
        }
    }

    fn meta(&self) -> SnapshotMeta {
        let snapshot_id = match self.applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.leader_id.node_id, l.index),
            None => "empty".to_owned(),
        };
        SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<openraft::Snapshot<TypeConfig>, StorageError> {
        let meta = self.meta();
        let (view, dir, m) = (self.view.clone(), self.dir.clone(), meta.clone());
        // Reading every record and writing the file takes seconds for a large state: off the
        // async threads.
        let file = tokio::task::spawn_blocking(move || build(&view, &dir, &m))
            .await
            .map_err(|e| snapshot_write_err(Some(&meta), e))??;
        Ok(openraft::Snapshot {
            meta,
            snapshot: Box::new(file),
        })
    }
}

/// Writes the view's state to a file and saves it as the current snapshot.
fn build(
    view: &OwnedView,
    dir: &SnapshotDir,
    meta: &SnapshotMeta,
) -> Result<SnapshotFile, StorageError> {
    let db = view.borrow_owner();
    let snap = view.borrow_dependent();
    let temp = dir.temp(Temp::Build);
    let header = view_header(db, snap, meta.clone())?;
    let (lines, bytes) = write_file(&temp, header, view_items(db, snap), meta)?;
    let file = save_built(db, dir, meta, &temp)?;
    tracing::info!(snapshot = %meta.snapshot_id, lines, bytes, "built snapshot");
    Ok(file)
}

/// A snapshot file's header for the state `snap` holds, as of `meta`.
pub(super) fn view_header(
    db: &DB,
    snap: &RocksSnapshot<'_>,
    meta: SnapshotMeta,
) -> Result<Header, StorageError> {
    Ok(Header {
        format: FORMAT,
        meta,
        policy: sm_value(snap, db, SmKey::Policy)?,
        clock: sm_value(snap, db, SmKey::Clock)?.unwrap_or_default(),
        audit_next: sm_value(snap, db, SmKey::AuditNext)?.unwrap_or(0),
    })
}

/// Every item of the state `snap` holds, in a snapshot file's order: the records, family by
/// family in key order, then the audit log.
pub(super) fn view_items<'a>(
    db: &'a DB,
    snap: &'a RocksSnapshot<'_>,
) -> impl Iterator<Item = Result<Item, StorageError>> + 'a {
    let records = Cf::RECORDS.into_iter().flat_map(move |cf| {
        snap.iterator_cf_opt(cf.of(db), scan(), IteratorMode::Start)
            .map(move |kv| {
                let (k, v) = kv.map_err(read_err)?;
                let record = layout::decode(cf, &k, &v).map_err(read_err)?;
                Ok(Item::Record(record))
            })
    });
    let audit = snap
        .iterator_cf_opt(Cf::Audit.of(db), scan(), IteratorMode::Start)
        .map(|kv| {
            let (_, v) = kv.map_err(read_err)?;
            Ok(Item::Audit(
                layout::decode_value(Cf::Audit, &v).map_err(read_err)?,
            ))
        });
    records.chain(audit)
}

/// Writes a complete, synced snapshot file at `path`: `header`, then `items`. Its lines and
/// bytes. Nothing is left at `path` on failure.
pub(super) fn write_file(
    path: &Path,
    header: Header,
    items: impl Iterator<Item = Result<Item, StorageError>>,
    meta: &SnapshotMeta,
) -> Result<(u64, u64), StorageError> {
    let write = || -> Result<(u64, u64), StorageError> {
        let file = File::create_new(path).map_err(|e| snapshot_write_err(Some(meta), e))?;
        let mut w = Writer::new(BufWriter::with_capacity(WRITE_BUF, file), header)
            .map_err(|e| snapshot_write_err(Some(meta), e))?;
        for item in items {
            w.item(item?)
                .map_err(|e| snapshot_write_err(Some(meta), e))?;
        }
        let (out, lines) = w.finish().map_err(|e| snapshot_write_err(Some(meta), e))?;
        let file = out
            .into_inner()
            .map_err(|e| snapshot_write_err(Some(meta), e.into_error()))?;
        file.sync_all()
            .map_err(|e| snapshot_write_err(Some(meta), e))?;
        let bytes = file
            .metadata()
            .map_err(|e| snapshot_write_err(Some(meta), e))?
            .len();
        Ok((lines, bytes))
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(path);
    })
}

/// Makes the built file at `temp` the current snapshot, unless a newer one is current already
/// (a build that started before a newer snapshot was installed must not replace it); either
/// way the file, open, for openraft.
fn save_built(
    db: &DB,
    dir: &SnapshotDir,
    meta: &SnapshotMeta,
    temp: &Path,
) -> Result<SnapshotFile, StorageError> {
    let _one_at_a_time = dir.lock();
    if let Some(current) = current_meta(db)? {
        if current.last_log_id > meta.last_log_id {
            tracing::info!(
                stale = %meta.snapshot_id,
                current = %current.snapshot_id,
                "not storing a snapshot older than the current one"
            );
            // Opened before it is removed: the handle keeps it readable.
            let file = File::open(temp).map_err(|e| snapshot_write_err(Some(meta), e))?;
            let _ = std::fs::remove_file(temp);
            return Ok(SnapshotFile::new(file, temp.to_owned()));
        }
    }
    let target = dir
        .file_of(&meta.snapshot_id)
        .map_err(|e| snapshot_write_err(Some(meta), e))?;
    dir.publish(temp, &target)
        .map_err(|e| snapshot_write_err(Some(meta), e))?;
    let meta_json = layout::encode(Cf::Sm, meta).map_err(|e| snapshot_write_err(Some(meta), e))?;
    db.put_cf_opt(
        Cf::Sm.of(db),
        SmKey::SnapshotMeta.bytes(),
        meta_json,
        &synced(),
    )
    .map_err(|e| snapshot_write_err(Some(meta), e))?;
    dir.remove_snapshots_except(Some(&target));
    let file = File::open(&target).map_err(|e| snapshot_write_err(Some(meta), e))?;
    Ok(SnapshotFile::new(file, target))
}

/// Read options of a build's one pass over everything: read ahead, and leave the block cache
/// to the reads that come again.
fn scan() -> ReadOptions {
    let mut o = ReadOptions::default();
    o.fill_cache(false);
    o.set_readahead_size(SCAN_READAHEAD);
    o
}

/// One `sm` value as the view holds it.
pub(super) fn sm_value<T: DeserializeOwned>(
    snap: &RocksSnapshot<'_>,
    db: &DB,
    key: SmKey,
) -> Result<Option<T>, StorageError> {
    snap.get_cf(Cf::Sm.of(db), key.bytes())
        .map_err(read_err)?
        .map(|b| layout::decode_value(Cf::Sm, &b).map_err(read_err))
        .transpose()
}

/// The meta of the current snapshot, if one was built or installed.
pub(super) fn current_meta(db: &DB) -> Result<Option<SnapshotMeta>, StorageError> {
    let raw = db
        .get_cf(Cf::Sm.of(db), SmKey::SnapshotMeta.bytes())
        .map_err(|e| snapshot_read_err(None, e))?;
    raw.map(|b| layout::decode_value(Cf::Sm, &b).map_err(|e| snapshot_read_err(None, e)))
        .transpose()
}

/// The current snapshot, open for reading.
pub(super) fn load_current(
    db: &DB,
    dir: &SnapshotDir,
) -> Result<Option<openraft::Snapshot<TypeConfig>>, StorageError> {
    let _no_save_meanwhile = dir.lock();
    let Some(meta) = current_meta(db)? else {
        return Ok(None);
    };
    let path = dir
        .file_of(&meta.snapshot_id)
        .map_err(|e| snapshot_read_err(Some(&meta), e))?;
    let file = File::open(&path).map_err(|e| {
        let what = format!("the current snapshot's file {}: {e}", path.display());
        snapshot_read_err(Some(&meta), std::io::Error::new(e.kind(), what))
    })?;
    Ok(Some(openraft::Snapshot {
        meta,
        snapshot: Box::new(SnapshotFile::new(file, path)),
    }))
}

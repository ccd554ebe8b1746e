//! RocksDB storage for Raft: the log store and the state machine, sharing one database.
//!
//! [`layout`] declares the column families, their keys and where each record of the state
//! lives; [`LogStore`] is openraft's log storage (entries and vote, fsynced);
//! [`StateMachineStore`] applies entries and keeps each one's changes and the applied log id in
//! one batch; snapshots are files streamed record by record (`snapshot` builds them,
//! `snapshot_install` installs them, `snapshot_format` is their format, `snapshot_dir` where
//! they live, `snapshot_v1` converts the old format); [`StateReader`] is the read side the
//! runtime shares.

mod audit_log;
mod backup;
mod identity;
pub(crate) mod layout;
mod log_store;
mod offline;
mod reader;
mod snapshot;
mod snapshot_dir;
mod snapshot_format;
mod snapshot_install;
mod snapshot_v1;
mod state_machine;

use std::path::Path;
use std::sync::Arc;

use openraft::StorageIOError;
use rocksdb::{ColumnFamilyDescriptor, Options, WriteOptions, DB};

use crate::raft_types::{SnapshotMeta, StorageError};
pub(crate) use audit_log::AuditStats;
pub(crate) use identity::{ClusterId, ClusterIdentity};
use layout::Cf;
pub(crate) use log_store::LogStore;
pub(crate) use offline::{recover, restore, OfflineError};
pub(crate) use reader::{AppliedChange, AuditQuery, ReadError, StateReader};
use snapshot_dir::SnapshotDir;
pub(crate) use snapshot_dir::SnapshotFile;
pub(crate) use state_machine::StateMachineStore;

/// Errors opening the store.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open RocksDB at {path}: {source}")]
    Rocks {
        path: String,
        #[source]
        source: rocksdb::Error,
    },
    #[error("stored state at {path} is unreadable: {message}")]
    Corrupt { path: String, message: String },
}

/// Opens (or creates) the database at `path` and returns its log store and state machine.
/// Snapshot files go to `path/snapshots/`.
pub(crate) fn open(path: &Path) -> Result<(LogStore, StateMachineStore), OpenError> {
    let mut opts = family_options();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    // All families' memtables together: without it each of the six may hold 2 x 64 MiB.
    opts.set_db_write_buffer_size(MEMTABLES_BYTES);
    let cfs = Cf::ALL
        .iter()
        .map(|cf| ColumnFamilyDescriptor::new(cf.name(), family_options()));
    let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|source| OpenError::Rocks {
        path: path.display().to_string(),
        source,
    })?;
    let db = Arc::new(db);
    let snapshots = SnapshotDir::open(path).map_err(|e| OpenError::Corrupt {
        path: path.display().to_string(),
        message: format!("cannot make its snapshots directory: {e}"),
    })?;
    let sm = StateMachineStore::load(db.clone(), snapshots).map_err(|e| OpenError::Corrupt {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok((LogStore::new(db), sm))
}

/// RocksDB's memory for all column families' memtables together.
const MEMTABLES_BYTES: usize = 64 << 20;
/// One block cache, shared by every column family (reads are served from the in-memory
/// `SessionStore`; RocksDB is read at open, for snapshots and for the log).
const BLOCK_CACHE_BYTES: usize = 16 << 20;

/// Each column family's options: LZ4, small memtables, the one shared block cache.
fn family_options() -> Options {
    static CACHE: std::sync::OnceLock<rocksdb::Cache> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(|| rocksdb::Cache::new_lru_cache(BLOCK_CACHE_BYTES));
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_block_cache(cache);
    let mut o = Options::default();
    o.set_compression_type(rocksdb::DBCompressionType::Lz4);
    o.set_write_buffer_size(MEMTABLES_BYTES / 4);
    o.set_block_based_table_factory(&table);
    o
}

/// Wraps any error for openraft's storage errors.
pub(crate) fn any_err<E: std::error::Error + 'static>(e: E) -> openraft::AnyError {
    openraft::AnyError::new(&e)
}

/// A failure reading the state machine, as openraft's storage error.
fn read_err<E: std::error::Error + 'static>(e: E) -> StorageError {
    StorageIOError::read_state_machine(any_err(e)).into()
}

/// A failure writing the state machine, as openraft's storage error.
fn write_err<E: std::error::Error + 'static>(e: E) -> StorageError {
    StorageIOError::write_state_machine(any_err(e)).into()
}

/// A snapshot that cannot be read, or is refused, as openraft's storage error.
fn snapshot_read_err<E: std::error::Error + 'static>(
    meta: Option<&SnapshotMeta>,
    e: E,
) -> StorageError {
    StorageIOError::read_snapshot(meta.map(SnapshotMeta::signature), any_err(e)).into()
}

/// A failure writing a snapshot, as openraft's storage error.
fn snapshot_write_err<E: std::error::Error + 'static>(
    meta: Option<&SnapshotMeta>,
    e: E,
) -> StorageError {
    StorageIOError::write_snapshot(meta.map(SnapshotMeta::signature), any_err(e)).into()
}

/// Write options of a write that must be on disk when it returns.
fn synced() -> WriteOptions {
    let mut o = WriteOptions::default();
    o.set_sync(true);
    o
}

#[cfg(test)]
mod compat_tests;
#[cfg(test)]
mod offline_tests;
#[cfg(test)]
mod snapshot_rss_tests;
#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
pub(crate) mod tests;

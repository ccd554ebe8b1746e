//! RocksDB storage for Raft: the log store and the state machine, sharing one database.
//!
//! Column families:
//! - `logs`: log entries by index (big-endian u64), written with fsync;
//! - `raft`: the vote (fsynced), the committed log id and the last purged log id;
//! - `sessions`: session records by session id;
//! - `audit`: audit events by sequence number (big-endian u64);
//! - `federation`: the outbox (`o/<site>/<op_id>`), operations received from peers
//!   (`r/<origin>/<op_id>`) and the nonces peers used (`n/<origin>/<nonce>`);
//! - `sm`: the applied log id, membership, policy, clock and audit counter, written in the same
//!   batch as the session changes of each entry, and the current snapshot.

mod keys;
mod log_store;
mod snapshot;
mod state_machine;

use std::path::Path;
use std::sync::Arc;

use rocksdb::{ColumnFamilyDescriptor, Options, DB};

pub use log_store::LogStore;
pub use snapshot::SnapshotPayload;
pub use state_machine::{AuditQuery, StateMachineStore, StateReader};

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

const COLUMN_FAMILIES: [&str; 6] = ["logs", "raft", "sessions", "audit", "federation", "sm"];

/// Opens (or creates) the database at `path` and returns its log store and state machine.
pub fn open(path: &Path) -> Result<(LogStore, StateMachineStore), OpenError> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    let cfs = COLUMN_FAMILIES
        .iter()
        .map(|name| ColumnFamilyDescriptor::new(*name, Options::default()));
    let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|source| OpenError::Rocks {
        path: path.display().to_string(),
        source,
    })?;
    let db = Arc::new(db);
    let sm = StateMachineStore::load(db.clone()).map_err(|e| OpenError::Corrupt {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok((LogStore::new(db), sm))
}

/// Wraps any error for openraft's storage errors.
pub(crate) fn any_err<E: std::error::Error + 'static>(e: E) -> openraft::AnyError {
    openraft::AnyError::new(&e)
}

#[cfg(test)]
mod tests;

//! The Raft log and vote in RocksDB. Appends and votes are fsynced before openraft is told they
//! are durable; the committed log id is saved too, so a restarted node re-applies what it knew
//! was committed without waiting for a leader.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader, StorageIOError, Vote};
use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions, DB};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::layout::{index_key, key_index, Cf, RaftKey};
use super::{any_err, synced};
use crate::raft_types::{Entry, LogId, NodeId, StorageError, TypeConfig};

/// The log half of the store. Cheap to clone: clones share the database.
#[derive(Clone)]
pub(crate) struct LogStore {
    db: Arc<DB>,
}

impl LogStore {
    /// The database (the offline tools edit it beside the log).
    pub(super) fn db(&self) -> &Arc<DB> {
        &self.db
    }

    /// Writes `entries` (synced); a failure to encode one is openraft's error, a failure to
    /// write them RocksDB's.
    pub(super) fn write_entries(
        &self,
        entries: impl IntoIterator<Item = Entry>,
    ) -> Result<Result<(), rocksdb::Error>, StorageError> {
        let mut batch = WriteBatch::default();
        let logs = Cf::Logs.of(&self.db);
        for entry in entries {
            let bytes =
                serde_json::to_vec(&entry).map_err(|e| StorageIOError::write_logs(any_err(e)))?;
            batch.put_cf(logs, index_key(entry.log_id.index), bytes);
        }
        Ok(self.db.write_opt(batch, &synced()))
    }

    pub(super) fn new(db: Arc<DB>) -> Self {
        Self { db }
    }

    fn get_meta<T: DeserializeOwned>(&self, key: RaftKey) -> Result<Option<T>, StorageError> {
        let raw = self
            .db
            .get_cf(Cf::Raft.of(&self.db), key.bytes())
            .map_err(|e| StorageIOError::read(any_err(e)))?;
        raw.map(|b| serde_json::from_slice(&b))
            .transpose()
            .map_err(|e| StorageIOError::read(any_err(e)).into())
    }

    fn put_meta<T: Serialize>(&self, key: RaftKey, v: &T, sync: bool) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(v).map_err(|e| StorageIOError::write(any_err(e)))?;
        let opts = if sync {
            synced()
        } else {
            WriteOptions::default()
        };
        self.db
            .put_cf_opt(Cf::Raft.of(&self.db), key.bytes(), bytes, &opts)
            .map_err(|e| StorageIOError::write(any_err(e)).into())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let key = index_key(start);
        let it = self.db.iterator_cf(
            Cf::Logs.of(&self.db),
            IteratorMode::From(&key, Direction::Forward),
        );
        let mut out = Vec::new();
        for item in it {
            let (k, v) = item.map_err(|e| StorageIOError::read_logs(any_err(e)))?;
            let Some(idx) = key_index(&k) else { break };
            if !range.contains(&idx) {
                break;
            }
            let entry: Entry =
                serde_json::from_slice(&v).map_err(|e| StorageIOError::read_logs(any_err(e)))?;
            out.push(entry);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId> = self.get_meta(RaftKey::LastPurged)?;
        let last = self
            .db
            .iterator_cf(Cf::Logs.of(&self.db), IteratorMode::End)
            .next()
            .transpose()
            .map_err(|e| StorageIOError::read_logs(any_err(e)))?;
        let last_log_id = match last {
            Some((_, v)) => {
                let e: Entry = serde_json::from_slice(&v)
                    .map_err(|e| StorageIOError::read_logs(any_err(e)))?;
                Some(e.log_id)
            }
            None => last_purged,
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.put_meta(RaftKey::Vote, vote, true)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.get_meta(RaftKey::Vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.put_meta(RaftKey::Committed, &committed, false)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self
            .get_meta::<Option<LogId>>(RaftKey::Committed)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let res = self.write_entries(entries)?;
        match res {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(any_err(e)).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let logs = Cf::Logs.of(&self.db);
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(logs, index_key(log_id.index), index_key(u64::MAX));
        batch.delete_cf(logs, index_key(u64::MAX));
        self.db
            .write_opt(batch, &synced())
            .map_err(|e| StorageIOError::write_logs(any_err(e)).into())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // The purge mark goes first: openraft ignores logs at or before it, so a crash between the
        // two writes leaves only garbage that the next purge removes.
        self.put_meta(RaftKey::LastPurged, &log_id, true)?;
        self.db
            .delete_range_cf(
                Cf::Logs.of(&self.db),
                index_key(0),
                index_key(log_id.index.saturating_add(1)),
            )
            .map_err(|e| StorageIOError::write_logs(any_err(e)).into())
    }
}

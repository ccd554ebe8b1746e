//! The bounds of the replicated audit log: events older than `audit_retention` are trimmed, and
//! so are the oldest whenever the log holds more than `audit_max_events` events or
//! `audit_max_bytes` bytes (the replicated policy's caps, so every replica trims the same).
//!
//! An in-memory index of the kept events (sequence, stored size, time) makes every trim
//! arithmetic and one range delete: trimming never scans the log. The index is rebuilt from the
//! `audit` family when the store opens and from the snapshot when one is installed; it costs
//! 24 bytes per kept event, so it is bounded by the count cap.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rocksdb::{IteratorMode, WriteBatch, DB};
use sessync_proto::api::AuditEvent;
use sessync_proto::Timestamp;

use super::layout::{self, index_key, key_index, Cf};
use super::{read_err, write_err};
use crate::raft_types::StorageError;

/// What the audit log holds and has trimmed, for metrics (read at scrape time).
#[derive(Debug, Default)]
pub(crate) struct AuditStats {
    pub(crate) events: AtomicU64,
    pub(crate) bytes: AtomicU64,
    /// Events trimmed for their age.
    pub(crate) trimmed_age: AtomicU64,
    /// Events trimmed to stay under the caps.
    pub(crate) trimmed_cap: AtomicU64,
}

#[derive(Clone, Copy, Debug)]
struct Kept {
    seq: u64,
    bytes: u64,
    at: Timestamp,
}

/// The kept events, oldest first, and the sequence number of the next one.
pub(super) struct AuditLog {
    next: u64,
    kept: VecDeque<Kept>,
    bytes: u64,
    stats: Arc<AuditStats>,
}

impl AuditLog {
    /// The index of the events stored in `db`; `next` is the stored sequence counter.
    pub(super) fn load(db: &DB, next: u64) -> Result<Self, StorageError> {
        let mut log = AuditLog {
            next,
            kept: VecDeque::new(),
            bytes: 0,
            stats: Arc::default(),
        };
        for item in db.iterator_cf(Cf::Audit.of(db), IteratorMode::Start) {
            let (k, v) = item.map_err(read_err)?;
            let ev: AuditEvent = layout::decode_value(Cf::Audit, &v).map_err(read_err)?;
            let seq = key_index(&k).unwrap_or(ev.seq);
            log.push(seq, v.len() as u64, ev.at);
        }
        log.publish();
        Ok(log)
    }

    pub(super) fn stats(&self) -> Arc<AuditStats> {
        self.stats.clone()
    }

    /// The sequence number the next event gets.
    pub(super) fn next(&self) -> u64 {
        self.next
    }

    fn push(&mut self, seq: u64, bytes: u64, at: Timestamp) {
        self.kept.push_back(Kept { seq, bytes, at });
        self.bytes += bytes;
    }

    fn publish(&self) {
        self.stats
            .events
            .store(self.kept.len() as u64, Ordering::Relaxed);
        self.stats.bytes.store(self.bytes, Ordering::Relaxed);
    }

    /// Adds writing `ev` (its `seq` is set here) to `batch`.
    pub(super) fn append(
        &mut self,
        db: &DB,
        batch: &mut WriteBatch,
        mut ev: AuditEvent,
    ) -> Result<(), StorageError> {
        ev.seq = self.next;
        let value = layout::encode(Cf::Audit, &ev).map_err(write_err)?;
        self.push(ev.seq, value.len() as u64, ev.at);
        batch.put_cf(Cf::Audit.of(db), index_key(ev.seq), value);
        self.next += 1;
        self.publish();
        Ok(())
    }

    /// Adds removing the events older than `cutoff` to `batch`. Events are stamped with cluster
    /// time, which never runs backwards in the log, so the old ones are a prefix.
    pub(super) fn trim_older_than(&mut self, db: &DB, batch: &mut WriteBatch, cutoff: Timestamp) {
        let n = self.kept.iter().take_while(|k| k.at < cutoff).count();
        let trimmed = self.drop_front(db, batch, n);
        self.stats.trimmed_age.fetch_add(trimmed, Ordering::Relaxed);
    }

    /// Adds removing the oldest events to `batch` until at most `max_events` events and
    /// `max_bytes` bytes are kept.
    pub(super) fn enforce_caps(
        &mut self,
        db: &DB,
        batch: &mut WriteBatch,
        max_events: u64,
        max_bytes: u64,
    ) {
        let mut n = 0;
        let mut count = self.kept.len() as u64;
        let mut bytes = self.bytes;
        for k in &self.kept {
            if count <= max_events && bytes <= max_bytes {
                break;
            }
            count -= 1;
            bytes -= k.bytes;
            n += 1;
        }
        let trimmed = self.drop_front(db, batch, n);
        self.stats.trimmed_cap.fetch_add(trimmed, Ordering::Relaxed);
    }

    fn drop_front(&mut self, db: &DB, batch: &mut WriteBatch, n: usize) -> u64 {
        if n == 0 {
            return 0;
        }
        let end = self.kept[n - 1].seq + 1;
        let start = self.kept[0].seq;
        for k in self.kept.drain(..n) {
            self.bytes -= k.bytes;
        }
        batch.delete_range_cf(Cf::Audit.of(db), index_key(start), index_key(end));
        self.publish();
        n as u64
    }

    /// Starts over from a snapshot's events (their index, built as the snapshot was read) and
    /// counter; their values are on disk already.
    pub(super) fn replace(&mut self, index: AuditIndex, next: u64) {
        self.kept = index.kept;
        self.bytes = index.bytes;
        self.next = next;
        self.publish();
    }
}

/// The index of a snapshot's audit events, built one event at a time as the snapshot is read.
#[derive(Debug, Default)]
pub(super) struct AuditIndex {
    kept: VecDeque<Kept>,
    bytes: u64,
}

impl AuditIndex {
    /// The sequence number of the last event added.
    pub(super) fn last_seq(&self) -> Option<u64> {
        self.kept.back().map(|k| k.seq)
    }

    /// Adds an event stored in `bytes` bytes; events come oldest first.
    pub(super) fn push(&mut self, seq: u64, bytes: u64, at: Timestamp) {
        self.kept.push_back(Kept { seq, bytes, at });
        self.bytes += bytes;
    }
}

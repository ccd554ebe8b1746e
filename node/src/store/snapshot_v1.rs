//! Snapshots of format 1, written by versions before snapshots were files: the whole state as
//! one JSON value under `SmKey::SnapshotData`. A data directory that has one is converted once,
//! when the store opens: the value is written out as a file of the current format (the meta
//! stays as it was) and then removed. Such values are small (larger states could not be
//! snapshotted by those versions at all), so reading one whole is fine here.

use rocksdb::DB;
use serde::{Deserialize, Serialize};
use sessync_proto::api::AuditEvent;
use sessync_proto::{Policy, Timestamp};

use super::layout::{Cf, SmKey};
use super::snapshot::{current_meta, write_file};
use super::snapshot_dir::{SnapshotDir, Temp};
use super::snapshot_format::{Header, Item, FORMAT};
use super::{read_err, snapshot_read_err, snapshot_write_err, synced, write_err};
use crate::raft_types::StorageError;
use crate::session::{OutboxEntry, ReceivedOp, Record, SeenNonce, Session};

/// The state a format-1 snapshot carries.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct SnapshotPayload {
    pub(crate) policy: Option<Policy>,
    pub(crate) clock: Timestamp,
    pub(crate) audit_next: u64,
    pub(crate) sessions: Vec<Session>,
    pub(crate) audit: Vec<AuditEvent>,
    #[serde(default)]
    pub(crate) outbox: Vec<OutboxEntry>,
    #[serde(default)]
    pub(crate) received: Vec<ReceivedOp>,
    #[serde(default)]
    pub(crate) nonces: Vec<SeenNonce>,
}

impl SnapshotPayload {
    /// Every record and audit event, in the order a build writes them.
    fn into_items(self) -> impl Iterator<Item = Item> {
        let s = self.sessions.into_iter().map(Record::Session);
        let o = self.outbox.into_iter().map(Record::Outbox);
        let r = self.received.into_iter().map(Record::Received);
        let n = self.nonces.into_iter().map(Record::Nonce);
        let records = s.chain(o).chain(r).chain(n).map(Item::Record);
        records.chain(self.audit.into_iter().map(Item::Audit))
    }
}

/// Converts a format-1 snapshot value, if `db` has one, to the current snapshot's file.
pub(super) fn convert(db: &DB, dir: &SnapshotDir) -> Result<(), StorageError> {
    let sm = Cf::Sm.of(db);
    let Some(data) = db
        .get_cf(sm, SmKey::SnapshotData.bytes())
        .map_err(read_err)?
    else {
        return Ok(());
    };
    // Without a meta the value was never a current snapshot: nothing to convert.
    if let Some(meta) = current_meta(db)? {
        let payload: SnapshotPayload =
            serde_json::from_slice(&data).map_err(|e| snapshot_read_err(Some(&meta), e))?;
        let header = Header {
            format: FORMAT,
            meta: meta.clone(),
            policy: payload.policy.clone(),
            clock: payload.clock,
            audit_next: payload.audit_next,
        };
        let temp = dir.temp(Temp::Build);
        write_file(&temp, header, payload.into_items().map(Ok), &meta)?;
        let target = dir
            .file_of(&meta.snapshot_id)
            .map_err(|e| snapshot_write_err(Some(&meta), e))?;
        dir.publish(&temp, &target)
            .map_err(|e| snapshot_write_err(Some(&meta), e))?;
        tracing::info!(snapshot = %meta.snapshot_id, "converted a format-1 snapshot to a file");
    }
    // Only once the file is in place: a stop before this converts again at the next open.
    db.delete_cf_opt(sm, SmKey::SnapshotData.bytes(), &synced())
        .map_err(write_err)
}

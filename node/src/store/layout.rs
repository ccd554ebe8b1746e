//! The on-disk layout, declared once: the column families, the keys of the metadata kept in
//! them, and where each [`Record`] of the replicated state lives and how it is encoded.
//!
//! Persisting an entry's mutations, loading the state at start, building a snapshot and
//! installing one all go through [`put`], [`delete`] and [`decode`], so a record kind is mapped
//! to its family and key in exactly one place.
//!
//! | family | key | value |
//! |---|---|---|
//! | `logs` | log index, u64 big-endian | openraft entry (JSON) |
//! | `raft` | [`RaftKey`] | vote, committed and last purged log ids (JSON) |
//! | `sessions` | session id | [`crate::session::Session`] (JSON) |
//! | `audit` | sequence, u64 big-endian | `AuditEvent` (JSON) |
//! | `federation` | `o/<site>/<op_id>`, `r/<origin>/<op_id>`, `n/<origin>/<nonce>` | outbox entry, received operation, seen nonce (JSON) |
//! | `sm` | [`SmKey`] | applied log id, membership, policy, clock, audit counter, the current snapshot's meta, the install marker |
//!
//! Snapshot files are not in RocksDB: they live in `<data dir>/snapshots/` (`snapshot_dir`).

use rocksdb::{ColumnFamily, WriteBatch, DB};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sessync_proto::api::AuditEvent;

use crate::session::{Record, RecordKey};

/// A column family of the node's database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cf {
    /// The Raft log.
    Logs,
    /// The vote and openraft's other log-side metadata.
    Raft,
    /// Session records.
    Sessions,
    /// The audit log.
    Audit,
    /// Federation records: outbox, received operations, seen nonces.
    Federation,
    /// State-machine metadata and the current snapshot's meta.
    Sm,
}

impl Cf {
    /// Every family, created at open.
    pub(crate) const ALL: [Cf; 6] = [
        Cf::Logs,
        Cf::Raft,
        Cf::Sessions,
        Cf::Audit,
        Cf::Federation,
        Cf::Sm,
    ];

    /// The families that hold records ([`Record`]s and audit events), in digest order.
    pub(crate) const STATE: [Cf; 3] = [Cf::Sessions, Cf::Audit, Cf::Federation];

    /// The families whose every key is a [`Record`].
    pub(crate) const RECORDS: [Cf; 2] = [Cf::Sessions, Cf::Federation];

    /// The family's name in RocksDB.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Cf::Logs => "logs",
            Cf::Raft => "raft",
            Cf::Sessions => "sessions",
            Cf::Audit => "audit",
            Cf::Federation => "federation",
            Cf::Sm => "sm",
        }
    }

    /// The family's handle in `db`.
    pub(crate) fn of(self, db: &DB) -> &ColumnFamily {
        // Every family is created by `open`, so a missing one is a programming error.
        db.cf_handle(self.name())
            .unwrap_or_else(|| panic!("column family {} is created at open", self.name()))
    }
}

/// Keys of the `raft` family.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RaftKey {
    Vote,
    Committed,
    LastPurged,
    /// The cluster this node's data belongs to (`identity`): node-local, never in a snapshot.
    ClusterId,
}

impl RaftKey {
    pub(crate) fn bytes(self) -> &'static [u8] {
        match self {
            RaftKey::Vote => b"vote",
            RaftKey::Committed => b"committed",
            RaftKey::LastPurged => b"last_purged",
            RaftKey::ClusterId => b"cluster_id",
        }
    }
}

/// Keys of the `sm` family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SmKey {
    Applied,
    Membership,
    Policy,
    Clock,
    AuditNext,
    /// The meta of the current snapshot (its file is the one its id names).
    SnapshotMeta,
    /// A format-1 snapshot, the whole state as one value; converted to a file at open.
    SnapshotData,
    /// The meta of a snapshot whose install has begun and not finished (see
    /// `snapshot_install`); present only between an install's first and last write.
    SnapshotInstall,
}

impl SmKey {
    /// The keys that are state (everything but the stored snapshot), in digest order.
    pub(crate) const STATE: [SmKey; 5] = [
        SmKey::Applied,
        SmKey::Membership,
        SmKey::Policy,
        SmKey::Clock,
        SmKey::AuditNext,
    ];

    pub(crate) fn bytes(self) -> &'static [u8] {
        match self {
            SmKey::Applied => b"applied",
            SmKey::Membership => b"membership",
            SmKey::Policy => b"policy",
            SmKey::Clock => b"clock",
            SmKey::AuditNext => b"audit_next_seq",
            SmKey::SnapshotMeta => b"snapshot_meta",
            SmKey::SnapshotData => b"snapshot_data",
            SmKey::SnapshotInstall => b"snapshot_installing",
        }
    }
}

/// Why a stored value could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LayoutError {
    #[error("{family} value is not valid: {source}")]
    Json {
        family: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{family} key {key:?} names no known record kind")]
    UnknownKey { family: &'static str, key: String },
}

/// Big-endian bytes of an index, so RocksDB's order is numeric order (`logs`, `audit`).
pub(crate) fn index_key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

/// The index a key of [`index_key`] stands for.
pub(crate) fn key_index(k: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(k.get(..8)?.try_into().ok()?))
}

/// Encodes a value of any family.
pub(crate) fn encode<T: Serialize>(cf: Cf, v: &T) -> Result<Vec<u8>, LayoutError> {
    serde_json::to_vec(v).map_err(|source| LayoutError::Json {
        family: cf.name(),
        source,
    })
}

/// Decodes a value of any family.
pub(crate) fn decode_value<T: DeserializeOwned>(cf: Cf, b: &[u8]) -> Result<T, LayoutError> {
    serde_json::from_slice(b).map_err(|source| LayoutError::Json {
        family: cf.name(),
        source,
    })
}

/// The prefix of each federation record kind in the `federation` family.
const OUTBOX: u8 = b'o';
const RECEIVED: u8 = b'r';
const NONCE: u8 = b'n';

/// Where the record with key `k` lives: its family and key.
pub(crate) fn locate(k: &RecordKey) -> (Cf, Vec<u8>) {
    match k {
        RecordKey::Session(id) => (Cf::Sessions, id.as_str().as_bytes().to_vec()),
        RecordKey::Outbox { site, op_id } => (
            Cf::Federation,
            format!("{}/{site}/{op_id}", OUTBOX as char).into_bytes(),
        ),
        RecordKey::Received { origin, op_id } => (
            Cf::Federation,
            format!("{}/{origin}/{op_id}", RECEIVED as char).into_bytes(),
        ),
        RecordKey::Nonce { origin, nonce } => (
            Cf::Federation,
            format!("{}/{origin}/{nonce}", NONCE as char).into_bytes(),
        ),
    }
}

/// `r` as stored: its family, key and value.
pub(crate) fn encode_record(r: &Record) -> Result<(Cf, Vec<u8>, Vec<u8>), LayoutError> {
    let (cf, key) = locate(&r.key());
    let value = match r {
        Record::Session(s) => encode(cf, s)?,
        Record::Outbox(e) => encode(cf, e)?,
        Record::Received(x) => encode(cf, x)?,
        Record::Nonce(n) => encode(cf, n)?,
    };
    Ok((cf, key, value))
}

/// Adds writing `r` to `batch`.
pub(crate) fn put(db: &DB, batch: &mut WriteBatch, r: &Record) -> Result<(), LayoutError> {
    let (cf, key, value) = encode_record(r)?;
    batch.put_cf(cf.of(db), key, value);
    Ok(())
}

/// Adds removing the record with key `k` to `batch`.
pub(crate) fn delete(db: &DB, batch: &mut WriteBatch, k: &RecordKey) {
    let (cf, key) = locate(k);
    batch.delete_cf(cf.of(db), key);
}

/// The record stored under `key` in `cf` (one of [`Cf::RECORDS`]).
pub(crate) fn decode(cf: Cf, key: &[u8], value: &[u8]) -> Result<Record, LayoutError> {
    match (cf, key.first()) {
        (Cf::Sessions, _) => Ok(Record::Session(decode_value(cf, value)?)),
        (Cf::Federation, Some(&OUTBOX)) => Ok(Record::Outbox(decode_value(cf, value)?)),
        (Cf::Federation, Some(&RECEIVED)) => Ok(Record::Received(decode_value(cf, value)?)),
        (Cf::Federation, Some(&NONCE)) => Ok(Record::Nonce(decode_value(cf, value)?)),
        _ => Err(LayoutError::UnknownKey {
            family: cf.name(),
            key: String::from_utf8_lossy(key).into_owned(),
        }),
    }
}

/// Adds writing an audit event to `batch`.
pub(crate) fn put_audit(
    db: &DB,
    batch: &mut WriteBatch,
    ev: &AuditEvent,
) -> Result<(), LayoutError> {
    batch.put_cf(Cf::Audit.of(db), index_key(ev.seq), encode(Cf::Audit, ev)?);
    Ok(())
}

/// Adds removing every key of `cf` to `batch` (keys of the record families are shorter than
/// 64 KiB and never start with 0xff bytes only; index keys are 8 bytes).
pub(crate) fn clear(db: &DB, batch: &mut WriteBatch, cf: Cf) {
    let h = cf.of(db);
    match cf {
        Cf::Logs | Cf::Audit => {
            batch.delete_range_cf(h, index_key(0), index_key(u64::MAX));
            batch.delete_cf(h, index_key(u64::MAX));
        }
        _ => batch.delete_range_cf(h, b"".as_slice(), [0xffu8].as_slice()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessync_proto::{OpId, SessionId, SiteName};

    #[test]
    fn record_keys_are_the_documented_ones() {
        let site = SiteName::parse_field("site-b", "site").unwrap();
        let op = OpId::from_random([1; 16]);
        let id = SessionId::from_random([2; 16]);
        let k = |k: RecordKey| {
            let (cf, key) = locate(&k);
            (cf, String::from_utf8(key).unwrap())
        };
        assert_eq!(
            k(RecordKey::Session(id.clone())),
            (Cf::Sessions, id.to_string())
        );
        assert_eq!(
            k(RecordKey::Outbox {
                site: site.clone(),
                op_id: op.clone()
            }),
            (Cf::Federation, format!("o/site-b/{op}"))
        );
        assert_eq!(
            k(RecordKey::Received {
                origin: site.clone(),
                op_id: op.clone()
            }),
            (Cf::Federation, format!("r/site-b/{op}"))
        );
        assert_eq!(
            k(RecordKey::Nonce {
                origin: site,
                nonce: "abc".into()
            }),
            (Cf::Federation, "n/site-b/abc".to_owned())
        );
    }

    #[test]
    fn an_unknown_federation_key_is_an_error_not_a_skip() {
        assert!(matches!(
            decode(Cf::Federation, b"x/site/1", b"{}"),
            Err(LayoutError::UnknownKey { .. })
        ));
    }
}

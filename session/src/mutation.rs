//! The changes a command makes to the replicated state, as the storage layer persists them.
//!
//! State is a set of [`Record`]s, each known by its [`RecordKey`], plus the policy and the
//! audit log. A command's [`Mutation`]s are folded into the in-memory store as they are made and
//! written by the storage layer in the same batch as the applied log id; the node's storage
//! layout (`store::layout` in `sessync-node`) is the one place that maps a record to its column
//! family and key.

use sessync_proto::{OpId, Policy, SessionId, SiteName, Timestamp};

use super::command::AuditNote;
use super::ledger::{OutboxEntry, ReceivedOp, SeenNonce};
use super::record::Session;

/// One record of the replicated state.
// Sessions are by far the most records, and each is moved once between the store and its
// encoding: boxing them would add an allocation per record to save space in the rare others.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Session(Session),
    /// An operation owed to a peer site.
    Outbox(OutboxEntry),
    /// An operation a peer site delivered and this site applied.
    Received(ReceivedOp),
    /// A nonce a peer site used.
    Nonce(SeenNonce),
}

/// What identifies a [`Record`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordKey {
    Session(SessionId),
    Outbox { site: SiteName, op_id: OpId },
    Received { origin: SiteName, op_id: OpId },
    Nonce { origin: SiteName, nonce: String },
}

impl Record {
    /// The record's key.
    pub fn key(&self) -> RecordKey {
        match self {
            Record::Session(s) => RecordKey::Session(s.id.clone()),
            Record::Outbox(e) => RecordKey::Outbox {
                site: e.site.clone(),
                op_id: e.op_id.clone(),
            },
            Record::Received(r) => RecordKey::Received {
                origin: r.origin.clone(),
                op_id: r.op_id.clone(),
            },
            Record::Nonce(n) => RecordKey::Nonce {
                origin: n.origin.clone(),
                nonce: n.nonce.clone(),
            },
        }
    }
}

/// One change to the stored state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// Insert or replace a record.
    Put(Record),
    /// Remove a record.
    Delete(RecordKey),
    SetPolicy(Policy),
    /// Append an event to the audit log (the storage layer numbers it).
    Audit(AuditNote),
    /// Remove audit events older than this time.
    TrimAudit(Timestamp),
}

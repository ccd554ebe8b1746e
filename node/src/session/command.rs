//! The commands the leader proposes through Raft, what applying them answers, and the
//! mutations they make to the stored state.

use serde::{Deserialize, Serialize};
use sessync_proto::federation::PeerOpKind;
use sessync_proto::{Device, EndReason, OpId, Policy, SessionId, SiteName, Timestamp, UserId};

use super::ledger::{OutboxEntry, ReceivedOp, SeenNonce};
use super::record::{Session, TokenHash};

/// A change to sessions, as proposed by the leader and replicated through the Raft log.
///
/// Every command carries `at`, the leader's stamp of cluster time; ids and token hashes are made
/// by the leader too. Applying a command reads nothing else from the outside world.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// The leader's policy becomes the replicated one.
    SetPolicy { at: Timestamp, policy: Policy },
    /// A login.
    Create {
        at: Timestamp,
        session_id: SessionId,
        token_hash: TokenHash,
        user_id: UserId,
        device: Device,
        origin: Option<String>,
        idempotency_key: Option<String>,
    },
    /// Touches of several sessions, coalesced into one entry; each carries the cluster time at
    /// which the leader accepted it, and counts if the session was valid then.
    Touch {
        at: Timestamp,
        touches: Vec<(SessionId, Timestamp)>,
    },
    /// End one session (logout or an operator's end).
    End {
        at: Timestamp,
        session_id: SessionId,
        reason: EndReason,
    },
    /// The chosen (or newest) session of the user becomes active; every other one ends `superseded`.
    Verify {
        at: Timestamp,
        user_id: UserId,
        session_id: Option<SessionId>,
        /// Peer sites to tell, in the same entry as the local change.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fanout: Option<Fanout>,
    },
    /// End one session of the user, or all of them, with `invalidated`.
    Invalidate {
        at: Timestamp,
        user_id: UserId,
        session_id: Option<SessionId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fanout: Option<Fanout>,
    },
    /// Peer sites acknowledged these queued operations: they leave the outbox.
    FanoutAcked {
        at: Timestamp,
        acks: Vec<(SiteName, OpId)>,
    },
    /// A peer site's verify or invalidate, its signature already checked by the node that
    /// received it. Refused if the nonce was seen; applied once per `(origin, op_id)`.
    PeerOp {
        at: Timestamp,
        origin: SiteName,
        nonce: String,
        /// The nonce is remembered until then.
        nonce_until: Timestamp,
        kind: PeerOpKind,
        op_id: OpId,
        user_id: UserId,
        session_id: Option<SessionId>,
    },
    /// End every session whose idle or lifetime deadline is at or before `at`, remove ended
    /// sessions past retention and audit events past audit retention.
    Expire { at: Timestamp },
    /// Events a node saw that belong in the replicated audit log (auth failures, ...).
    RecordAudit {
        at: Timestamp,
        notes: Vec<AuditNote>,
    },
}

impl Command {
    /// The cluster time stamped on the command.
    pub fn at(&self) -> Timestamp {
        match self {
            Command::SetPolicy { at, .. }
            | Command::Create { at, .. }
            | Command::Touch { at, .. }
            | Command::End { at, .. }
            | Command::Verify { at, .. }
            | Command::Invalidate { at, .. }
            | Command::Expire { at }
            | Command::RecordAudit { at, .. }
            | Command::FanoutAcked { at, .. }
            | Command::PeerOp { at, .. } => *at,
        }
    }
}

/// The peer sites a verify or invalidate goes to, made by the leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fanout {
    /// One id for the operation at every target.
    pub op_id: OpId,
    /// Configured peer sites, without repeats.
    pub targets: Vec<SiteName>,
    /// Most entries a target's queue may hold (the leader's `federation.outbox_limit`).
    pub outbox_limit: u32,
}

/// An audit event before the state machine numbers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditNote {
    pub at: Timestamp,
    pub kind: String,
    pub user_id: Option<UserId>,
    pub session_id: Option<SessionId>,
    pub detail: serde_json::Value,
}

/// What applying one command answers to the proposer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing to report (blank and membership entries, policy, audit, touches).
    #[default]
    Done,
    /// A session was created, or `replayed`: an earlier create with the same idempotency key.
    Created {
        session: Session,
        replayed: bool,
    },
    /// `on_limit = deny` and the user is at the limit: nothing created.
    LimitReached {
        active: Vec<Session>,
    },
    /// The session an `End` is about, after the command.
    Ended {
        session: Session,
    },
    Verified {
        verified: SessionId,
        ended: u32,
    },
    Invalidated {
        ended: u32,
    },
    Expired {
        ended: u32,
        removed: u32,
    },
    /// A target's outbox is full: nothing was changed.
    OutboxFull {
        site: SiteName,
        limit: u32,
    },
    /// A peer's operation: applied now, or (`applied: false`) already applied before.
    PeerApplied {
        applied: bool,
        ended: u32,
    },
    /// A peer's request carried a nonce already seen: refused, nothing changed.
    NonceReplayed,
    /// The named session or user has nothing to act on.
    NotFound {
        message: String,
    },
    /// The command cannot be applied as asked (e.g. an id collision).
    Refused {
        message: String,
    },
}

/// One change to the stored state. The storage layer writes these in the same batch as the
/// applied log id, and the in-memory store folds them in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mutation {
    PutSession(Session),
    DeleteSession(SessionId),
    SetPolicy(Policy),
    Audit(AuditNote),
    /// Remove audit events older than this time.
    TrimAudit(Timestamp),
    PutOutbox(OutboxEntry),
    DeleteOutbox {
        site: SiteName,
        op_id: OpId,
    },
    PutReceived(ReceivedOp),
    DeleteReceived {
        origin: SiteName,
        op_id: OpId,
    },
    PutNonce(SeenNonce),
    DeleteNonce {
        origin: SiteName,
        nonce: String,
    },
}

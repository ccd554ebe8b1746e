//! The commands the leader proposes through Raft and what applying them answers.
//!
//! Each command is its own struct, applied by its own function (see [`super::apply`]). The
//! enum is internally tagged (`{"op": "create", ...}`), so the JSON in the Raft log is the same
//! as when the commands were struct variants: logs written by earlier versions still read.

use serde::{Deserialize, Serialize};
use sessync_proto::federation::PeerOpKind;
use sessync_proto::{Device, EndReason, OpId, Policy, SessionId, SiteName, Timestamp, UserId};

use super::record::{Session, TokenHash};

/// A change to sessions, as proposed by the leader and replicated through the Raft log.
///
/// Every command carries `at`, the leader's stamp of cluster time; ids and token hashes are made
/// by the leader too. Applying a command reads nothing else from the outside world.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    SetPolicy(SetPolicy),
    Create(Create),
    Touch(Touch),
    End(End),
    Verify(UserOp),
    Invalidate(UserOp),
    FanoutAcked(FanoutAcked),
    PeerOp(PeerOp),
    Expire(Expire),
    RecordAudit(RecordAudit),
    IssueToken(IssueToken),
    /// Several client commands in one entry (group commit): applied one after another as if
    /// each were an entry of its own, at the same log index. Never nested.
    Batch(Batch),
}

/// A policy becomes the replicated one: the leader's file at init, or an operator's change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetPolicy {
    pub at: Timestamp,
    pub policy: Policy,
    /// The API key (its name) that asked for it; none at init.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// A login.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Create {
    pub at: Timestamp,
    pub session_id: SessionId,
    pub token_hash: TokenHash,
    pub user_id: UserId,
    pub device: Device,
    pub origin: Option<String>,
    pub idempotency_key: Option<String>,
    /// The API key (its name) that asked: an idempotent replay is answered only to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// An idempotent create's replay hands out a fresh token: the hash this carries (made by the
/// leader, random) opens the session too; the tokens earlier answers gave keep working.
/// Proposed by the leader after a [`Create`] was answered `replayed`; a session that has ended
/// keeps what it had (a replay of it gets no token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueToken {
    pub at: Timestamp,
    pub session_id: SessionId,
    pub token_hash: TokenHash,
}

/// Touches of several sessions, coalesced into one entry; each carries the cluster time at
/// which the leader accepted it, and counts if the session was valid then.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Touch {
    pub at: Timestamp,
    pub touches: Vec<(SessionId, Timestamp)>,
}

/// End one session (logout or an operator's end).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    pub at: Timestamp,
    pub session_id: SessionId,
    pub reason: EndReason,
}

/// A verify or an invalidate of a user's sessions (the variant says which), with the peer
/// sites to tell in the same entry.
///
/// - Verify: the chosen (or newest) session becomes active; every other one ends `superseded`.
/// - Invalidate: the named session, or all of them, end `invalidated`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserOp {
    pub at: Timestamp,
    pub user_id: UserId,
    pub session_id: Option<SessionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fanout: Option<Fanout>,
}

/// Peer sites acknowledged these queued operations: they leave the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FanoutAcked {
    pub at: Timestamp,
    pub acks: Vec<(SiteName, OpId)>,
}

/// A peer site's verify or invalidate, its signature already checked by the node that
/// received it. Refused if the nonce was seen; applied once per `(origin, op_id)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerOp {
    pub at: Timestamp,
    pub origin: SiteName,
    pub nonce: String,
    /// The nonce is remembered until then.
    pub nonce_until: Timestamp,
    pub kind: PeerOpKind,
    pub op_id: OpId,
    pub user_id: UserId,
    pub session_id: Option<SessionId>,
    /// The origin's cluster time of the operation: it acts on the sessions created here before
    /// `origin_time + max_clock_skew`, and a verify loses to a later one (see
    /// `federated::peer_op`). None in entries written before it was sent: they act on all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_time: Option<Timestamp>,
    /// This site's name, for the tie between two verifies of one millisecond.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub here: Option<SiteName>,
    /// Most operations of `origin` remembered at once (`federation.max_received_per_peer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_received: Option<u32>,
}

/// End every session whose idle or lifetime deadline is at or before `at`, remove ended
/// sessions past retention and audit events past audit retention.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expire {
    pub at: Timestamp,
}

/// Events a node saw that belong in the replicated audit log (auth failures, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordAudit {
    pub at: Timestamp,
    pub notes: Vec<AuditNote>,
}

/// Commands the leader took together into one entry, so one log write and one round of
/// replication carries them all; each is answered with its own outcome, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub commands: Vec<Command>,
}

impl Command {
    /// The cluster time stamped on the command (a batch's: its last command's).
    pub fn at(&self) -> Timestamp {
        match self {
            Command::Batch(b) => b.commands.last().map_or(Timestamp(0), Command::at),
            Command::SetPolicy(c) => c.at,
            Command::Create(c) => c.at,
            Command::Touch(c) => c.at,
            Command::End(c) => c.at,
            Command::Verify(c) | Command::Invalidate(c) => c.at,
            Command::FanoutAcked(c) => c.at,
            Command::PeerOp(c) => c.at,
            Command::Expire(c) => c.at,
            Command::RecordAudit(c) => c.at,
            Command::IssueToken(c) => c.at,
        }
    }

    /// A verify or an invalidate of `op`.
    pub fn user_op(kind: PeerOpKind, op: UserOp) -> Command {
        match kind {
            PeerOpKind::Verify => Command::Verify(op),
            PeerOpKind::Invalidate => Command::Invalidate(op),
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
    /// Undelivered by then, the entries leave the outbox (`federation.outbox_max_age` after
    /// the command's time). None in entries written before outboxes aged: kept until acked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
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
    /// A peer's operation is older than this site remembers applied operations (its
    /// `audit_retention`): refused, so it can never apply twice.
    OpExpired {
        origin_time: Timestamp,
        retention: std::time::Duration,
    },
    /// The origin has `limit` operations remembered here: refused until older ones go.
    ReceivedFull {
        limit: u32,
    },
    /// The named session or user has nothing to act on.
    NotFound {
        message: String,
    },
    /// The command cannot be applied as asked (e.g. an id collision).
    Refused {
        message: String,
    },
    /// A batch's outcomes, one per command, in order.
    Batch {
        outcomes: Vec<Outcome>,
    },
}

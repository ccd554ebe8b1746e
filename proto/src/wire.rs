//! Wire names declared once: the headers every node and client agree on, and the node-to-node
//! RPCs of one site (their paths and the read-index answer).
//!
//! Every node-to-node request carries [`CLUSTER_AUTH_HEADER`], a proof of the cluster secret
//! (see `node/src/signing.rs`); none of these paths is meant for clients.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// The header in which every answer names the leader's advertised URL, when one is known.
pub const LEADER_HEADER: &str = "x-sessync-leader";

/// Marks a request a node forwarded to its leader (the value is the forwarding node's id), so
/// a request is never forwarded twice.
pub const FORWARDED_HEADER: &str = "x-sessync-forwarded-by";

/// Names the sending node's id on every signed node-to-node request. Informational only, for
/// diagnostics and test proxies (which tell links apart by it): it is never trusted for
/// anything; a request is authenticated by its signed proof ([`CLUSTER_AUTH_HEADER`]).
pub const SENDER_HEADER: &str = "x-sessync-from";
/// The sender's cluster id on node-to-node requests: a node refuses a request from another
/// cluster (one restored or recovered elsewhere) and takes the id of its leader's first append
/// when it has none.
pub const CLUSTER_ID_HEADER: &str = "x-sessync-cluster-id";

/// The proof of the cluster secret on node-to-node requests (`v3 t=..,n=..,to=..,inc=..,..`,
/// see `sessync_signing::ClusterProof`).
pub const CLUSTER_AUTH_HEADER: &str = "x-sessync-cluster-auth";

/// On a node-to-node request: how far the receiver's clock is from the voters' median as the
/// sender measures it (`report=<ms>,sig=<hex>`), signed with the cluster secret and bound to the
/// request's nonce. See `node/src/clock.rs`.
pub const CLOCK_HEADER: &str = "x-sessync-clock";

/// On every answer to a node-to-node request whose proof is authentic: the MAC of the answer
/// (status, body hash) for the request's nonce, with the answering node's clock when the
/// request arrived and when the answer left, and its incarnation (`v1 t2=..,t3=..,inc=..,sig=..`,
/// see `sessync_signing::AnswerNote`). An answer without it counts as no answer.
pub const ANSWER_HEADER: &str = "x-sessync-answer";

/// The largest answer body a node-to-node call reads (and a node sends): Raft's answers, a
/// read index and refusals are a few hundred bytes.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Raft: append entries (and heartbeats).
pub const APPEND_PATH: &str = "/raft/append";
/// Raft: request a vote.
pub const VOTE_PATH: &str = "/raft/vote";
/// Raft: install a snapshot.
pub const SNAPSHOT_PATH: &str = "/raft/snapshot";
/// A follower asks the leader for a read index ([`ReadIndex`]).
pub const READ_INDEX_PATH: &str = "/raft/read-index";
/// A follower hands the leader node-local audit events for the replicated log.
pub const AUDIT_PATH: &str = "/raft/audit";
/// The leader asks a caught-up voter to start an election now (a leadership hand-over).
pub const ELECT_PATH: &str = "/raft/elect";

/// A node forming its cluster by `[bootstrap]` asks another node who it is ([`Hello`]). Unlike
/// the other paths, its proof may name any target node and incarnation: the caller does not
/// know them yet (it may know only an address from DNS), and the answer changes nothing.
pub const HELLO_PATH: &str = "/raft/hello";

/// The answer on [`HELLO_PATH`]: who the node is and whether it is part of a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub node_id: u64,
    pub advertise_url: String,
    /// It has a membership (it was initialised, or added to a cluster).
    pub initialized: bool,
}

/// Why a node refused a node-to-node request that reached its handler: the body of a 503 on
/// [`READ_INDEX_PATH`] and [`AUDIT_PATH`] (signed like every answer). The asking node maps it to
/// its own runtime error; it is not the API's error body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    pub refused: RefusalReason,
    /// The leader the refusing node knows of, when leadership moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<u64>,
    /// A sentence for logs.
    #[serde(default)]
    pub message: String,
}

/// The runtime-level reasons a node refuses a node-to-node request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// Its clock is off the voters' median by more than `max_clock_skew` (or just stepped).
    ClockSkew,
    /// It does not lead (any more).
    NotLeader,
    /// It could not confirm or commit with a quorum in time.
    NoQuorum,
    /// It is stopping.
    ShuttingDown,
    /// Anything else (a Raft error, overload): retry later.
    Unavailable,
}

/// The leader's answer on [`READ_INDEX_PATH`]: the log index a linearizable read must see, and
/// the leader's cluster time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadIndex {
    pub index: Option<u64>,
    pub now: Timestamp,
}

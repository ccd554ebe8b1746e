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

/// The proof of the cluster secret on node-to-node requests: `t=<ms>,sig=<hex>`.
pub const CLUSTER_AUTH_HEADER: &str = "x-sessync-cluster-auth";

/// Clock exchange between the nodes of one site, signed with the cluster secret and bound to
/// the request's nonce: on an answer, the answering node's wall clock (`now=<ms>,sig=<hex>`);
/// on a request, how far the receiver's clock is from the voters' median as the sender
/// measures it (`report=<ms>,sig=<hex>`). See `node/src/clock.rs`.
pub const CLOCK_HEADER: &str = "x-sessync-clock";

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

/// The leader's answer on [`READ_INDEX_PATH`]: the log index a linearizable read must see, and
/// the leader's cluster time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadIndex {
    pub index: Option<u64>,
    pub now: Timestamp,
}

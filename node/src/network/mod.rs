//! Raft RPC between the nodes of one site: HTTP POSTs with JSON bodies, each carrying proof of
//! the cluster secret ([`crate::signing`]). [`client`] sends them with reqwest; [`server`] takes
//! them in axum and refuses any without a valid proof before it reaches Raft.

pub mod client;
pub mod server;

/// Paths of the Raft RPCs.
pub const APPEND_PATH: &str = "/raft/append";
pub const VOTE_PATH: &str = "/raft/vote";
pub const SNAPSHOT_PATH: &str = "/raft/snapshot";

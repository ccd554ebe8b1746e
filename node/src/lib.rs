//! A sessync node: one member of a site's Raft cluster.
//!
//! - [`session`]: the pure, deterministic session state machine (commands, limits, expiry).
//! - [`store`]: RocksDB storage of the Raft log and of the applied state, snapshots.
//! - [`network`]: Raft RPC between nodes, signed with the cluster secret ([`signing`]).
//! - [`api`]: the HTTP API; [`readindex`] makes reads linearizable on any node.
//! - [`federation`]: verify and invalidate sent to peer sites (outbox delivery, signed
//!   requests, receiving, status).
//! - [`touch`], [`audit`], [`duties`]: background work (touch coalescing, audit delivery,
//!   the leader's policy and expiry proposals).
//! - [`node`]: assembles a node from its config and runs it.

// openraft's storage traits fix the error type (`StorageError`, ~220 bytes) and axum's
// `Response` is the natural early-return of handlers; boxing them would only add noise.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod audit;
pub mod duties;
pub mod federation;
pub mod metrics;
pub mod network;
pub mod node;
pub mod raft_types;
pub mod readindex;
pub mod session;
pub mod signing;
pub mod store;
pub mod tokens;
pub mod touch;

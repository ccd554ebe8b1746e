//! A sessync node: one member of a site's Raft cluster.
//!
//! The crate's entry points are [`run`] and the offline commands of [`offline`] (restore,
//! recover); everything else is private to the node. Its layers,
//! top to bottom (each imports only those below it):
//!
//! - [`offline`]: restore and recover, on a stopped node's data directory.
//! - [`node`]: the lifecycle: assembles a node from its config, starts every task, stops them.
//! - `server`: the listener (TLS, timeouts, connection bound, drain) the router is served on.
//! - `api`: the HTTP API (axum): v1 endpoints, cluster management, node-to-node routes.
//! - services on the runtime: `sequencer` (the leader's sequencer of touches, read barriers,
//!   policy changes and sweeps), `audit` (node-local events into the
//!   replicated log), `refusals` (refused callers counted and reported in aggregate), `duties` (the leader's policy and expiry proposals), `bootstrap` (a cluster that forms
//!   itself), `federation` (verify
//!   and invalidate sent to peer sites: plan, delivery, signatures, status), `metrics`.
//! - `runtime`: the Raft handle, the one propose path, read index, leader lookup, cluster time.
//! - `network` (Raft RPC sent to other nodes), `store` (RocksDB: log, state machine,
//!   snapshots, the typed layout), `signing`, `tokens`, `tls` (rustls settings for the listener
//!   and the node's HTTP client).
//! - `session`: the pure, deterministic session state machine (commands, limits, expiry).

// A test reads best as one scenario, however long.
#![cfg_attr(test, allow(clippy::too_many_lines))]
// openraft's storage traits fix the error type (`StorageError`, ~220 bytes) and axum's
// `Response` is the natural early-return of handlers; boxing them would only add noise.
#![allow(clippy::result_large_err)]

mod api;
mod audit;
mod bootstrap;
pub mod build_info;
mod clock;
mod duties;
mod federation;
mod metrics;
mod network;
mod node;
pub mod offline;
mod raft_types;
mod refusals;
mod runtime;
mod sequencer;
mod server;
mod source;
mod store;
mod tls;
mod tokens;

#[cfg(test)]
mod architecture_tests;

// The state machine and the HMAC recipes are crates of their own (no RocksDB, so they can be
// fuzzed); under their old names the rest of the node imports them as before.
pub(crate) use sessync_session as session;
pub(crate) use sessync_signing as signing;

pub use node::{run, NodeError, DRAIN};
pub use store::OpenError;
pub use tls::TlsError;

//! The multi-process harness of sessync: every multi-node test starts real `sessync-node`
//! processes on loopback ports with it, then kills, restarts, wipes, pauses and adds nodes.
//!
//! ```no_run
//! use std::time::Duration;
//! use sessync_chaos_tests::{ClusterOptions, TestCluster};
//!
//! # async fn demo() -> anyhow::Result<()> {
//! let mut cluster = TestCluster::start(ClusterOptions {
//!     policy_toml: "max_concurrent_sessions = 2\non_limit = \"deny\"".into(),
//!     ..Default::default()
//! })
//! .await?;
//! let leader = cluster.leader().await?;
//! cluster.kill(leader);
//! let new_leader = cluster.leader().await?;
//! cluster.restart(leader).await?;
//! cluster.wait_converged(Duration::from_secs(20)).await?;
//! # let _ = new_leader;
//! # Ok(())
//! # }
//! ```
//!
//! The node binary is `$SESSYNC_NODE_BIN`, or `sessync-node` in the test executable's target
//! directory: build it first (`cargo build -p sessync-node`, same profile as the tests). The
//! harness creates no tokio runtime; use it inside `#[tokio::test(flavor = "multi_thread")]`.
//!
//! Modules: `certs` ([`TestCa`]: certificates for TLS tests), `cluster` ([`TestCluster`]: start
//! and the life of its nodes), `access` (URLs, keys, clients, files), `checks` (leader,
//! convergence, identical state, crashes), `config` (options and each node's TOML), `process`
//! (binary, ports, one node process and its log), `secrets` (API keys and the cluster secret),
//! `sites` ([`Sites`]: two federated clusters, and the peer signing recipe), `net` ([`Faults`]:
//! cut, delay or drop any directed link between the nodes of a cluster started with
//! [`ClusterOptions::proxied`], through a [`NodeProxy`] per node; [`SiteProxy`]: a peer site
//! down, cut off, slow or answering garbage, and replaying its federation requests), `views`
//! (judging `/cluster/status` and `/cluster/digest` answers) and `wait` (bounded polling).
//!
//! The chaos suite (`sessync-chaos`, docs/testing.md) is built on the harness: [`workload`]
//! (seeded concurrent clients recording every operation), [`nemesis`] (faults injected and
//! healed), [`history`] (the JSONL record of both), [`checker`] (the invariants read off a
//! history), [`run`] (one scenario end to end) and [`report`] (its summary).

// A test reads best as one scenario, however long.
#![cfg_attr(test, allow(clippy::too_many_lines))]
#![warn(missing_docs)]

mod access;
mod certs;
pub mod checker;
mod checks;
mod cluster;
mod config;
// The history's types are its JSONL schema: each field is named for what it holds.
#[allow(missing_docs)]
pub mod history;
pub mod nemesis;
mod net;
mod process;
pub mod report;
pub mod run;
mod secrets;
mod sites;
mod views;
mod wait;
pub mod workload;

pub use certs::{Issued, TestCa};
pub use cluster::{TestCluster, KEEP_DIR_ENV, LEADER_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT};
pub use config::ClusterOptions;
pub use net::{Faults, LinkFault, NodeProxy, SiteMode, SiteProxy};
pub use process::{node_binary, NODE_BIN_ENV, NODE_LOG_ENV};
pub use sites::{now_ms, PeerSigning, Sites, SitesOptions, SITE_A, SITE_B};
pub use wait::POLL_INTERVAL;

/// A login of `user` from no particular device, without an idempotency key: what most tests
/// create.
///
/// # Panics
/// If `user` is not a valid user id.
pub fn login(user: &str) -> sessync_proto::api::CreateSessionRequest {
    sessync_proto::api::CreateSessionRequest {
        user_id: sessync_proto::UserId::parse_field(user, "user_id").expect("a valid user id"),
        device: sessync_proto::Device::default(),
        origin: None,
        idempotency_key: None,
    }
}

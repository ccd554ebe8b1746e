//! The multi-node tests, in one test binary: real `sessync-node` processes on loopback (and
//! the real `sessyncctl`), started, killed and restarted by the harness in `chaos-tests/src`.
//! Run them one at a time (`--test-threads=1`): each starts its own cluster.

// Tests print the figures they measure, and a scenario reads best as one function.
#![allow(clippy::print_stdout, clippy::too_many_lines)]

mod backup;
mod bootstrap;
mod cli;
mod cli_cluster;
mod cli_offline;
mod cli_tail;
mod client;
mod client_routing;
mod clock;
mod clock_step;
mod crash;
mod ctl;
mod events;
mod fed;
mod federation;
mod federation_burst;
mod federation_refusals;
mod federation_time;
mod limits;
mod links;
mod pages;
mod policy;
mod quorum;
mod read_time;
mod readiness;
mod replication;
mod smoke;
mod snapshot;
mod stale_leader;
mod tls;
mod upgrade;

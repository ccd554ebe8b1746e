//! The node's HTTP tests, in one test binary (each test binary links RocksDB): every endpoint
//! of one in-process node on a real socket and a real RocksDB directory.

// Tests print the figures they measure, and a scenario reads best as one function.
#![allow(clippy::print_stdout, clippy::too_many_lines)]

mod admin;
mod answers;
mod common;
mod errors;
mod events;
mod federation;
mod handover;
mod hardening;
mod lifecycle;
mod listener;
mod openapi;
mod policy;
mod raft_rpc;
mod recipes;
mod sessions;
mod wire;

//! Raft RPC between the nodes of one site, the sending side: HTTP POSTs with JSON bodies, each
//! carrying proof of the cluster secret ([`crate::signing`]). The receiving routes are part of
//! the HTTP API (`api::internal`), which checks the proof before anything reaches Raft.

pub(crate) mod client;

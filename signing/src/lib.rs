//! The HMAC-SHA256 recipes sessync signs and checks requests with, apart from the node so that
//! they are fuzzed without its storage (`fuzz/`):
//!
//! - `recipes`: [`Signed`] (a request between sites, per-peer secrets), [`ClusterProof`] (a
//!   request between the nodes of one site, the cluster secret, checked before the body is
//!   read), [`ClockNote`] (a signed clock reading on such an exchange), [`SeenNonces`] (replays
//!   within a site), [`ProofRefusal`];
//! - [`federation`]: the four signed headers of a request between sites, made and checked
//!   against the configured peers.
//!
//! `sessync-node` uses the crate as `crate::signing` and `federation` as `federation::sign`.

mod recipes;

pub mod federation;

pub use recipes::{ClockNote, ClusterProof, ProofRefusal, SeenNonces, Signed};

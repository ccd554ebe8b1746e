//! The HMAC-SHA256 recipes sessync signs and checks requests with, apart from the node so that
//! they are fuzzed without its storage (`fuzz/`):
//!
//! - `recipes`: [`Signed`] (a request between sites, per-peer secrets), [`ClusterProof`] (a
//!   request between the nodes of one site, the cluster secret, checked before the body is
//!   read), [`SeenNonces`] (replays within a site), [`ProofRefusal`];
//! - `exchange`: what rides on such a request besides its proof: [`ClockNote`] (the sender's
//!   report of the receiver's clock) and [`AnswerNote`] (the signed answer: status, body, the
//!   answering node's clock and incarnation);
//! - [`federation`]: the four signed headers of a request between sites, made and checked
//!   against the configured peers.
//!
//! `sessync-node` uses the crate as `crate::signing` and `federation` as `federation::sign`.

mod exchange;
mod recipes;

pub mod federation;

pub use exchange::{AnswerNote, ClockNote};
pub use recipes::{ClusterProof, ProofRefusal, SeenNonces, Signed};

//! The HMAC-SHA256 recipes sessync signs and checks requests with, apart from the node so that
//! they are fuzzed without its storage (`fuzz/`):
//!
//! - `recipes`: [`ClusterProof`] (a request between the nodes of one site, the cluster secret,
//!   checked before the body is read), [`SeenNonces`] (replays within a site), [`ProofRefusal`];
//! - `exchange`: what rides on such a request besides its proof: [`ClockNote`] (the sender's
//!   report of the receiver's clock) and [`AnswerNote`] (the signed answer: status, body, the
//!   answering node's clock and incarnation);
//! - [`federation`]: a request between sites (per-peer secrets; both sites, the body's length
//!   and hash signed, so it is checked before the body is read), made and checked against the
//!   configured peers, and the signature on its answer.
//!
//! `sessync-node` uses the crate as `crate::signing` and `federation` as `federation::sign`.

mod exchange;
mod recipes;

pub mod federation;

pub use exchange::{AnswerNote, ClockNote};
pub use recipes::{ClusterProof, ProofRefusal, SeenNonces};

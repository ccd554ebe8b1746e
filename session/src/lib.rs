//! The replicated session domain: what a session is, the commands that change sessions, and the
//! pure, deterministic logic that applies them.
//!
//! Nothing in here reads a clock, draws a random number or touches the disk. The leader stamps
//! time and ids into each [`Command`]; [`apply`] turns a command and the current
//! [`SessionStore`] into an [`Outcome`] and a list of [`Mutation`]s (already folded into the
//! store); the storage layer persists the mutations in the same write as the applied log id.
//! Every replica that applies the same log therefore reaches byte-identical state.
//!
//! This crate is the state machine of `sessync-node` (which uses it as `crate::session`), kept
//! apart so that it depends on nothing of the node: no storage, no network, no runtime. The
//! compiler holds that line, and the fuzz targets (`fuzz/`) link it without RocksDB.
//!
//! - [`command`]: the commands, one struct each, and their outcomes;
//! - `apply` (dispatch and the small commands), `tx` (the changes of one command), `login` (create, with `limit`), `expiry`
//!   (touch, expire), `user_op` (verify and invalidate), `federated` (fan-out, acks, peer ops);
//! - [`mutation`]: the records of the state and the changes to them;
//! - `store` (records and derived indexes), `record` (a session, its deadlines and views),
//!   `ledger` (federation state: outbox, received operations, seen nonces).

// A test reads best as one scenario, however long.
#![cfg_attr(test, allow(clippy::too_many_lines))]

mod apply;
pub mod command;
mod expiry;
mod federated;
mod ledger;
mod limit;
mod login;
pub mod mutation;
mod record;
mod store;
mod tx;
mod user_op;

pub use apply::apply;
pub use command::{
    AuditNote, Batch, Command, Create, End, Expire, Fanout, FanoutAcked, IssueToken, Outcome,
    PeerOp, RecordAudit, SetPolicy, Touch, UserOp,
};
pub use ledger::{OutboxEntry, ReceivedOp, SeenNonce};
pub use mutation::{Mutation, Record, RecordKey};
pub use record::{Session, TokenHash};
pub use store::{ChangeCursor, SessionStore};

#[cfg(test)]
mod changes_tests;
#[cfg(test)]
mod cost_tests;
#[cfg(test)]
mod federation_tests;
#[cfg(test)]
mod login_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

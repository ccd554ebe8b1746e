//! The replicated session domain: what a session is, the commands that change sessions, and the
//! pure, deterministic logic that applies them.
//!
//! Nothing in here reads a clock, draws a random number or touches the disk. The leader stamps
//! time and ids into each [`Command`]; [`apply`] turns a command and the current
//! [`SessionStore`] into an [`Outcome`] and a list of [`Mutation`]s (already folded into the store); the storage layer persists
//! the mutations in the same write as the applied log id. Every replica that applies the same log therefore
//! reaches byte-identical state.

mod apply;
mod command;
mod federated;
mod ledger;
mod limit;
mod record;
mod store;

pub use apply::apply;
pub use command::{AuditNote, Command, Fanout, Mutation, Outcome};
pub use ledger::{Ledger, OutboxEntry, ReceivedOp, SeenNonce};
pub use record::{Session, TokenHash};
pub use store::SessionStore;

#[cfg(test)]
mod federation_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

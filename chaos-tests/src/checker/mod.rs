//! The history checker: reads a chaos run's [`History`] and names every way it breaks the
//! invariants of the API contract, with the operations involved. It knows nothing of how the
//! history was made, so it is tested on its own with hand-made histories holding each anomaly
//! (`tests.rs`): a checker that cannot fail proves nothing.
//!
//! The checks, one module each:
//! - `register`: each session is a register whose state only moves forward (absent, blocked,
//!   active, ended). Over the linearizable reads and the acknowledged writes, no read may see
//!   an older state than one already seen or written before it began (a linearizability check
//!   of that register, in which operations of unknown outcome may or may not have happened).
//!   Local reads are held to the same rule per node, and to the final state once caught up.
//! - `writes`: every acknowledged create, end, verify and invalidate is in the final state (no
//!   lost write); no linearizable list shows a user over the limit; an idempotency key always
//!   names one session.
//! - `federation`: each fan-out the origin queued was applied exactly once at its target, none
//!   is left in an outbox, and no forged or replayed peer request was accepted.
//! - `replicas`: nodes that applied the same index hold the same digest; the cluster took
//!   writes again within the bound after each heal.

mod federation;
mod known;
mod register;
mod replicas;
mod writes;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::history::History;

/// What kind of invariant an anomaly breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// An acknowledged write is not in the state (or a session vanished after being seen).
    LostWrite,
    /// A linearizable read showed a user with more active sessions than the limit.
    OverLimit,
    /// A session was seen valid (or blocked) after its end was acknowledged or seen.
    Resurrection,
    /// A linearizable read saw an older state than an earlier read or write.
    StaleRead,
    /// A node's local reads went back in time, or disagree with the final state once caught up.
    StaleLocalRead,
    /// Two creates with one idempotency key made two sessions.
    IdempotencyBroken,
    /// Nodes that applied the same index hold different state.
    DivergentReplicas,
    /// A peer's operation was applied more than once at a target site.
    DoubleApply,
    /// A fan-out acknowledged at the origin never reached its target.
    FanoutLost,
    /// A forged or replayed peer request was accepted.
    ForgedApplied,
    /// The cluster took no write within the bound after the faults healed.
    SlowRecovery,
}

/// One broken invariant, with the operations (history ids) that show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // what, why, and the history ids involved
pub struct Anomaly {
    pub kind: AnomalyKind,
    pub message: String,
    pub ops: Vec<u64>,
}

impl Anomaly {
    pub(crate) fn new(kind: AnomalyKind, message: impl Into<String>, ops: Vec<u64>) -> Anomaly {
        Anomaly {
            kind,
            message: message.into(),
            ops,
        }
    }
}

/// Every anomaly in `history`, by kind then message.
pub fn check(history: &History) -> Vec<Anomaly> {
    let mut found = Vec::new();
    found.extend(register::check(history));
    found.extend(writes::check(history));
    found.extend(federation::check(history));
    found.extend(replicas::check(history));
    found.sort_by(|a, b| (a.kind, &a.message).cmp(&(b.kind, &b.message)));
    found
}

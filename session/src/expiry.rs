//! Time in the state machine: touches that slide a session's idle deadline, and the leader's
//! `Expire` sweeps that end sessions past their deadlines and forget what retention no longer
//! keeps.

use super::command::{Outcome, Touch};
use super::federated;
use super::mutation::{Mutation, RecordKey};
use super::tx::Tx;

/// Most sessions one `Expire` command ends or removes; the leader proposes another for the rest.
pub(super) const EXPIRE_BATCH: usize = 5_000;

pub(super) fn touch(tx: &mut Tx<'_>, c: &Touch) -> Outcome {
    let policy = tx.store.policy().clone();
    for (id, touched_at) in &c.touches {
        let Some(s) = tx.store.get(id) else { continue };
        // A touch counts if the session was valid when the leader accepted it, even if the
        // entry is applied a moment after the deadline (an ended session stays ended).
        let touched_at = (*touched_at).min(tx.at);
        if !s.is_valid_at(touched_at, &policy) || s.last_seen_at >= touched_at {
            continue;
        }
        let mut s = s.clone();
        s.last_seen_at = touched_at;
        tx.put(s);
    }
    Outcome::Done
}

pub(super) fn expire(tx: &mut Tx<'_>) -> Outcome {
    let policy = tx.store.policy().clone();
    let due = tx.store.due(tx.at, EXPIRE_BATCH);
    let mut ended = 0;
    for id in due {
        let Some((t, reason)) = tx.store.get(&id).map(|s| s.deadline(&policy)) else {
            continue;
        };
        tx.end(&id, reason, t);
        ended += 1;
    }
    let cutoff = tx.at.minus(policy.retention);
    let old = tx.store.ended_before(cutoff, EXPIRE_BATCH);
    let removed = old.len() as u32;
    for id in old {
        tx.push(Mutation::Delete(RecordKey::Session(id)));
    }
    tx.push(Mutation::TrimAudit(tx.at.minus(policy.audit_retention)));
    // A received operation is remembered as long as the audit log that shows it.
    federated::trim(tx, policy.audit_retention, EXPIRE_BATCH);
    federated::expire_outbox(tx, EXPIRE_BATCH);
    Outcome::Expired { ended, removed }
}

//! The per-user limit of concurrent active sessions and the three things a login over it can do.
//!
//! This runs inside the state machine, one command at a time, so no interleaving of concurrent
//! logins on any nodes can leave a user with more active sessions than the limit.

use sessync_proto::{EndReason, OnLimit, SessionState, UserId};

use super::record::Session;
use super::tx::Tx;

/// What a new login of the user becomes.
pub(super) enum Admission {
    /// Created active (under the limit, or room was made by eviction).
    Active,
    /// Created blocked: valid only after a verify.
    Blocked,
    /// Refused; these are the user's active sessions.
    Denied(Vec<Session>),
}

/// Decides a new login of `user`, evicting sessions under `evict_oldest`.
pub(super) fn admit(tx: &mut Tx<'_>, user: &UserId) -> Admission {
    let policy = tx.store.policy().clone();
    let limit = policy.max_concurrent_sessions as usize;
    if limit == 0 {
        return Admission::Active;
    }
    let mut active: Vec<Session> = tx
        .store
        .live_sessions(user)
        .filter(|s| s.state == SessionState::Active)
        .cloned()
        .collect();
    if active.len() < limit {
        return Admission::Active;
    }
    match policy.on_limit {
        OnLimit::Deny => {
            active.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
            Admission::Denied(active)
        }
        OnLimit::BlockNew => {
            evict_blocked_over_cap(tx, user, policy.max_blocked_sessions as usize);
            Admission::Blocked
        }
        OnLimit::EvictOldest => {
            // Least recently used first; ties broken by age, then id, so every replica agrees.
            active.sort_by(|a, b| {
                (a.last_seen_at, a.created_at, &a.id).cmp(&(b.last_seen_at, b.created_at, &b.id))
            });
            let excess = active.len() + 1 - limit;
            for s in active.iter().take(excess) {
                tx.end(&s.id, EndReason::Evicted, tx.at);
            }
            Admission::Active
        }
    }
}

/// Makes room for one more blocked session of `user` under `cap` (0: no cap): the oldest
/// blocked ones end `evicted`, so a client that keeps logging in over the limit cannot grow the
/// user's state without bound.
fn evict_blocked_over_cap(tx: &mut Tx<'_>, user: &UserId, cap: usize) {
    if cap == 0 {
        return;
    }
    let mut blocked: Vec<Session> = tx
        .store
        .live_sessions(user)
        .filter(|s| s.state == SessionState::Blocked)
        .cloned()
        .collect();
    if blocked.len() < cap {
        return;
    }
    // Oldest first; ties broken by id, so every replica agrees.
    blocked.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let excess = blocked.len() + 1 - cap;
    for s in blocked.iter().take(excess) {
        tx.end(&s.id, EndReason::Evicted, tx.at);
    }
}

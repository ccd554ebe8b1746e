//! Verify and invalidate: one path for both, from the outbox bound through the local change to
//! the fan-out queued for peer sites in the same entry.
//!
//! - Verify (TIM): the chosen (or newest) live session becomes active, marked verified now (a
//!   peer's earlier verify then leaves it be); every other live session of the user ends
//!   `superseded`.
//! - Invalidate: the named session, or every live one, ends `invalidated`.

use serde_json::json;
use sessync_proto::federation::PeerOpKind;
use sessync_proto::{EndReason, SessionId, SessionState, UserId};

use super::command::{Outcome, UserOp};
use super::federated;
use super::record::Session;
use super::store::SessionStore;
use super::tx::Tx;

/// Applies a verify or an invalidate with its fan-out: the whole command is refused if a
/// target's outbox is full, and entries are queued only if the local part succeeded. A verify
/// tells peers the session it kept; an invalidate, the one it ended (or none: all).
pub(super) fn apply(tx: &mut Tx<'_>, kind: PeerOpKind, op: &UserOp) -> Outcome {
    if let Some(full) = federated::outbox_full(tx.store, op.fanout.as_ref()) {
        return full;
    }
    let user = &op.user_id;
    tx.expire_user(user);
    let out = match kind {
        PeerOpKind::Verify => verify(tx, user, op.session_id.as_ref()),
        PeerOpKind::Invalidate => invalidate(tx, user, op.session_id.as_ref()),
    };
    let named = match &out {
        Outcome::Verified { verified, .. } => Some(verified.clone()),
        Outcome::Invalidated { .. } => op.session_id.clone(),
        _ => return out,
    };
    federated::enqueue(tx, op.fanout.as_ref(), kind, user, named.as_ref());
    out
}

/// The user's live sessions, newest first (by creation time, then id).
fn live_newest_first(store: &SessionStore, user: &UserId) -> Vec<Session> {
    let mut v: Vec<Session> = store.live_sessions(user).cloned().collect();
    v.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    v
}

fn verify(tx: &mut Tx<'_>, user: &UserId, chosen: Option<&SessionId>) -> Outcome {
    let live = live_newest_first(tx.store, user);
    let target = match chosen {
        Some(id) => live
            .iter()
            .find(|s| &s.id == id)
            .ok_or_else(|| format!("session {id} is not a live session of user {user}")),
        None => live
            .first()
            .ok_or_else(|| format!("user {user} has no live session to verify")),
    };
    let target = match target {
        Ok(s) => s.clone(),
        Err(message) => return Outcome::NotFound { message },
    };
    // Chosen now: a peer's verify made before this one leaves it active.
    let mut chosen = target.clone();
    chosen.state = SessionState::Active;
    chosen.verified_at = Some(tx.at);
    tx.put(chosen);
    let mut ended = 0;
    for s in live.iter().filter(|s| s.id != target.id) {
        tx.end(&s.id, EndReason::Superseded, tx.at);
        ended += 1;
    }
    tx.audit(
        "verify",
        Some(user),
        Some(&target.id),
        json!({ "ended": ended }),
    );
    Outcome::Verified {
        verified: target.id,
        ended,
    }
}

fn invalidate(tx: &mut Tx<'_>, user: &UserId, one: Option<&SessionId>) -> Outcome {
    if let Some(id) = one {
        if tx.store.get(id).is_none_or(|s| &s.user_id != user) {
            return Outcome::NotFound {
                message: format!("session {id} is not a session of user {user}"),
            };
        }
    }
    let to_end: Vec<SessionId> = live_newest_first(tx.store, user)
        .into_iter()
        .filter(|s| one.is_none_or(|id| &s.id == id))
        .map(|s| s.id)
        .collect();
    for id in &to_end {
        tx.end(id, EndReason::Invalidated, tx.at);
    }
    let ended = to_end.len() as u32;
    tx.audit("invalidate", Some(user), one, json!({ "ended": ended }));
    Outcome::Invalidated { ended }
}

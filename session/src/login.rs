//! A login: a new session for a user, admitted under the limit (see [`super::limit`]), or the
//! session an earlier create with the same idempotency key made (by the same API key, within
//! the policy's `idempotency_window`), which the leader then gives a fresh token
//! ([`issue_token`]).

use serde_json::json;
use sessync_proto::SessionState;

use super::command::{Create, IssueToken, Outcome};
use super::limit::{admit, Admission};
use super::record::{Session, MAX_REPLAY_TOKENS};
use super::tx::Tx;

pub(super) fn create(tx: &mut Tx<'_>, c: &Create) -> Outcome {
    // First the user as time sees it, so a replay shows the session as it is now: one past its
    // deadline is ended, never active.
    tx.expire_user(&c.user_id);
    if let Some(key) = &c.idempotency_key {
        if let Some(existing) = tx.store.by_idempotency(&c.user_id, key) {
            // An idempotency key is a way to get a token back: a replay is answered only to
            // the API key that made the session, and only within the window; past it the key
            // is forgotten and a new session is made.
            let window = tx.store.policy().idempotency_window;
            if tx.at < existing.created_at.plus(window) {
                if c.by.is_some() && existing.created_by == c.by {
                    return Outcome::Created {
                        session: existing.clone(),
                        replayed: true,
                    };
                }
                return Outcome::Refused {
                    message: format!(
                        "idempotency_key {key:?} was used for another create of this user \
                         (by another API key, or before this version); choose a new key"
                    ),
                };
            }
        }
    }
    if tx.store.get(&c.session_id).is_some() {
        return Outcome::Refused {
            message: format!("session id {} is already taken", c.session_id),
        };
    }
    let state = match admit(tx, &c.user_id) {
        Admission::Active => SessionState::Active,
        Admission::Blocked => SessionState::Blocked,
        Admission::Denied(active) => {
            tx.audit(
                "limit_denied",
                Some(&c.user_id),
                None,
                json!({ "active_sessions": active.len() }),
            );
            return Outcome::LimitReached { active };
        }
    };
    let session = Session {
        id: c.session_id.clone(),
        user_id: c.user_id.clone(),
        token_hash: c.token_hash,
        state,
        end_reason: None,
        device: c.device.clone(),
        origin: c.origin.clone(),
        created_at: tx.at,
        last_seen_at: tx.at,
        ended_at: None,
        idempotency_key: c.idempotency_key.clone(),
        created_by: c.by.clone(),
        changed: None,
        verified_at: None,
        replay_tokens: Vec::new(),
    };
    tx.put(session.clone());
    let kind = if state == SessionState::Blocked {
        "session_blocked"
    } else {
        "session_created"
    };
    tx.audit(
        kind,
        Some(&c.user_id),
        Some(&c.session_id),
        json!({ "device": c.device.name, "origin": c.origin }),
    );
    Outcome::Created {
        session,
        replayed: false,
    }
}

/// A replay's fresh token: the command's hash opens a live session too, beside the tokens
/// earlier answers gave (at most [`MAX_REPLAY_TOKENS`] replays' are kept, the oldest dropped). An ended session is left as
/// it is (answered as it is now, with nothing to hand out); a hash another session holds is
/// refused (never, for 256 random bits; the index must stay one session per hash).
pub(super) fn issue_token(tx: &mut Tx<'_>, c: &IssueToken) -> Outcome {
    let Some(user) = tx.store.get(&c.session_id).map(|s| s.user_id.clone()) else {
        return Outcome::NotFound {
            message: format!("no session {}", c.session_id),
        };
    };
    // The session as time sees it: one past its deadline has ended and gets no new token.
    tx.expire_user(&user);
    let Some(mut session) = tx.store.get(&c.session_id).cloned() else {
        return Outcome::NotFound {
            message: format!("no session {}", c.session_id),
        };
    };
    if !session.is_live() {
        return Outcome::Created {
            session,
            replayed: true,
        };
    }
    if tx
        .store
        .by_token(&c.token_hash)
        .is_some_and(|other| other.id != session.id)
    {
        return Outcome::Refused {
            message: format!(
                "the new token of session {} is another session's; retry",
                session.id
            ),
        };
    }
    if !session.token_hashes().any(|h| *h == c.token_hash) {
        session.replay_tokens.push(c.token_hash);
        let over = session
            .replay_tokens
            .len()
            .saturating_sub(MAX_REPLAY_TOKENS);
        session.replay_tokens.drain(..over);
    }
    tx.put(session.clone());
    tx.audit(
        "session_token_issued",
        Some(&user),
        Some(&c.session_id),
        json!({}),
    );
    Outcome::Created {
        session,
        replayed: true,
    }
}

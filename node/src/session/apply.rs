//! Applying one command: the deterministic heart of sessync.
//!
//! [`apply`] reads only the command and the store. Every change goes through [`Tx`], which
//! folds it into the store at once (so later steps of the same command see it) and records it
//! for the storage layer to persist.

use serde_json::json;
use sessync_proto::federation::PeerOpKind;
use sessync_proto::{EndReason, SessionId, SessionState, Timestamp, UserId};

use super::command::{AuditNote, Command, Mutation, Outcome};
use super::federated::{self, PeerRequest};
use super::limit::{admit, Admission};
use super::record::Session;
use super::store::SessionStore;

/// Most sessions one `Expire` command ends or removes; the leader proposes another for the rest.
pub const EXPIRE_BATCH: usize = 5_000;

/// The changes one command makes, applied to the store as they are made.
pub(super) struct Tx<'a> {
    pub store: &'a mut SessionStore,
    pub at: Timestamp,
    pub mutations: Vec<Mutation>,
}

impl Tx<'_> {
    pub fn push(&mut self, m: Mutation) {
        self.store.apply_mutation(&m);
        self.mutations.push(m);
    }

    pub fn put(&mut self, s: Session) {
        self.push(Mutation::PutSession(s));
    }

    pub fn audit(
        &mut self,
        kind: &str,
        user_id: Option<&UserId>,
        session_id: Option<&SessionId>,
        detail: serde_json::Value,
    ) {
        self.push(Mutation::Audit(AuditNote {
            at: self.at,
            kind: kind.to_owned(),
            user_id: user_id.cloned(),
            session_id: session_id.cloned(),
            detail,
        }));
    }

    /// Ends a live session at `when` for `reason`, with its audit event.
    pub fn end(&mut self, id: &SessionId, reason: EndReason, when: Timestamp) {
        let Some(mut s) = self.store.get(id).cloned() else {
            return;
        };
        if !s.is_live() {
            return;
        }
        s.state = SessionState::Ended;
        s.end_reason = Some(reason);
        s.ended_at = Some(when);
        let user = s.user_id.clone();
        self.put(s);
        self.audit(
            "session_ended",
            Some(&user),
            Some(id),
            json!({ "reason": reason.as_str() }),
        );
    }

    /// Ends the user's sessions that time alone has ended by now, so a command sees the user
    /// as the clock does even before the leader's next `Expire`.
    pub fn expire_user(&mut self, user: &UserId) {
        let policy = self.store.policy().clone();
        let due: Vec<(SessionId, Timestamp, EndReason)> = self
            .store
            .user_sessions(user)
            .filter(|s| s.is_live())
            .filter_map(|s| {
                let (t, reason) = s.deadline(&policy);
                (t <= self.at).then(|| (s.id.clone(), t, reason))
            })
            .collect();
        for (id, t, reason) in due {
            self.end(&id, reason, t);
        }
    }
}

/// Applies `cmd` to `store`; returns what to answer and the mutations to persist.
///
/// Cluster time never runs backwards in the log: a command stamped earlier than one applied
/// before it (two proposals racing on the leader, or a new leader with a slower clock) takes the
/// later time.
pub fn apply(store: &mut SessionStore, cmd: &Command) -> (Outcome, Vec<Mutation>) {
    let at = cmd.at().max(store.clock());
    store.advance_clock(at);
    let mut tx = Tx {
        store,
        at,
        mutations: Vec::new(),
    };
    let outcome = match cmd {
        Command::SetPolicy { policy, .. } => {
            let changed = tx.store.replicated_policy() != Some(policy);
            if changed {
                tx.push(Mutation::SetPolicy(policy.clone()));
                tx.audit(
                    "policy_changed",
                    None,
                    None,
                    serde_json::to_value(policy).unwrap_or_default(),
                );
                enforce_lowered_limit(&mut tx);
            }
            Outcome::Done
        }
        Command::Create {
            session_id,
            token_hash,
            user_id,
            device,
            origin,
            idempotency_key,
            ..
        } => {
            if let Some(key) = idempotency_key {
                if let Some(existing) = tx.store.by_idempotency(user_id, key) {
                    return (
                        Outcome::Created {
                            session: existing.clone(),
                            replayed: true,
                        },
                        tx.mutations,
                    );
                }
            }
            if tx.store.get(session_id).is_some() {
                return (
                    Outcome::Refused {
                        message: format!("session id {session_id} is already taken"),
                    },
                    tx.mutations,
                );
            }
            tx.expire_user(user_id);
            let state = match admit(&mut tx, user_id) {
                Admission::Active => SessionState::Active,
                Admission::Blocked => SessionState::Blocked,
                Admission::Denied(active) => {
                    tx.audit(
                        "limit_denied",
                        Some(user_id),
                        None,
                        json!({ "active_sessions": active.len() }),
                    );
                    return (Outcome::LimitReached { active }, tx.mutations);
                }
            };
            let session = Session {
                id: session_id.clone(),
                user_id: user_id.clone(),
                token_hash: *token_hash,
                state,
                end_reason: None,
                device: device.clone(),
                origin: origin.clone(),
                created_at: tx.at,
                last_seen_at: tx.at,
                ended_at: None,
                idempotency_key: idempotency_key.clone(),
            };
            tx.put(session.clone());
            let kind = if state == SessionState::Blocked {
                "session_blocked"
            } else {
                "session_created"
            };
            tx.audit(
                kind,
                Some(user_id),
                Some(session_id),
                json!({ "device": device.name, "origin": origin }),
            );
            Outcome::Created {
                session,
                replayed: false,
            }
        }
        Command::Touch { touches, .. } => {
            let policy = tx.store.policy().clone();
            for (id, touched_at) in touches {
                let Some(s) = tx.store.get(id) else { continue };
                // A touch counts if the session was valid when the leader accepted it, even if
                // the entry is applied a moment after the deadline (an ended session stays ended).
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
        Command::End {
            session_id, reason, ..
        } => {
            let Some(user) = tx.store.get(session_id).map(|s| s.user_id.clone()) else {
                return (
                    Outcome::NotFound {
                        message: format!("no session {session_id}"),
                    },
                    tx.mutations,
                );
            };
            tx.expire_user(&user);
            tx.end(session_id, *reason, tx.at);
            let session = tx.store.get(session_id).cloned();
            match session {
                Some(session) => Outcome::Ended { session },
                None => Outcome::NotFound {
                    message: format!("no session {session_id}"),
                },
            }
        }
        Command::Verify {
            user_id,
            session_id,
            fanout,
            ..
        } => federated::local_then_fanout(
            &mut tx,
            fanout.as_ref(),
            PeerOpKind::Verify,
            user_id,
            session_id.as_ref(),
            |tx| verify(tx, user_id, session_id.as_ref()),
        ),
        Command::Invalidate {
            user_id,
            session_id,
            fanout,
            ..
        } => federated::local_then_fanout(
            &mut tx,
            fanout.as_ref(),
            PeerOpKind::Invalidate,
            user_id,
            session_id.as_ref(),
            |tx| invalidate(tx, user_id, session_id.as_ref()),
        ),
        Command::FanoutAcked { acks, .. } => federated::acked(&mut tx, acks),
        Command::PeerOp {
            origin,
            nonce,
            nonce_until,
            kind,
            op_id,
            user_id,
            session_id,
            ..
        } => federated::peer_op(
            &mut tx,
            PeerRequest {
                origin,
                nonce,
                nonce_until: *nonce_until,
                kind: *kind,
                op_id,
                user: user_id,
                session_id: session_id.as_ref(),
            },
        ),
        Command::Expire { .. } => expire(&mut tx),
        Command::RecordAudit { notes, .. } => {
            for n in notes {
                // Stamped with cluster time, so the audit log stays ordered by time and a node
                // with a skewed clock cannot hold up its trimming.
                let mut n = n.clone();
                // The node's own time stays beside the event's fields, as `reported_at`.
                n.detail = match n.detail {
                    serde_json::Value::Object(mut m) => {
                        m.insert("reported_at".to_owned(), json!(n.at));
                        serde_json::Value::Object(m)
                    }
                    other => json!({ "reported_at": n.at, "event": other }),
                };
                n.at = tx.at;
                tx.push(Mutation::Audit(n));
            }
            Outcome::Done
        }
    };
    (outcome, tx.mutations)
}

/// The user's live sessions, newest first (by creation time, then id).
fn live_newest_first(store: &SessionStore, user: &UserId) -> Vec<Session> {
    let mut v: Vec<Session> = store
        .user_sessions(user)
        .filter(|s| s.is_live())
        .cloned()
        .collect();
    v.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    v
}

fn verify(tx: &mut Tx<'_>, user: &UserId, chosen: Option<&SessionId>) -> Outcome {
    tx.expire_user(user);
    let live = live_newest_first(tx.store, user);
    let target = match chosen {
        Some(id) => match live.iter().find(|s| &s.id == id) {
            Some(s) => s.clone(),
            None => {
                return Outcome::NotFound {
                    message: format!("session {id} is not a live session of user {user}"),
                }
            }
        },
        None => match live.first() {
            Some(s) => s.clone(),
            None => {
                return Outcome::NotFound {
                    message: format!("user {user} has no live session to verify"),
                }
            }
        },
    };
    if target.state == SessionState::Blocked {
        let mut s = target.clone();
        s.state = SessionState::Active;
        tx.put(s);
    }
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
    tx.expire_user(user);
    let live = live_newest_first(tx.store, user);
    let to_end: Vec<SessionId> = match one {
        Some(id) => {
            match tx.store.get(id) {
                Some(s) if &s.user_id == user => {}
                _ => {
                    return Outcome::NotFound {
                        message: format!("session {id} is not a session of user {user}"),
                    }
                }
            }
            live.iter()
                .filter(|s| &s.id == id)
                .map(|s| s.id.clone())
                .collect()
        }
        None => live.iter().map(|s| s.id.clone()).collect(),
    };
    for id in &to_end {
        tx.end(id, EndReason::Invalidated, tx.at);
    }
    let ended = to_end.len() as u32;
    tx.audit("invalidate", Some(user), one, json!({ "ended": ended }));
    Outcome::Invalidated { ended }
}

/// After the limit was lowered, ends each user's least recently used active sessions beyond it
/// (`evicted`), so no read ever shows more active sessions than the limit in force.
fn enforce_lowered_limit(tx: &mut Tx<'_>) {
    let limit = tx.store.policy().max_concurrent_sessions as usize;
    if limit == 0 {
        return;
    }
    let users: Vec<UserId> = tx.store.users().cloned().collect();
    for user in users {
        let mut active: Vec<Session> = tx
            .store
            .user_sessions(&user)
            .filter(|s| s.state == SessionState::Active)
            .cloned()
            .collect();
        if active.len() <= limit {
            continue;
        }
        active.sort_by(|a, b| {
            (a.last_seen_at, a.created_at, &a.id).cmp(&(b.last_seen_at, b.created_at, &b.id))
        });
        let excess = active.len() - limit;
        for s in active.iter().take(excess) {
            tx.end(&s.id, EndReason::Evicted, tx.at);
        }
    }
}

fn expire(tx: &mut Tx<'_>) -> Outcome {
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
        tx.push(Mutation::DeleteSession(id));
    }
    tx.push(Mutation::TrimAudit(tx.at.minus(policy.audit_retention)));
    // A received operation is remembered as long as the audit log that shows it.
    federated::trim(tx, policy.audit_retention);
    Outcome::Expired { ended, removed }
}

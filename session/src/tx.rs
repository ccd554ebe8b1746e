//! [`Tx`]: the changes one command makes. Each change is folded into the store at once (so
//! later steps of the same command see it) and recorded for the storage layer to persist; the
//! helpers here are the steps many commands share (ending a session, expiring a user's).

use serde_json::json;
use sessync_proto::{EndReason, EventPosition, SessionId, SessionState, Timestamp, UserId};

use super::command::AuditNote;
use super::mutation::{Mutation, Record};
use super::record::Session;
use super::store::SessionStore;

/// The changes one command makes, applied to the store as they are made.
pub(super) struct Tx<'a> {
    pub(crate) store: &'a mut SessionStore,
    pub(crate) at: Timestamp,
    /// The log index of the entry being applied.
    pub(crate) index: u64,
    pub(crate) mutations: Vec<Mutation>,
}

impl Tx<'_> {
    pub(super) fn push(&mut self, m: Mutation) {
        self.store.apply_mutation(&m);
        self.mutations.push(m);
    }

    /// Stores `s`; a new session or a new state is stamped with this entry's position.
    pub(super) fn put(&mut self, mut s: Session) {
        if self.store.get(&s.id).is_none_or(|old| old.state != s.state) {
            s.changed = Some(EventPosition {
                index: self.index,
                at: self.at,
            });
        }
        self.push(Mutation::Put(Record::Session(s)));
    }

    pub(super) fn audit(
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
    pub(super) fn end(&mut self, id: &SessionId, reason: EndReason, when: Timestamp) {
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
    pub(super) fn expire_user(&mut self, user: &UserId) {
        let policy = self.store.policy().clone();
        let due: Vec<(SessionId, Timestamp, EndReason)> = self
            .store
            .live_sessions(user)
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

//! The in-memory session store: every session record plus the indexes reads need.
//!
//! Only the records (sessions, and the federation [`Ledger`]'s), the policy and the clock are
//! state; the indexes are derived and rebuilt whenever a record changes, so loading the records
//! from disk restores the whole store.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound::{Excluded, Included, Unbounded};

use sessync_proto::{Policy, SessionId, Timestamp, UserId};

use super::ledger::Ledger;
use super::mutation::{Mutation, Record, RecordKey};
use super::record::{Session, TokenHash};

/// A user's session ids, sorted: a user has a handful, and a sorted `Vec` of one id takes 32
/// bytes of heap where a `BTreeSet` of one allocates a whole tree node (about 200).
#[derive(Clone, Debug, Default)]
struct IdSet(Vec<SessionId>);

impl IdSet {
    fn insert(&mut self, id: SessionId) {
        if let Err(at) = self.0.binary_search(&id) {
            self.0.insert(at, id);
        }
    }

    fn remove(&mut self, id: &SessionId) {
        if let Ok(at) = self.0.binary_search(id) {
            self.0.remove(at);
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

static DEFAULT_POLICY: std::sync::OnceLock<Policy> = std::sync::OnceLock::new();

/// All sessions of one site, indexed for the lookups the API and the state machine make.
#[derive(Debug, Default)]
pub struct SessionStore {
    sessions: BTreeMap<SessionId, Session>,
    by_token: HashMap<TokenHash, SessionId>,
    /// Live (active or blocked) sessions by user: what every command of a user looks at, so
    /// its cost follows the user's live sessions, not every session retention still keeps.
    live_by_user: BTreeMap<UserId, IdSet>,
    /// Ended sessions by user (kept for listing until retention removes them).
    ended_by_user: BTreeMap<UserId, IdSet>,
    by_idempotency: HashMap<(UserId, String), SessionId>,
    /// Live sessions by the time at which time alone ends them.
    deadlines: BTreeSet<(Timestamp, SessionId)>,
    /// Ended sessions by when they ended, for retention.
    ended: BTreeSet<(Timestamp, SessionId)>,
    /// The change index: every session with a recorded change position, by that position (log
    /// index, then id; the id is always `Some`, `None` sorts first so a range can start at an
    /// index). One entry per stored session (about 40 bytes with the tree's own), derived from
    /// the replicated `changed` field like the other indexes, so it is rebuilt wherever the
    /// records are loaded (open, snapshot install) and is the same on every replica.
    by_change: BTreeSet<(u64, Option<SessionId>)>,
    policy: Option<Policy>,
    clock: Timestamp,
    /// Federation: outbox, received operations, seen nonces.
    ledger: Ledger,
    /// Session records the per-user lookups have visited (tests watch what a command costs).
    #[cfg(test)]
    visited: std::sync::atomic::AtomicUsize,
}

impl SessionStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The replicated policy, or the default before a leader has written one.
    pub fn policy(&self) -> &Policy {
        self.policy
            .as_ref()
            .unwrap_or_else(|| DEFAULT_POLICY.get_or_init(Policy::default))
    }

    /// The replicated policy as written in the log, if any.
    pub fn replicated_policy(&self) -> Option<&Policy> {
        self.policy.as_ref()
    }

    /// The latest cluster time applied: it never goes backwards.
    pub fn clock(&self) -> Timestamp {
        self.clock
    }

    pub(crate) fn advance_clock(&mut self, at: Timestamp) {
        self.clock = self.clock.max(at);
    }

    /// Restores the clock and policy when loading from disk.
    pub fn restore_meta(&mut self, clock: Timestamp, policy: Option<Policy>) {
        self.clock = clock;
        self.policy = policy;
        self.reindex_deadlines();
    }

    pub fn get(&self, id: &SessionId) -> Option<&Session> {
        self.sessions.get(id)
    }

    pub fn by_token(&self, hash: &TokenHash) -> Option<&Session> {
        self.by_token.get(hash).and_then(|id| self.sessions.get(id))
    }

    pub(crate) fn by_idempotency(&self, user: &UserId, key: &str) -> Option<&Session> {
        self.by_idempotency
            .get(&(user.clone(), key.to_owned()))
            .and_then(|id| self.sessions.get(id))
    }

    /// The live (active or blocked) sessions of a user, in no particular order: O(those).
    pub fn live_sessions<'a>(&'a self, user: &UserId) -> impl Iterator<Item = &'a Session> + 'a {
        self.sessions_in(&self.live_by_user, user)
    }

    /// Every session of a user, live and ended, in no particular order.
    pub fn user_sessions<'a>(&'a self, user: &UserId) -> impl Iterator<Item = &'a Session> + 'a {
        self.sessions_in(&self.live_by_user, user)
            .chain(self.sessions_in(&self.ended_by_user, user))
    }

    fn sessions_in<'a>(
        &'a self,
        index: &'a BTreeMap<UserId, IdSet>,
        user: &UserId,
    ) -> impl Iterator<Item = &'a Session> + 'a {
        index
            .get(user)
            .into_iter()
            .flat_map(|ids| ids.0.iter())
            .filter_map(|id| {
                #[cfg(test)]
                self.visited
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.sessions.get(id)
            })
    }

    /// How many session records the per-user lookups have visited since the last call.
    #[cfg(test)]
    pub(crate) fn take_visited(&self) -> usize {
        self.visited.swap(0, std::sync::atomic::Ordering::Relaxed)
    }

    /// The ids the per-user live index holds for `user`.
    #[cfg(test)]
    pub(crate) fn live_index(&self, user: &UserId) -> Vec<SessionId> {
        self.live_by_user
            .get(user)
            .map(|ids| ids.0.clone())
            .unwrap_or_default()
    }

    /// Users holding a live session, in order, starting after `after` if given.
    pub fn users_with_live_sessions<'a>(
        &'a self,
        after: Option<&UserId>,
    ) -> impl Iterator<Item = &'a UserId> + 'a {
        use std::ops::Bound::{Excluded, Unbounded};
        let from = after.map_or(Unbounded, |u| Excluded(u.clone()));
        self.live_by_user.range((from, Unbounded)).map(|(u, _)| u)
    }

    /// Every session, ordered by id.
    pub fn all(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }

    /// At most `max` sessions (of `user`, or of everyone) whose state last changed after
    /// `after`, in the order of their change (log index, then id): what an event subscriber
    /// resuming there has missed, one page of it. Everyone's are read from the change index,
    /// so a page costs O(log n + max) and visits only sessions changed after `after`; one
    /// user's cost a pass over that user's sessions. Sessions last changed before positions
    /// were recorded have none and are not returned.
    pub fn changed_after(
        &self,
        after: &ChangeCursor,
        user: Option<&UserId>,
        max: usize,
    ) -> Vec<&Session> {
        match user {
            Some(u) => {
                let mut found: Vec<((u64, &SessionId), &Session)> = self
                    .user_sessions(u)
                    .filter_map(|s| {
                        let key = (s.changed?.index, &s.id);
                        after.is_before(key).then_some((key, s))
                    })
                    .collect();
                if found.len() > max {
                    found.select_nth_unstable_by_key(max, |(k, _)| *k);
                    found.truncate(max);
                }
                found.sort_unstable_by_key(|(k, _)| *k);
                found.into_iter().map(|(_, s)| s).collect()
            }
            None => {
                let start = match &after.session {
                    Some(id) => Excluded((after.index, Some(id.clone()))),
                    None => match after.index.checked_add(1) {
                        Some(next) => Included((next, None)),
                        None => return Vec::new(),
                    },
                };
                self.by_change
                    .range((start, Unbounded))
                    .filter_map(|(_, id)| {
                        #[cfg(test)]
                        self.visited
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        self.sessions.get(id.as_ref()?)
                    })
                    .take(max)
                    .collect()
            }
        }
    }

    /// How many sessions are stored (live and ended).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is stored.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Live sessions whose deadline is at or before `at`, earliest first, at most `max`.
    pub(crate) fn due(&self, at: Timestamp, max: usize) -> Vec<SessionId> {
        self.deadlines
            .iter()
            .take_while(|(t, _)| *t <= at)
            .take(max)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// The earliest deadline of any live session.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.deadlines.iter().next().map(|(t, _)| *t)
    }

    /// Ended sessions that ended at or before `before`, at most `max`.
    pub(crate) fn ended_before(&self, before: Timestamp, max: usize) -> Vec<SessionId> {
        self.ended
            .iter()
            .take_while(|(t, _)| *t <= before)
            .take(max)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// The earliest end time among ended sessions.
    pub fn oldest_ended(&self) -> Option<Timestamp> {
        self.ended.iter().next().map(|(t, _)| *t)
    }

    /// Folds one mutation into the store. Audit mutations live only on disk.
    pub(crate) fn apply_mutation(&mut self, m: &Mutation) {
        match m {
            Mutation::Put(Record::Session(s)) => self.put(s.clone()),
            Mutation::Put(r) => self.ledger.put(r),
            Mutation::Delete(RecordKey::Session(id)) => self.delete(id),
            Mutation::Delete(k) => self.ledger.delete(k),
            Mutation::SetPolicy(p) => {
                self.policy = Some(p.clone());
                self.reindex_deadlines();
            }
            Mutation::Audit(_) | Mutation::TrimAudit(_) => {}
        }
    }

    /// The federation state.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Inserts a record read from disk or a snapshot.
    pub fn insert(&mut self, r: Record) {
        match r {
            Record::Session(s) => self.put(s),
            other => self.ledger.put(&other),
        }
    }

    /// Inserts or replaces a session record.
    fn put(&mut self, s: Session) {
        self.unindex(&s.id);
        for hash in s.token_hashes() {
            self.by_token.insert(*hash, s.id.clone());
        }
        let index = if s.is_live() {
            &mut self.live_by_user
        } else {
            &mut self.ended_by_user
        };
        index
            .entry(s.user_id.clone())
            .or_default()
            .insert(s.id.clone());
        if let Some(k) = &s.idempotency_key {
            self.by_idempotency
                .insert((s.user_id.clone(), k.clone()), s.id.clone());
        }
        match s.ended_at {
            Some(t) if !s.is_live() => {
                self.ended.insert((t, s.id.clone()));
            }
            _ => {
                self.deadlines
                    .insert((s.deadline(self.policy()).0, s.id.clone()));
            }
        }
        if let Some(c) = s.changed {
            self.by_change.insert((c.index, Some(s.id.clone())));
        }
        self.sessions.insert(s.id.clone(), s);
    }

    fn delete(&mut self, id: &SessionId) {
        self.unindex(id);
        self.sessions.remove(id);
    }

    fn unindex(&mut self, id: &SessionId) {
        let Some(old) = self.sessions.get(id) else {
            return;
        };
        for hash in old.token_hashes() {
            self.by_token.remove(hash);
        }
        let index = if old.is_live() {
            &mut self.live_by_user
        } else {
            &mut self.ended_by_user
        };
        if let Some(set) = index.get_mut(&old.user_id) {
            set.remove(id);
            if set.is_empty() {
                index.remove(&old.user_id);
            }
        }
        if let Some(k) = &old.idempotency_key {
            // Only if it still points here: a later create may have taken the key over.
            let key = (old.user_id.clone(), k.clone());
            if self.by_idempotency.get(&key) == Some(id) {
                self.by_idempotency.remove(&key);
            }
        }
        match old.ended_at {
            Some(t) if !old.is_live() => {
                self.ended.remove(&(t, id.clone()));
            }
            _ => {
                let d = old.deadline(self.policy()).0;
                self.deadlines.remove(&(d, id.clone()));
            }
        }
        if let Some(c) = old.changed {
            self.by_change.remove(&(c.index, Some(id.clone())));
        }
    }

    fn reindex_deadlines(&mut self) {
        let policy = self.policy().clone();
        self.deadlines = self
            .sessions
            .values()
            .filter(|s| s.is_live())
            .map(|s| (s.deadline(&policy).0, s.id.clone()))
            .collect();
    }
}

/// Where a reader of the change index stands: after every change at log indexes below
/// `index`, and at `index` itself after `session` (every change there if `None`). A page may
/// end inside one entry that changed many sessions (a batch, a sweep, an invalidate); the next
/// page goes on within it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeCursor {
    pub index: u64,
    pub session: Option<SessionId>,
}

impl ChangeCursor {
    /// After every change at `index` and before it (an event id's position).
    pub fn after_index(index: u64) -> Self {
        ChangeCursor {
            index,
            session: None,
        }
    }

    /// Just after `id`'s change at `index`.
    pub fn after(index: u64, id: SessionId) -> Self {
        ChangeCursor {
            index,
            session: Some(id),
        }
    }

    /// Whether the change `(index, id)` comes after this cursor.
    fn is_before(&self, (index, id): (u64, &SessionId)) -> bool {
        match &self.session {
            Some(last) => (index, id) > (self.index, last),
            None => index > self.index,
        }
    }
}

//! Applying one command: the deterministic heart of sessync.
//!
//! [`apply`] reads only the command and the store, and hands each command to its own function:
//! logins in [`super::login`], touches and expiry in [`super::expiry`], verify and invalidate in
//! [`super::user_op`], federation in [`super::federated`], the rest here. Every change goes
//! through [`Tx`], which folds it into the store at once (so later steps of the same command
//! see it) and records it for the storage layer to persist.

use serde_json::json;
use sessync_proto::federation::PeerOpKind;
use sessync_proto::{EndReason, SessionState, UserId};

use super::command::{Command, End, Outcome, RecordAudit, SetPolicy};
use super::mutation::Mutation;
use super::record::Session;
use super::store::SessionStore;
use super::tx::Tx;
use super::{expiry, federated, login, user_op};

/// Applies `cmd`, the entry at log `index`, to `store`; returns what to answer and the mutations
/// to persist.
///
/// Cluster time never runs backwards in the log: a command stamped earlier than one applied
/// before it (two proposals racing on the leader, or a new leader with a slower clock) takes the
/// later time.
pub fn apply(store: &mut SessionStore, cmd: &Command, index: u64) -> (Outcome, Vec<Mutation>) {
    if let Command::Batch(b) = cmd {
        let mut outcomes = Vec::with_capacity(b.commands.len());
        let mut mutations = Vec::new();
        for c in &b.commands {
            let (o, m) = match c {
                // Not nested: the inner batch is refused as a whole.
                Command::Batch(_) => (
                    Outcome::Refused {
                        message: "a batch inside a batch".into(),
                    },
                    Vec::new(),
                ),
                c => apply(store, c, index),
            };
            outcomes.push(o);
            mutations.extend(m);
        }
        return (Outcome::Batch { outcomes }, mutations);
    }
    let at = cmd.at().max(store.clock());
    store.advance_clock(at);
    let mut tx = Tx {
        store,
        at,
        index,
        mutations: Vec::new(),
    };
    let outcome = match cmd {
        Command::SetPolicy(c) => set_policy(&mut tx, c),
        Command::Create(c) => login::create(&mut tx, c),
        Command::Touch(c) => expiry::touch(&mut tx, c),
        Command::End(c) => end(&mut tx, c),
        Command::Verify(c) => user_op::apply(&mut tx, PeerOpKind::Verify, c),
        Command::Invalidate(c) => user_op::apply(&mut tx, PeerOpKind::Invalidate, c),
        Command::FanoutAcked(c) => federated::acked(&mut tx, &c.acks),
        Command::PeerOp(c) => federated::peer_op(&mut tx, c),
        Command::Expire(_) => expiry::expire(&mut tx),
        Command::RecordAudit(c) => record_audit(&mut tx, c),
        Command::IssueToken(c) => login::issue_token(&mut tx, c),
        // Applied command by command above; never reached.
        Command::Batch(_) => Outcome::Refused {
            message: "a batch inside a batch".into(),
        },
    };
    (outcome, tx.mutations)
}

fn set_policy(tx: &mut Tx<'_>, c: &SetPolicy) -> Outcome {
    if tx.store.replicated_policy() == Some(&c.policy) {
        return Outcome::Done;
    }
    // Sessions the old policy has ended by now stay ended: a longer idle timeout or lifetime
    // never brings one back.
    for id in tx.store.due(tx.at, usize::MAX) {
        if let Some((t, reason)) = tx.store.get(&id).map(|s| s.deadline(tx.store.policy())) {
            tx.end(&id, reason, t);
        }
    }
    tx.push(Mutation::SetPolicy(c.policy.clone()));
    let mut detail = serde_json::to_value(&c.policy).unwrap_or_default();
    if let (Some(by), Some(d)) = (&c.by, detail.as_object_mut()) {
        d.insert("by".to_owned(), serde_json::Value::String(by.clone()));
    }
    tx.audit("policy_changed", None, None, detail);
    enforce_lowered_limit(tx);
    Outcome::Done
}

/// After the limit was lowered, ends each user's least recently used active sessions beyond it
/// (`evicted`), so no read ever shows more active sessions than the limit in force.
fn enforce_lowered_limit(tx: &mut Tx<'_>) {
    let limit = tx.store.policy().max_concurrent_sessions as usize;
    if limit == 0 {
        return;
    }
    let users: Vec<UserId> = tx.store.users_with_live_sessions(None).cloned().collect();
    for user in users {
        let mut active: Vec<Session> = tx
            .store
            .live_sessions(&user)
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

fn end(tx: &mut Tx<'_>, c: &End) -> Outcome {
    let not_found = || Outcome::NotFound {
        message: format!("no session {}", c.session_id),
    };
    let Some(user) = tx.store.get(&c.session_id).map(|s| s.user_id.clone()) else {
        return not_found();
    };
    tx.expire_user(&user);
    tx.end(&c.session_id, c.reason, tx.at);
    match tx.store.get(&c.session_id).cloned() {
        Some(session) => Outcome::Ended { session },
        None => not_found(),
    }
}

fn record_audit(tx: &mut Tx<'_>, c: &RecordAudit) -> Outcome {
    for n in &c.notes {
        // Stamped with cluster time, so the audit log stays ordered by time and a node with a
        // skewed clock cannot hold up its trimming. The node's own time stays beside the
        // event's fields, as `reported_at`.
        let mut n = n.clone();
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

//! Applying the federation side of commands: queueing a verify or invalidate for peer sites in
//! the same entry as the local change, dropping what peers acknowledged, and applying what a
//! peer sent (once per operation id, never for a nonce seen before).

use serde_json::json;
use sessync_proto::federation::PeerOpKind;
use sessync_proto::{EndReason, OpId, SessionId, SiteName, UserId};

use super::command::{Fanout, Outcome, PeerOp};
use super::ledger::{OutboxEntry, ReceivedOp, SeenNonce};
use super::mutation::{Mutation, Record, RecordKey};
use super::store::SessionStore;
use super::tx::Tx;

/// `Some(OutboxFull)` if any target's queue is at its limit: the whole command is refused
/// before it changes anything, so a caller never gets a local change without its fan-out.
pub(super) fn outbox_full(store: &SessionStore, fanout: Option<&Fanout>) -> Option<Outcome> {
    let f = fanout?;
    f.targets.iter().find_map(|site| {
        (store.ledger().queued(site) >= f.outbox_limit as usize).then(|| Outcome::OutboxFull {
            site: site.clone(),
            limit: f.outbox_limit,
        })
    })
}

/// Queues the operation for each target, with a `fanout_queued` audit event each.
pub(super) fn enqueue(
    tx: &mut Tx<'_>,
    fanout: Option<&Fanout>,
    kind: PeerOpKind,
    user: &UserId,
    session_id: Option<&SessionId>,
) {
    let Some(f) = fanout else { return };
    for site in &f.targets {
        if tx.store.ledger().is_queued(site, &f.op_id) {
            continue;
        }
        tx.push(Mutation::Put(Record::Outbox(OutboxEntry {
            site: site.clone(),
            op_id: f.op_id.clone(),
            kind,
            user_id: user.clone(),
            session_id: session_id.cloned(),
            queued_at: tx.at,
        })));
        tx.audit(
            "fanout_queued",
            Some(user),
            session_id,
            json!({ "site": site, "op_id": f.op_id, "op": kind }),
        );
    }
}

/// Removes acknowledged entries, each with a `fanout_delivered` event giving the delay from
/// commit to acknowledgement in cluster time.
pub(super) fn acked(tx: &mut Tx<'_>, acks: &[(SiteName, OpId)]) -> Outcome {
    for (site, op_id) in acks {
        let Some(e) = tx.store.ledger().outbox_entry(site, op_id).cloned() else {
            continue;
        };
        tx.push(Mutation::Delete(RecordKey::Outbox {
            site: site.clone(),
            op_id: op_id.clone(),
        }));
        let delay_ms = tx.at.since(e.queued_at).as_millis() as u64;
        tx.audit(
            "fanout_delivered",
            Some(&e.user_id),
            e.session_id.as_ref(),
            json!({ "site": site, "op_id": op_id, "op": e.kind, "delay_ms": delay_ms }),
        );
    }
    Outcome::Done
}

/// Applies a peer's operation: refused if its nonce was seen; a no-op if its id was applied.
pub(super) fn peer_op(tx: &mut Tx<'_>, r: &PeerOp) -> Outcome {
    let base = json!({ "origin": r.origin, "op_id": r.op_id, "op": r.kind });
    if tx.store.ledger().nonce_seen(&r.origin, &r.nonce) {
        tx.audit(
            "fanout_rejected",
            Some(&r.user_id),
            r.session_id.as_ref(),
            with(base, json!({ "reason": "replayed_nonce" })),
        );
        return Outcome::NonceReplayed;
    }
    tx.push(Mutation::Put(Record::Nonce(SeenNonce {
        origin: r.origin.clone(),
        nonce: r.nonce.clone(),
        until: r.nonce_until,
    })));
    if tx.store.ledger().received(&r.origin, &r.op_id).is_some() {
        tx.audit(
            "fanout_received",
            Some(&r.user_id),
            r.session_id.as_ref(),
            with(base, json!({ "duplicate": true, "ended": 0 })),
        );
        return Outcome::PeerApplied {
            applied: false,
            ended: 0,
        };
    }
    tx.expire_user(&r.user_id);
    let (only, reason) = match (r.kind, r.session_id.as_ref()) {
        // The verified session lives at the origin: every session here is superseded.
        (PeerOpKind::Verify, _) => (None, EndReason::Superseded),
        (PeerOpKind::Invalidate, one) => (one, EndReason::Invalidated),
    };
    let to_end: Vec<SessionId> = tx
        .store
        .live_sessions(&r.user_id)
        .filter(|s| only.is_none_or(|id| &s.id == id))
        .map(|s| s.id.clone())
        .collect();
    for id in &to_end {
        tx.end(id, reason, tx.at);
    }
    let ended = to_end.len() as u32;
    tx.push(Mutation::Put(Record::Received(ReceivedOp {
        origin: r.origin.clone(),
        op_id: r.op_id.clone(),
        at: tx.at,
        ended,
    })));
    tx.audit(
        "fanout_received",
        Some(&r.user_id),
        r.session_id.as_ref(),
        with(base, json!({ "duplicate": false, "ended": ended })),
    );
    Outcome::PeerApplied {
        applied: true,
        ended,
    }
}

/// Forgets nonces past their window and received operations older than `keep_received`, at
/// most `max` of each.
pub(super) fn trim(tx: &mut Tx<'_>, keep_received: std::time::Duration, max: usize) {
    for (origin, nonce) in tx.store.ledger().expired_nonces(tx.at, max) {
        tx.push(Mutation::Delete(RecordKey::Nonce { origin, nonce }));
    }
    let cutoff = tx.at.minus(keep_received);
    for (origin, op_id) in tx.store.ledger().received_before(cutoff, max) {
        tx.push(Mutation::Delete(RecordKey::Received { origin, op_id }));
    }
}

fn with(mut base: serde_json::Value, more: serde_json::Value) -> serde_json::Value {
    if let (Some(b), serde_json::Value::Object(m)) = (base.as_object_mut(), more) {
        b.extend(m);
    }
    base
}

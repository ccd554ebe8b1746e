//! Applying the federation side of commands: queueing a verify or invalidate for peer sites in
//! the same entry as the local change, dropping what peers acknowledged (or what aged out), and
//! applying what a peer sent (once per operation id, never for a nonce seen before).
//!
//! A peer's operation acts as of its origin time `T` (the origin's cluster time of the entry
//! that made it), whenever it arrives:
//! - it ends only the sessions created here before `T + max_clock_skew` (clocks of two sites
//!   agree only within the bound, so it errs on the side of ending: a login made within the
//!   bound after a logout may end, one made later never does);
//! - a verify loses to a later verify: a session a verify here chose at `V` stays active when
//!   `(V, this site) > (T, origin)` (the later time wins, a tie goes to the greater site
//!   name). Every site orders two verifies of one user alike, so exactly one chosen session
//!   survives them both.
//!
//! Each received operation id is remembered for the policy's `audit_retention` counted from
//! the later of its origin and apply times, and an operation whose origin time is older than
//! that is refused (`OpExpired`): a redelivery is either remembered or refused, never applied
//! twice. At most `max_received` ids of one origin are kept; past it, new ones are refused.

use serde_json::json;
use sessync_proto::federation::PeerOpKind;
use sessync_proto::{EndReason, OpId, SessionId, SiteName, Timestamp, UserId};

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
            expires_at: f.expires_at,
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

/// Applies a peer's operation: refused if its nonce was seen, if it is older than this site
/// remembers operations, or if its origin has too many remembered; a no-op if its id was
/// applied; else it ends what it acts on as of its origin time (see the module's header).
pub(super) fn peer_op(tx: &mut Tx<'_>, r: &PeerOp) -> Outcome {
    let base = json!({ "origin": r.origin, "op_id": r.op_id, "op": r.kind });
    if tx.store.ledger().nonce_seen(&r.origin, &r.nonce) {
        return rejected(tx, r, base, "replayed_nonce", Outcome::NonceReplayed);
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
    let retention = tx.store.policy().audit_retention;
    let origin_time = r.origin_time.unwrap_or(tx.at);
    if origin_time.plus(retention) < tx.at {
        let out = Outcome::OpExpired {
            origin_time,
            retention,
        };
        return rejected(tx, r, base, "op_expired", out);
    }
    if let Some(limit) = r.max_received {
        if tx.store.ledger().received_count(&r.origin) >= limit as usize {
            let out = Outcome::ReceivedFull { limit };
            return rejected(tx, r, base, "received_full", out);
        }
    }
    tx.expire_user(&r.user_id);
    let to_end = acted_on(tx.store, r, origin_time);
    let reason = match r.kind {
        PeerOpKind::Verify => EndReason::Superseded,
        PeerOpKind::Invalidate => EndReason::Invalidated,
    };
    for id in &to_end {
        tx.end(id, reason, tx.at);
    }
    let ended = to_end.len() as u32;
    tx.push(Mutation::Put(Record::Received(ReceivedOp {
        origin: r.origin.clone(),
        op_id: r.op_id.clone(),
        at: tx.at,
        ended,
        origin_time: r.origin_time,
    })));
    // Entries written before operations carried their origin time replay as they were.
    let detail = match r.origin_time {
        Some(t) => json!({ "duplicate": false, "ended": ended, "origin_time": t }),
        None => json!({ "duplicate": false, "ended": ended }),
    };
    tx.audit(
        "fanout_received",
        Some(&r.user_id),
        r.session_id.as_ref(),
        with(base, detail),
    );
    Outcome::PeerApplied {
        applied: true,
        ended,
    }
}

/// The live sessions a peer's operation ends here, as of its origin time: those created before
/// `origin_time + max_clock_skew`; for an invalidate naming a session, that one only; for a
/// verify, not one that a later verify here chose.
fn acted_on(store: &SessionStore, r: &PeerOp, origin_time: Timestamp) -> Vec<SessionId> {
    let cutoff = origin_time.plus(store.policy().max_clock_skew);
    let theirs = (origin_time, r.origin.as_str());
    let here = r.here.as_ref().map_or("", SiteName::as_str);
    store
        .live_sessions(&r.user_id)
        .filter(|s| s.created_at < cutoff)
        .filter(|s| match r.kind {
            // The verified session lives at the origin; ours yield unless chosen later.
            PeerOpKind::Verify => s.verified_at.is_none_or(|v| (v, here) < theirs),
            PeerOpKind::Invalidate => r.session_id.as_ref().is_none_or(|id| &s.id == id),
        })
        .map(|s| s.id.clone())
        .collect()
}

/// Audits a refused peer operation (`fanout_rejected` with `why`) and answers `out`.
fn rejected(
    tx: &mut Tx<'_>,
    r: &PeerOp,
    base: serde_json::Value,
    why: &str,
    out: Outcome,
) -> Outcome {
    tx.audit(
        "fanout_rejected",
        Some(&r.user_id),
        r.session_id.as_ref(),
        with(base, json!({ "reason": why })),
    );
    out
}

/// Drops the outbox entries whose `expires_at` has passed, at most `max`, each with a
/// `fanout_expired` event: the peer would refuse them as older than it remembers.
pub(super) fn expire_outbox(tx: &mut Tx<'_>, max: usize) {
    for (site, op_id) in tx.store.ledger().expired_outbox(tx.at, max) {
        let Some(e) = tx.store.ledger().outbox_entry(&site, &op_id).cloned() else {
            continue;
        };
        tx.push(Mutation::Delete(RecordKey::Outbox {
            site: site.clone(),
            op_id: op_id.clone(),
        }));
        tx.audit(
            "fanout_expired",
            Some(&e.user_id),
            e.session_id.as_ref(),
            json!({ "site": site, "op_id": op_id, "op": e.kind, "queued_at": e.queued_at }),
        );
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

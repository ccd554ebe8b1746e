//! Fan-outs between sites: each one the origin queued is applied exactly once at its target
//! once the faults healed, none is left in an outbox, every acknowledged verify or invalidate
//! with targets was queued, and no forged or replayed peer request was accepted.

use std::collections::{BTreeMap, BTreeSet};

use super::{Anomaly, AnomalyKind};
use crate::history::{Call, Final, History, Outcome, Ret};

/// (target, origin, op_id) -> times applied (not as a duplicate).
type Applied<'h> = BTreeMap<(&'h str, &'h str, &'h str), u32>;

pub(super) fn check(h: &History) -> Vec<Anomaly> {
    let mut found = Vec::new();
    let mut applied: Applied<'_> = BTreeMap::new();
    for f in &h.finals {
        if let Final::FanoutReceived {
            site,
            origin,
            op_id,
            duplicate: false,
        } = f
        {
            *applied.entry((site, origin, op_id)).or_default() += 1;
        }
    }
    for ((site, origin, op_id), n) in &applied {
        if *n > 1 {
            found.push(Anomaly::new(
                AnomalyKind::DoubleApply,
                format!("{site} applied {origin}'s operation {op_id} {n} times"),
                vec![],
            ));
        }
    }
    let queued = queued(h, &applied, &mut found);
    found.extend(forged_applied(h, &applied));
    found.extend(acknowledged_not_queued(h, &queued));
    found
}

/// Each origin's queued fan-outs by target; those never applied, outboxes left non-empty and
/// forged or replayed requests answered 2xx go to `found`.
fn queued<'h>(
    h: &'h History,
    applied: &Applied<'h>,
    found: &mut Vec<Anomaly>,
) -> BTreeMap<(&'h str, &'h str), BTreeSet<&'h str>> {
    let mut queued: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
    for f in &h.finals {
        match f {
            Final::FanoutQueued {
                origin,
                target,
                op_id,
            } => {
                queued.entry((origin, target)).or_default().insert(op_id);
                if !applied.contains_key(&(target.as_str(), origin.as_str(), op_id.as_str())) {
                    found.push(Anomaly::new(
                        AnomalyKind::FanoutLost,
                        format!("{origin} queued operation {op_id} for {target}; {target} never applied it"),
                        vec![],
                    ));
                }
            }
            Final::Outbox {
                origin,
                target,
                pending,
            } if *pending > 0 => found.push(Anomaly::new(
                AnomalyKind::FanoutLost,
                format!("{origin} still holds {pending} fan-out(s) for {target} after the faults healed"),
                vec![],
            )),
            // A forged request must be refused; a replayed one may be acknowledged as a
            // repeat (it is the origin's own), but must change nothing.
            Final::Forged {
                site,
                op_id,
                replay,
                status,
                applied,
            } if (200..300).contains(status) && (!*replay || *applied != Some(false)) => {
                found.push(Anomaly::new(
                    AnomalyKind::ForgedApplied,
                    format!(
                        "{site} answered {status} (applied: {applied:?}) to a {} peer request (operation {op_id})",
                        if *replay { "replayed" } else { "forged" }
                    ),
                    vec![],
                ));
            }
            _ => {}
        }
    }
    queued
}

/// A forged request's operation applied anywhere.
fn forged_applied(h: &History, applied: &Applied<'_>) -> Vec<Anomaly> {
    let mut found = Vec::new();
    let forged: BTreeSet<&str> = h
        .finals
        .iter()
        .filter_map(|f| match f {
            Final::Forged {
                op_id,
                replay: false,
                ..
            } => Some(op_id.as_str()),
            _ => None,
        })
        .collect();
    for (site, origin, op_id) in applied.keys() {
        if forged.contains(op_id) {
            found.push(Anomaly::new(
                AnomalyKind::ForgedApplied,
                format!("{site} applied the forged operation {op_id} (claimed from {origin})"),
                vec![],
            ));
        }
    }
    found
}

/// Every acknowledged fan-out to a target is in the origin's outbox record.
fn acknowledged_not_queued(
    h: &History,
    queued: &BTreeMap<(&str, &str), BTreeSet<&str>>,
) -> Vec<Anomaly> {
    let mut found = Vec::new();
    let mut acked: BTreeMap<(&str, &str), Vec<u64>> = BTreeMap::new();
    for o in &h.ops {
        let (Call::Verify { targets, .. } | Call::Invalidate { targets, .. }) = &o.call else {
            continue;
        };
        let Outcome::Ok {
            ret: Ret::Verified { fanout, .. } | Ret::Invalidated { fanout, .. },
        } = &o.outcome
        else {
            continue;
        };
        for t in targets {
            if matches!(
                fanout.get(t).map(String::as_str),
                Some("delivered" | "queued")
            ) {
                acked
                    .entry((o.site.as_str(), t.as_str()))
                    .or_default()
                    .push(o.id);
            }
        }
    }
    for ((origin, target), ops) in acked {
        let n = queued.get(&(origin, target)).map_or(0, BTreeSet::len);
        if n < ops.len() {
            found.push(Anomaly::new(
                AnomalyKind::FanoutLost,
                format!(
                    "{origin} acknowledged {} fan-out(s) to {target} but its audit shows {n} queued",
                    ops.len()
                ),
                ops,
            ));
        }
    }
    found
}

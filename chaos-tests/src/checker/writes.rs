//! Acknowledged writes against the final state, the session limit in every linearizable list,
//! and idempotency keys.

use std::collections::BTreeMap;

use sessync_proto::SessionId;

use super::known::Known;
use super::{Anomaly, AnomalyKind};
use crate::history::{Call, Final, History, Outcome, Ret, Seen};

pub(super) fn check(h: &History) -> Vec<Anomaly> {
    let mut found = lost(h);
    found.extend(over_limit(h));
    found.extend(idempotency(h));
    found
}

/// Every acknowledged create is still known, and every session an acknowledged write ended
/// is ended, in the final linearizable read.
fn lost(h: &History) -> Vec<Anomaly> {
    let known = Known::of(h);
    let last: BTreeMap<&SessionId, Seen> = h
        .finals
        .iter()
        .filter_map(|f| match f {
            Final::Session { session, state, .. } => Some((session, *state)),
            _ => None,
        })
        .collect();
    let mut found = Vec::new();
    for (s, c) in &known.created {
        if last.get(s) == Some(&Seen::Absent) {
            found.push(Anomaly::new(
                AnomalyKind::LostWrite,
                format!(
                    "session {s}: its create was acknowledged, the final read does not know it"
                ),
                vec![c.op],
            ));
        }
    }
    for (s, ends) in &known.endings {
        let Some(&state) = last.get(s) else { continue };
        if state != Seen::Ended {
            found.push(Anomaly::new(
                AnomalyKind::LostWrite,
                format!(
                    "session {s}: an acknowledged write ended it, the final read says {state:?}"
                ),
                ends.iter().map(|e| e.op).collect(),
            ));
        }
    }
    found
}

/// No linearizable list shows more active sessions than the site's limit.
fn over_limit(h: &History) -> Vec<Anomaly> {
    let Some(run) = &h.run else { return vec![] };
    let limit = |site: &str| {
        run.sites
            .get(site)
            .map_or(0, |p| p.max_concurrent_sessions as usize)
    };
    let mut found = Vec::new();
    for o in &h.ops {
        if let (
            Call::List { user },
            Outcome::Ok {
                ret: Ret::Listed { active },
            },
        ) = (&o.call, &o.outcome)
        {
            let max = limit(&o.site);
            if max > 0 && active.len() > max {
                found.push(Anomaly::new(
                    AnomalyKind::OverLimit,
                    format!(
                        "user {user} at {}: {} active sessions, limit {max}",
                        o.site,
                        active.len()
                    ),
                    vec![o.id],
                ));
            }
        }
    }
    for f in &h.finals {
        if let Final::Active { site, user, active } = f {
            let max = limit(site);
            if max > 0 && active.len() > max {
                found.push(Anomaly::new(
                    AnomalyKind::OverLimit,
                    format!(
                        "user {user} at {site}: {} active sessions after the run, limit {max}",
                        active.len()
                    ),
                    vec![],
                ));
            }
        }
    }
    found
}

/// Creates that sent the same idempotency key to one site got the same session.
fn idempotency(h: &History) -> Vec<Anomaly> {
    let mut by_key: BTreeMap<(&str, &str), (u64, &SessionId)> = BTreeMap::new();
    let mut found = Vec::new();
    for o in &h.ops {
        if let (
            Call::Create {
                idempotency_key, ..
            },
            Outcome::Ok {
                ret: Ret::Created { session, .. },
            },
        ) = (&o.call, &o.outcome)
        {
            match by_key.get(&(o.site.as_str(), idempotency_key.as_str())) {
                Some((first, s)) if *s != session => found.push(Anomaly::new(
                    AnomalyKind::IdempotencyBroken,
                    format!("idempotency key {idempotency_key}: session {s}, then {session}"),
                    vec![*first, o.id],
                )),
                Some(_) => {}
                None => {
                    by_key.insert((o.site.as_str(), idempotency_key.as_str()), (o.id, session));
                }
            }
        }
    }
    found
}

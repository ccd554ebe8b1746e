//! Each session as a register whose state only moves forward: absent, blocked, active, ended
//! (blocked may skip to ended; nothing goes back). For such a register, a history is
//! linearizable exactly when no read sees an older state than one that was already read, or
//! written, before the read began: every operation can then be placed at a point inside its
//! own interval. So for each read, the highest state known by its invocation (from reads that
//! completed, and acknowledged writes that completed, before it) must not exceed what it saw.
//! Operations of unknown outcome constrain nothing: they may or may not have happened.
//!
//! Linearizable reads are validates, gets and touches (and the state a create, a verify or a
//! list answered). Local validates without touch are judged per node, within one life of its
//! data (a wiped node starts again from nothing), and against the final state once every node
//! caught up; with touch, a follower may relay them to the leader, so they are not the node's.

use std::collections::BTreeMap;

use sessync_proto::SessionId;

use super::known::Known;
use super::{Anomaly, AnomalyKind};
use crate::history::{Call, Final, History, Outcome, Phase, Ret, Seen, WIPE};

/// One thing known about a session's state.
#[derive(Clone, Copy, Debug)]
struct Fact {
    op: u64,
    invoke_ms: u64,
    complete_ms: u64,
    state: Seen,
    /// A read (the state at some point of its interval) or a write's lower bound (the state
    /// is at least this from its completion on).
    read: bool,
}

/// Facts by session.
type Linear = BTreeMap<SessionId, Vec<Fact>>;
/// Local reads by session, site, node and the node's life (its data from one wipe to the
/// next).
type Local = BTreeMap<(SessionId, String, u64, usize), Vec<Fact>>;

pub(super) fn check(h: &History) -> Vec<Anomaly> {
    let (linear, local) = facts(h);
    let mut found = Vec::new();
    for (s, facts) in &linear {
        found.extend(monotonic(s, facts, false));
    }
    for ((s, site, node, _), facts) in &local {
        let mut facts = facts.clone();
        // The node's last word on the session, once caught up, follows every earlier read.
        for f in &h.finals {
            if let Final::Local {
                site: fs,
                node: fnode,
                session,
                state,
            } = f
            {
                if fs == site && fnode == node && session == s {
                    facts.push(Fact {
                        op: 0,
                        invoke_ms: u64::MAX - 1,
                        complete_ms: u64::MAX,
                        state: *state,
                        read: true,
                    });
                }
            }
        }
        found.extend(monotonic(s, &facts, true));
    }
    found.extend(final_local(h));
    found
}

/// What the history says of each session: linearizable facts by session, local reads by
/// session and node life.
fn facts(h: &History) -> (Linear, Local) {
    let known = Known::of(h);
    let mut linear = Linear::new();
    let mut local = Local::new();
    for o in &h.ops {
        let ret = match &o.outcome {
            Outcome::Ok { ret } => ret,
            // A refusal that reports the session's state is a linearizable read of it.
            Outcome::Fail {
                seen: Some(state), ..
            } => {
                if let Call::Touch { session } | Call::Verify { session, .. } = &o.call {
                    linear.entry(session.clone()).or_default().push(Fact {
                        op: o.id,
                        invoke_ms: o.invoke_ms,
                        complete_ms: o.complete_ms,
                        state: *state,
                        read: true,
                    });
                }
                continue;
            }
            _ => continue,
        };
        let fact = |state| Fact {
            op: o.id,
            invoke_ms: o.invoke_ms,
            complete_ms: o.complete_ms,
            state,
            read: true,
        };
        match (&o.call, ret) {
            // A local validate whose touch is due is relayed to the leader, which answers
            // from its own state: it tells nothing of the node it was sent to.
            (
                Call::Validate {
                    linearizable: false,
                    touch: true,
                    ..
                },
                _,
            ) => {}
            (
                Call::Validate {
                    session,
                    linearizable: false,
                    touch: false,
                },
                Ret::Seen { state },
            ) => {
                let Some(life) = life_of(h, &o.site, o.node, (o.invoke_ms, o.complete_ms)) else {
                    continue;
                };
                local
                    .entry((session.clone(), o.site.clone(), o.node, life))
                    .or_default()
                    .push(fact(*state));
            }
            (
                Call::Validate { session, .. } | Call::Get { session } | Call::Touch { session },
                Ret::Seen { state },
            ) => linear
                .entry(session.clone())
                .or_default()
                .push(fact(*state)),
            (_, Ret::Created { session, state }) => {
                linear
                    .entry(session.clone())
                    .or_default()
                    .push(fact(*state));
            }
            (_, Ret::Verified { kept, .. }) => {
                linear
                    .entry(kept.clone())
                    .or_default()
                    .push(fact(Seen::Active));
            }
            (_, Ret::Listed { active }) => {
                for s in active {
                    linear
                        .entry(s.clone())
                        .or_default()
                        .push(fact(Seen::Active));
                }
            }
            _ => {}
        }
    }
    for (s, ends) in &known.endings {
        for e in ends {
            linear.entry(s.clone()).or_default().push(Fact {
                op: e.op,
                invoke_ms: e.complete_ms,
                complete_ms: e.complete_ms,
                state: Seen::Ended,
                read: false,
            });
        }
    }
    (linear, local)
}

/// The anomalies among one register's facts: a read that saw less than the most known before
/// it began.
fn monotonic(s: &SessionId, facts: &[Fact], local: bool) -> Vec<Anomaly> {
    let mut by_completion: Vec<&Fact> = facts.iter().collect();
    by_completion.sort_by_key(|f| f.complete_ms);
    // best[i]: the highest state among the first i+1 facts by completion, and whose it is.
    let mut best: Vec<(Seen, &Fact)> = Vec::with_capacity(by_completion.len());
    for f in &by_completion {
        let prev = best.last().map(|b| b.0);
        if prev.is_none_or(|p| f.state > p) {
            best.push((f.state, f));
        } else {
            let last = *best.last().expect("not empty");
            best.push(last);
        }
    }
    let mut found = Vec::new();
    for r in facts.iter().filter(|f| f.read) {
        let before = by_completion.partition_point(|f| f.complete_ms < r.invoke_ms);
        if before == 0 {
            continue;
        }
        let (known, by) = best[before - 1];
        if r.state >= known {
            continue;
        }
        let kind = if local {
            AnomalyKind::StaleLocalRead
        } else if known == Seen::Ended {
            AnomalyKind::Resurrection
        } else if r.state == Seen::Absent {
            AnomalyKind::LostWrite
        } else {
            AnomalyKind::StaleRead
        };
        let what = if by.read {
            "was seen"
        } else {
            "was acknowledged"
        };
        let mut ops = vec![by.op, r.op];
        ops.retain(|&o| o != 0);
        found.push(Anomaly::new(
            kind,
            format!(
                "session {s}: {:?} {what} (op {}) before op {} began, which saw {:?}{}",
                known,
                by.op,
                r.op,
                r.state,
                if local { " on the same node" } else { "" }
            ),
            ops,
        ));
    }
    found
}

/// Once every node caught up, a local read must agree with the linearizable final state.
fn final_local(h: &History) -> Vec<Anomaly> {
    let truth: BTreeMap<(&str, &SessionId), Seen> = h
        .finals
        .iter()
        .filter_map(|f| match f {
            Final::Session {
                site,
                session,
                state,
            } => Some(((site.as_str(), session), *state)),
            _ => None,
        })
        .collect();
    let mut found = Vec::new();
    for f in &h.finals {
        if let Final::Local {
            site,
            node,
            session,
            state,
        } = f
        {
            if let Some(&t) = truth.get(&(site.as_str(), session)) {
                if t != *state {
                    let kind = if t == Seen::Ended && matches!(state, Seen::Active | Seen::Blocked)
                    {
                        AnomalyKind::Resurrection
                    } else {
                        AnomalyKind::StaleLocalRead
                    };
                    found.push(Anomaly::new(
                        kind,
                        format!(
                            "session {session}: node {node} of {site}, caught up, says {state:?} locally; the cluster says {t:?}"
                        ),
                        vec![],
                    ));
                }
            }
        }
    }
    found
}

/// Which life of the node's data an operation over `span` saw: the number of wipes done
/// before it began; None when a wipe's window meets its interval (it may have seen either).
fn life_of(h: &History, site: &str, node: u64, span: (u64, u64)) -> Option<usize> {
    let mut life = 0;
    let mut started: Option<u64> = None;
    for f in h
        .faults
        .iter()
        .filter(|f| f.fault == WIPE && f.site == site && f.nodes.contains(&node))
    {
        match f.phase {
            Phase::Start => started = Some(f.at_ms),
            Phase::Stop => {
                let from = started.take().unwrap_or(0);
                if span.1 >= from && span.0 <= f.at_ms {
                    return None;
                }
                if f.at_ms < span.0 {
                    life += 1;
                }
            }
            Phase::Recovered => {}
        }
    }
    // A wipe begun and not finished: the node is down from its start on.
    match started {
        Some(from) if span.1 >= from => None,
        _ => Some(life),
    }
}

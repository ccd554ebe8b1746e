//! Hand-made histories for the checker's tests: a builder that gives operations ids in order,
//! and a clean history (creates, ends, a verify, local reads, a healed partition, fan-outs
//! received once) that each test spoils with one anomaly.

use std::collections::BTreeMap;

use sessync_proto::{SessionId, UserId};

use crate::checker::{check, AnomalyKind};
use crate::history::{
    Call, FaultEvent, Final, History, Op, Outcome, Phase, Ret, RunInfo, Seen, SitePolicy, Via, WIPE,
};

pub(super) const A: &str = "site-a";
pub(super) const B: &str = "site-b";

pub(super) fn sid(n: u8) -> SessionId {
    SessionId::parse_field(&format!("s_{:032x}", n), "s").unwrap()
}

pub(super) fn user(n: &str) -> UserId {
    UserId::parse_field(n, "user_id").unwrap()
}

/// A history under construction: ops get ids in order.
pub(super) struct H(pub(super) History);

impl H {
    pub(super) fn new() -> H {
        let mut sites = BTreeMap::new();
        for s in [A, B] {
            sites.insert(
                s.to_owned(),
                SitePolicy {
                    max_concurrent_sessions: 2,
                    on_limit: "deny".into(),
                },
            );
        }
        H(History {
            run: Some(RunInfo {
                seed: 1,
                scenario: "hand-made".into(),
                sites,
                recovery_bound_ms: 10_000,
            }),
            ..History::default()
        })
    }

    pub(super) fn op(&mut self, node: u64, span: (u64, u64), call: Call, outcome: Outcome) -> u64 {
        let id = self.0.ops.len() as u64 + 1;
        self.0.ops.push(Op {
            id,
            client: 0,
            site: A.into(),
            node,
            via: Via::Client,
            invoke_ms: span.0,
            complete_ms: span.1,
            call,
            outcome,
        });
        id
    }

    pub(super) fn ok(&mut self, span: (u64, u64), call: Call, ret: Ret) -> u64 {
        self.op(1, span, call, Outcome::Ok { ret })
    }

    pub(super) fn create(&mut self, span: (u64, u64), u: &str, s: u8) -> u64 {
        self.ok(
            span,
            Call::Create {
                user: user(u),
                idempotency_key: format!("k{s}"),
            },
            Ret::Created {
                session: sid(s),
                state: Seen::Active,
            },
        )
    }

    pub(super) fn validate(&mut self, span: (u64, u64), s: u8, seen: Seen) -> u64 {
        self.ok(
            span,
            Call::Validate {
                session: sid(s),
                linearizable: true,
                touch: true,
            },
            Ret::Seen { state: seen },
        )
    }

    pub(super) fn local(&mut self, node: u64, span: (u64, u64), s: u8, seen: Seen) -> u64 {
        self.op(
            node,
            span,
            Call::Validate {
                session: sid(s),
                linearizable: false,
                touch: false,
            },
            Outcome::Ok {
                ret: Ret::Seen { state: seen },
            },
        )
    }

    pub(super) fn end(&mut self, span: (u64, u64), s: u8) -> u64 {
        self.ok(span, Call::End { session: sid(s) }, Ret::Ended)
    }

    /// Node `node`'s data wiped: killed at `window.0`, running again (empty) at `window.1`.
    pub(super) fn wipe(&mut self, node: u64, window: (u64, u64)) {
        for (at_ms, phase) in [(window.0, Phase::Start), (window.1, Phase::Stop)] {
            self.0.faults.push(FaultEvent {
                at_ms,
                site: A.into(),
                fault: WIPE.into(),
                phase,
                nodes: vec![node],
                detail: String::new(),
                recovery_ms: None,
            });
        }
    }

    pub(super) fn finally(&mut self, f: Final) {
        self.0.finals.push(f);
    }

    pub(super) fn final_state(&mut self, s: u8, state: Seen) {
        self.finally(Final::Session {
            site: A.into(),
            session: sid(s),
            state,
        });
    }

    pub(super) fn kinds(&self) -> Vec<AnomalyKind> {
        check(&self.0).into_iter().map(|a| a.kind).collect()
    }
}

/// A history that breaks nothing: creates, overlapping reads, an end, a verify, a fan-out
/// applied once (and once more as a recognised duplicate), equal digests, a quick recovery.
pub(super) fn clean() -> H {
    let mut h = H::new();
    h.create((0, 10), "u", 1);
    h.create((5, 20), "u", 2);
    // A read overlapping the create may see it absent.
    h.validate((6, 12), 2, Seen::Absent);
    h.validate((21, 30), 2, Seen::Active);
    h.end((31, 40), 2);
    // Overlapping the end: either answer is fine.
    h.validate((35, 45), 2, Seen::Active);
    h.validate((41, 50), 2, Seen::Ended);
    // An end of unknown outcome constrains nothing.
    h.op(
        2,
        (51, 60),
        Call::End { session: sid(1) },
        Outcome::Unknown {
            why: "timed out".into(),
        },
    );
    h.validate((61, 70), 1, Seen::Active);
    h.local(3, (61, 62), 1, Seen::Active);
    h.create((71, 80), "v", 3);
    h.create((71, 80), "v", 4);
    h.ok(
        (81, 90),
        Call::Verify {
            user: user("v"),
            session: sid(4),
            targets: vec![B.into()],
        },
        Ret::Verified {
            kept: sid(4),
            ended: 1,
            fanout: [(B.to_owned(), "queued".to_owned())].into(),
        },
    );
    h.ok(
        (91, 95),
        Call::List { user: user("v") },
        Ret::Listed {
            active: vec![sid(4)],
        },
    );
    h.final_state(1, Seen::Active);
    h.final_state(2, Seen::Ended);
    h.final_state(3, Seen::Ended);
    h.final_state(4, Seen::Active);
    for node in [1, 2, 3] {
        h.finally(Final::Local {
            site: A.into(),
            node,
            session: sid(3),
            state: Seen::Ended,
        });
        h.finally(Final::Digest {
            site: A.into(),
            node,
            applied: 42,
            digest: "abc".into(),
        });
    }
    h.finally(Final::FanoutQueued {
        origin: A.into(),
        target: B.into(),
        op_id: "op1".into(),
    });
    for duplicate in [false, true] {
        h.finally(Final::FanoutReceived {
            site: B.into(),
            origin: A.into(),
            op_id: "op1".into(),
            duplicate,
        });
    }
    h.finally(Final::Forged {
        site: B.into(),
        op_id: "forged1".into(),
        replay: false,
        status: 401,
        applied: None,
    });
    // The origin's own request again: acknowledged as a repeat, nothing changed.
    h.finally(Final::Forged {
        site: B.into(),
        op_id: "op1".into(),
        replay: true,
        status: 200,
        applied: Some(false),
    });
    h.0.faults.push(FaultEvent {
        at_ms: 100,
        site: A.into(),
        fault: "partition".into(),
        phase: Phase::Recovered,
        nodes: vec![1],
        detail: "{1} | {2,3}".into(),
        recovery_ms: Some(1_500),
    });
    h
}

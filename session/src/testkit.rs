//! Test fixtures for the state machine tests: a policy, ids, times, and a store that records
//! every mutation it was given.

use std::time::Duration;

use sessync_proto::{
    Device, EndReason, OnLimit, Policy, SessionId, SessionState, Timestamp, UserId,
};

use super::*;

pub(crate) const T0: u64 = 1_800_000_000_000;

pub(crate) fn policy(limit: u32, on_limit: OnLimit) -> Policy {
    Policy {
        idle_timeout: Duration::from_secs(600),
        max_lifetime: Duration::from_secs(3600),
        max_concurrent_sessions: limit,
        on_limit,
        touch_interval: Duration::from_secs(2),
        retention: Duration::from_secs(86_400),
        ..Policy::default()
    }
}

pub(crate) fn user(u: &str) -> UserId {
    UserId::parse_field(u, "user_id").unwrap()
}

pub(crate) fn sid(n: u8) -> SessionId {
    SessionId::from_random([n; 16])
}

pub(crate) fn at(ms_after_t0: u64) -> Timestamp {
    Timestamp(T0 + ms_after_t0)
}

pub(crate) struct Sm {
    pub(crate) store: SessionStore,
    pub(crate) muts: Vec<Mutation>,
    /// The log index of the last command run.
    pub(crate) index: u64,
}

impl Sm {
    pub(crate) fn new(p: Policy) -> Self {
        let mut sm = Sm {
            store: SessionStore::new(),
            muts: Vec::new(),
            index: 0,
        };
        sm.run(Command::SetPolicy(SetPolicy {
            at: at(0),
            policy: p,
            by: None,
        }));
        sm
    }

    pub(crate) fn run(&mut self, cmd: Command) -> Outcome {
        self.index += 1;
        let (o, m) = apply(&mut self.store, &cmd, self.index);
        self.muts.extend(m);
        o
    }

    pub(crate) fn create(&mut self, n: u8, u: &str, t: u64) -> Outcome {
        self.run(Command::Create(Create {
            at: at(t),
            session_id: sid(n),
            token_hash: TokenHash::of(&format!("token-{n}")),
            user_id: user(u),
            device: Device::default(),
            origin: None,
            idempotency_key: None,
            by: Some("app".to_owned()),
        }))
    }

    pub(crate) fn state(&self, n: u8) -> (SessionState, Option<EndReason>) {
        let s = self.store.get(&sid(n)).expect("session exists");
        (s.state, s.end_reason)
    }

    pub(crate) fn active(&self, u: &str) -> usize {
        self.store
            .user_sessions(&user(u))
            .filter(|s| s.state == SessionState::Active)
            .count()
    }

    pub(crate) fn audit_kinds(&self) -> Vec<String> {
        self.muts
            .iter()
            .filter_map(|m| match m {
                Mutation::Audit(n) => Some(n.kind.clone()),
                _ => None,
            })
            .collect()
    }
}

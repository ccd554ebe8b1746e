//! The workload of a chaos run: seeded concurrent clients doing creates (with idempotency keys,
//! some replayed), validates (linearizable and local, with and without touch), touches, gets,
//! ends, verifies and invalidates (with and without federation targets) and lists, for a few
//! users per site so the session limit bites. Each client sends through the Rust client library
//! or as hand-made HTTP, to a node it picks, and writes every operation, with the node it hit
//! and how it ended, to the history.
//!
//! Everything is bounded: each client makes at most `max_ops` operations, each with a deadline,
//! and stops when told. The tokens the clients learn stay in memory, at most
//! [`KEPT_PER_USER`] per user; the history names sessions by id only. How each operation
//! reaches a node is `send`; how its answer reads, `answers`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sessync_client::ClientError;
use sessync_proto::api::{
    Consistency, CreateSessionRequest, InvalidateRequest, ValidateRequest, ValidateResponse,
    VerifyRequest,
};
use sessync_proto::{SessionId, SessionState, SessionView, UserId};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

mod answers;
mod send;

pub(crate) use answers::{seen_state, seen_validate};

use crate::history::{Call, Entry, HistoryWriter, Op, Outcome, Ret, Seen, Via};
use answers::{failed, fanout, refused_touch, site_names, with_seen};
use send::Step;

/// Sessions (with tokens) a client remembers per user; older ones are forgotten.
pub const KEPT_PER_USER: usize = 24;
/// Deadline of one operation, retries included.
pub const OP_TIMEOUT: Duration = Duration::from_secs(4);
/// Deadline of one attempt on one node, so the client library can fail over.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// One site the workload drives.
#[derive(Clone, Debug)]
pub struct SiteTarget {
    /// The site's name.
    pub name: String,
    /// Node ids and client URLs.
    pub nodes: Vec<(u64, String)>,
    /// An API key with the app role.
    pub app_key: String,
    /// The users whose sessions the workload creates at this site.
    pub users: Vec<UserId>,
    /// Peer sites a verify or invalidate may fan out to.
    pub peers: Vec<String>,
}

/// A session a client may use: its id and secret token.
#[derive(Clone)]
struct Held {
    id: SessionId,
    token: String,
}

/// The clients' shared state.
pub struct Workload {
    sites: Vec<SiteTarget>,
    seed: u64,
    history: HistoryWriter,
    started: Instant,
    next_id: AtomicU64,
    held: Mutex<BTreeMap<(usize, UserId), Vec<Held>>>,
    /// Every session a create acknowledged, by site index (bounded by the clients' op counts).
    created: Mutex<BTreeMap<SessionId, (usize, String)>>,
    raw: reqwest::Client,
    sabotage: Option<Sabotage>,
}

/// A deliberate fault in the workload itself, to watch the checker catch what it causes on a
/// real run (a checker that cannot fail proves nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sabotage {
    /// Linearizable validates are sent as local reads to the chosen node (and recorded as
    /// linearizable): under partitions some see stale state, which the checker must report.
    LocalReads,
}

impl Workload {
    /// A workload over `sites`, timing from `started` (the run's start).
    pub fn new(
        sites: Vec<SiteTarget>,
        seed: u64,
        history: HistoryWriter,
        started: Instant,
        sabotage: Option<Sabotage>,
    ) -> anyhow::Result<Arc<Workload>> {
        let raw = reqwest::Client::builder()
            .timeout(OP_TIMEOUT)
            .connect_timeout(ATTEMPT_TIMEOUT)
            .build()?;
        Ok(Arc::new(Workload {
            sites,
            seed,
            history,
            started,
            next_id: AtomicU64::new(1),
            held: Mutex::new(BTreeMap::new()),
            created: Mutex::new(BTreeMap::new()),
            raw,
            sabotage,
        }))
    }

    /// Milliseconds since the run began.
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Runs `clients` clients until `stop` or each made `max_ops` operations.
    pub async fn run(self: &Arc<Self>, clients: u32, max_ops: u64, stop: CancellationToken) {
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..clients {
            let (w, stop) = (self.clone(), stop.clone());
            tasks.spawn(async move { w.client(c, max_ops, stop).await });
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Every session a create acknowledged, by site index, with its token (for the final
    /// reads).
    pub fn created_sessions(&self) -> Vec<(usize, SessionId, String)> {
        self.created
            .lock()
            .iter()
            .map(|(id, (site, token))| (*site, id.clone(), token.clone()))
            .collect()
    }

    async fn client(&self, c: u32, max_ops: u64, stop: CancellationToken) {
        let mut rng =
            StdRng::seed_from_u64(self.seed.wrapping_mul(1_000_003).wrapping_add(c.into()));
        let mut last_create: Option<(usize, UserId, String)> = None;
        for _ in 0..max_ops {
            if stop.is_cancelled() {
                return;
            }
            let site = rng.gen_range(0..self.sites.len());
            let node = rng.gen_range(0..self.sites[site].nodes.len());
            let via = if rng.gen_bool(0.3) {
                Via::Raw
            } else {
                Via::Client
            };
            let step = Step { c, site, node, via };
            let pick = rng.gen_range(0..100);
            let user =
                self.sites[site].users[rng.gen_range(0..self.sites[site].users.len())].clone();
            let held = self.pick_held(site, &user, &mut rng);
            let fan = !self.sites[site].peers.is_empty() && rng.gen_bool(0.5);
            let targets = if fan {
                self.sites[site].peers.clone()
            } else {
                vec![]
            };
            match (pick, held) {
                (0..=19, _) | (_, None) => {
                    // Now and then a client sends a create again with the key it used last.
                    let (user, key) = match &last_create {
                        Some((s, u, k)) if *s == site && rng.gen_bool(0.15) => {
                            (u.clone(), k.clone())
                        }
                        _ => (user, format!("k-{}-{c}-{}", self.seed, rng.gen::<u64>())),
                    };
                    last_create = Some((site, user.clone(), key.clone()));
                    self.create(step, user, key).await;
                }
                (20..=44, Some(h)) => self.validate(step, h, true, rng.gen_bool(0.5)).await,
                (45..=59, Some(h)) => self.validate(step, h, false, rng.gen_bool(0.3)).await,
                (60..=64, Some(h)) => self.touch(step, h).await,
                (65..=69, Some(h)) => self.get(step, h).await,
                (70..=77, Some(h)) => self.end(step, h).await,
                (78..=83, Some(h)) => self.verify(step, user, h, targets).await,
                (84..=88, Some(h)) => {
                    let one = rng.gen_bool(0.5).then_some(h.id);
                    self.invalidate(step, user, one, targets).await;
                }
                (_, Some(_)) => self.list(step, user).await,
            }
        }
    }

    /// One of the user's sessions: mostly among the newest (likely still live, so touches
    /// and verifies bite), sometimes any (likely ended, so resurrections would show).
    fn pick_held(&self, site: usize, user: &UserId, rng: &mut StdRng) -> Option<Held> {
        let held = self.held.lock();
        let v = held.get(&(site, user.clone()))?;
        if v.is_empty() {
            return None;
        }
        let from = if rng.gen_bool(0.7) {
            v.len().saturating_sub(3)
        } else {
            0
        };
        Some(v[rng.gen_range(from..v.len())].clone())
    }

    /// Keeps `h` for the clients. A replayed create's answer carries a fresh token (every token
    /// it gave keeps working) or, for an ended session, none: then the one known stays.
    fn hold(&self, site: usize, user: &UserId, h: Held) {
        if h.token.is_empty() {
            return;
        }
        self.created
            .lock()
            .insert(h.id.clone(), (site, h.token.clone()));
        let mut held = self.held.lock();
        let v = held.entry((site, user.clone())).or_default();
        if v.iter().any(|x| x.id == h.id) {
            return;
        }
        v.push(h);
        if v.len() > KEPT_PER_USER {
            v.remove(0);
        }
    }

    fn record(&self, step: Step, invoke_ms: u64, call: Call, outcome: Outcome) {
        let op = Op {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            client: step.c,
            site: self.sites[step.site].name.clone(),
            node: self.sites[step.site].nodes[step.node].0,
            via: step.via,
            invoke_ms,
            complete_ms: self.now_ms(),
            call,
            outcome,
        };
        if let Err(e) = self.history.write(&Entry::Op(op)) {
            eprintln!("cannot write the history: {e:#}");
        }
    }

    async fn create(&self, step: Step, user: UserId, key: String) {
        let t0 = self.now_ms();
        let req = CreateSessionRequest {
            user_id: user.clone(),
            device: Default::default(),
            origin: Some("chaos".into()),
            idempotency_key: Some(key.clone()),
        };
        let res = match step.via {
            Via::Client => {
                self.library(step.site, step.node)
                    .create_session(&req)
                    .await
            }
            Via::Raw => {
                self.raw_call(step, reqwest::Method::POST, "/v1/sessions", Some(&req))
                    .await
            }
        };
        let call = Call::Create {
            user: user.clone(),
            idempotency_key: key,
        };
        let outcome = match res {
            Ok(r) => {
                self.hold(
                    step.site,
                    &user,
                    Held {
                        id: r.session.session_id.clone(),
                        token: r.token,
                    },
                );
                Outcome::Ok {
                    ret: Ret::Created {
                        session: r.session.session_id.clone(),
                        state: seen_state(&r.session),
                    },
                }
            }
            Err(e) => failed(&e),
        };
        self.record(step, t0, call, outcome);
    }

    async fn validate(&self, step: Step, h: Held, linearizable: bool, touch: bool) {
        let t0 = self.now_ms();
        let sent_local = !linearizable || self.sabotage == Some(Sabotage::LocalReads);
        let req = ValidateRequest {
            token: h.token,
            touch,
            consistency: if !sent_local {
                Consistency::Linearizable
            } else {
                Consistency::Local
            },
        };
        // A local read is this node's answer: never sent elsewhere.
        let res: Result<ValidateResponse, ClientError> = match (step.via, sent_local) {
            (Via::Client, false) => self.library(step.site, step.node).validate(&req).await,
            (Via::Client, true) => {
                self.library(step.site, step.node)
                    .pinned(0)
                    .validate(&req)
                    .await
            }
            (Via::Raw, _) => {
                self.raw_call(
                    step,
                    reqwest::Method::POST,
                    "/v1/sessions/validate",
                    Some(&req),
                )
                .await
            }
        };
        let outcome = match res {
            Ok(v) => Outcome::Ok {
                ret: Ret::Seen {
                    state: seen_validate(&v),
                },
            },
            Err(e) => failed(&e),
        };
        let call = Call::Validate {
            session: h.id,
            linearizable,
            touch,
        };
        self.record(step, t0, call, outcome);
    }

    async fn touch(&self, step: Step, h: Held) {
        let t0 = self.now_ms();
        let outcome = match self.library(step.site, step.node).touch(&h.id).await {
            Ok(t) => Outcome::Ok {
                ret: Ret::Seen {
                    state: seen_state(&t.session),
                },
            },
            Err(e) => refused_touch(&e),
        };
        self.record(step, t0, Call::Touch { session: h.id }, outcome);
    }

    async fn get(&self, step: Step, h: Held) {
        let t0 = self.now_ms();
        let path = format!("/v1/sessions/{}", h.id);
        let res: Result<SessionView, ClientError> = match step.via {
            Via::Client => self.library(step.site, step.node).get_session(&h.id).await,
            Via::Raw => self
                .raw_call::<(), serde_json::Value>(step, reqwest::Method::GET, &path, None)
                .await
                .and_then(|v| {
                    serde_json::from_value(v["session"].clone())
                        .map_err(|e| ClientError::Decode(e.to_string()))
                }),
        };
        let outcome = match res {
            Ok(s) => Outcome::Ok {
                ret: Ret::Seen {
                    state: seen_state(&s),
                },
            },
            // A linearizable read that does not know the session is an answer.
            Err(ClientError::NotFound { .. }) => Outcome::Ok {
                ret: Ret::Seen {
                    state: Seen::Absent,
                },
            },
            Err(e) => failed(&e),
        };
        self.record(step, t0, Call::Get { session: h.id }, outcome);
    }

    async fn end(&self, step: Step, h: Held) {
        let t0 = self.now_ms();
        let outcome = match self.library(step.site, step.node).end_session(&h.id).await {
            Ok(_) => Outcome::Ok { ret: Ret::Ended },
            Err(e) => failed(&e),
        };
        self.record(step, t0, Call::End { session: h.id }, outcome);
    }

    async fn verify(&self, step: Step, user: UserId, h: Held, targets: Vec<String>) {
        let t0 = self.now_ms();
        let req = VerifyRequest {
            session_id: Some(h.id.clone()),
            targets: site_names(&targets),
        };
        let outcome = match self.library(step.site, step.node).verify(&user, &req).await {
            Ok(v) => Outcome::Ok {
                ret: Ret::Verified {
                    kept: v.verified,
                    ended: v.ended,
                    fanout: fanout(&v.fanout),
                },
            },
            // The held session is the user's (its create was acknowledged): refused as not
            // live, it has ended.
            Err(e @ ClientError::NotFound { .. }) => with_seen(failed(&e), Seen::Ended),
            Err(e) => failed(&e),
        };
        let call = Call::Verify {
            user,
            session: h.id,
            targets,
        };
        self.record(step, t0, call, outcome);
    }

    async fn invalidate(
        &self,
        step: Step,
        user: UserId,
        session: Option<SessionId>,
        targets: Vec<String>,
    ) {
        let t0 = self.now_ms();
        let req = InvalidateRequest {
            session_id: session.clone(),
            targets: site_names(&targets),
        };
        let outcome = match self
            .library(step.site, step.node)
            .invalidate(&user, &req)
            .await
        {
            Ok(r) => Outcome::Ok {
                ret: Ret::Invalidated {
                    ended: r.ended,
                    fanout: fanout(&r.fanout),
                },
            },
            Err(e) => failed(&e),
        };
        let call = Call::Invalidate {
            user,
            session,
            targets,
        };
        self.record(step, t0, call, outcome);
    }

    async fn list(&self, step: Step, user: UserId) {
        let t0 = self.now_ms();
        let outcome = match self
            .library(step.site, step.node)
            .list_sessions(&user, false)
            .await
        {
            Ok(v) => Outcome::Ok {
                ret: Ret::Listed {
                    active: v
                        .into_iter()
                        .filter(|s| s.state == SessionState::Active)
                        .map(|s| s.session_id)
                        .collect(),
                },
            },
            Err(e) => failed(&e),
        };
        self.record(step, t0, Call::List { user }, outcome);
    }
}

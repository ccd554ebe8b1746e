//! The leader's delivery of queued operations to peer sites.
//!
//! One task per configured peer runs on every node and works only while its node leads. It
//! sends the peer's oldest queued entries, up to [`MAX_IN_FLIGHT`] at once while the peer
//! answers, and a single probe at a time while no node of it answers, so a peer that is down
//! costs one request per backoff interval, not one per queued entry. An entry the peer refuses
//! (a 4xx) backs off on its own and never holds up the others. Backoff doubles from
//! `federation.retry_initial` up to `retry_max`, with jitter. An entry leaves the outbox only
//! when the peer acknowledged it and a `FanoutAcked` entry committed; a new leader starts from
//! the replicated outbox, so at worst a peer sees an operation twice and ignores the repeat.
//!
//! Each request carries the entry's commit time as its `origin_time`, so the peer acts as of
//! it however late it arrives, and names both sites in its signature. An answer counts only
//! with the peer's answer signature (under the send secret, over this request's nonce, the
//! status and the body): an unsigned or forged one is a failed try, whoever sent it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::header::CONTENT_TYPE;
use serde_json::json;
use sessync_config::PeerConfig;
use sessync_proto::federation::{PeerOpRequest, PeerOpResponse, ANSWER_SIGNATURE_HEADER};
use sessync_proto::{ErrorBody, OpId, Timestamp};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{sign, Federation, PeerHealth};
use crate::audit::AuditReporter;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::session::{Command, FanoutAcked, OutboxEntry};

/// Most deliveries to one peer under way at once.
pub(crate) const MAX_IN_FLIGHT: usize = 16;
/// How often an idle task looks at leadership and the outbox without being woken.
const RESCAN: Duration = Duration::from_millis(500);

/// What delivery needs of the node; cheap to clone.
#[derive(Clone)]
pub(crate) struct Delivery {
    pub(crate) rt: Runtime,
    pub(crate) fed: Federation,
    pub(crate) metrics: Metrics,
    pub(crate) audit: AuditReporter,
}

/// Exponential backoff with "equal jitter": each wait is between half and all of the
/// doubled delay, so peers retried by many sites do not all hear from them at once.
#[derive(Clone, Copy)]
struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let exp = self.failures.min(20);
        self.failures += 1;
        let d = self.initial.saturating_mul(1 << exp).min(self.max);
        d.mul_f64(0.5 + rand::random::<f64>() * 0.5)
    }
}

/// The outcome of one attempt at one entry.
struct Attempt {
    entry: OutboxEntry,
    result: Result<(), Failure>,
}

/// Why an attempt failed.
enum Failure {
    /// No node of the peer took it (no connection, no answer in time, or 5xx/503 from all):
    /// the whole peer backs off and is probed with one request at a time.
    Unreachable(String),
    /// The peer answered and refused this entry (a 4xx): only this entry backs off, so one
    /// refused entry never holds up the others.
    Refused(String),
}

/// The delivery state of one peer while this node leads.
struct Courier {
    ctx: Delivery,
    peer: Arc<PeerConfig>,
    inflight: JoinSet<Attempt>,
    /// Entries being sent, or acknowledged and waiting for their `FanoutAcked` to commit.
    sending: HashSet<OpId>,
    acked: Vec<OpId>,
    attempts: HashMap<OpId, u32>,
    /// Entries the peer refused, and when each may be tried again.
    entry_next: HashMap<OpId, Instant>,
    backoff: Backoff,
    health: PeerHealth,
    /// The peer node that answered last: tried first next time.
    url_at: Arc<AtomicUsize>,
}

/// Delivers `peer`'s queue whenever this node leads, until `stop`.
pub(crate) async fn run(ctx: Delivery, peer: PeerConfig, stop: CancellationToken) {
    let mut kicks = ctx.fed.kicks();
    let mut courier: Option<Courier> = None;
    while !stop.is_cancelled() {
        if !ctx.rt.is_leader() {
            if let Some(mut c) = courier.take() {
                c.inflight.abort_all();
                ctx.fed.set_health(&c.peer.name, PeerHealth::default());
            }
            stop.run_until_cancelled(tokio::time::sleep(RESCAN)).await;
            continue;
        }
        let c = courier.get_or_insert_with(|| Courier::new(ctx.clone(), peer.clone()));
        c.commit_acks().await;
        c.start_sends();
        let now = Instant::now();
        let wake = c
            .health
            .next_attempt
            .filter(|t| *t > now)
            .unwrap_or(now + RESCAN);
        tokio::select! {
            Some(done) = c.inflight.join_next(), if !c.inflight.is_empty() => {
                if let Ok(attempt) = done {
                    c.finish(attempt);
                }
                // Whatever else has finished meanwhile, so its acks share one entry.
                while let Some(done) = c.inflight.try_join_next() {
                    if let Ok(attempt) = done {
                        c.finish(attempt);
                    }
                }
            }
            changed = kicks.changed() => {
                if changed.is_err() {
                    tokio::time::sleep(RESCAN).await;
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = stop.cancelled() => {}
        }
    }
}

impl Courier {
    fn new(ctx: Delivery, peer: PeerConfig) -> Self {
        let cfg = ctx.fed.config();
        let backoff = Backoff {
            initial: cfg.retry_initial,
            max: cfg.retry_max,
            failures: 0,
        };
        Courier {
            ctx,
            peer: Arc::new(peer),
            inflight: JoinSet::new(),
            sending: HashSet::new(),
            acked: Vec::new(),
            attempts: HashMap::new(),
            entry_next: HashMap::new(),
            backoff,
            health: PeerHealth::default(),
            url_at: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Sends the oldest entries not under way, if the backoff allows.
    fn start_sends(&mut self) {
        let now = Instant::now();
        if self.health.next_attempt.is_some_and(|t| t > now) {
            return;
        }
        let cap = if self.health.reachable == Some(false) {
            1
        } else {
            MAX_IN_FLIGHT
        };
        let room = cap.saturating_sub(self.inflight.len());
        if room == 0 {
            return;
        }
        let site = &self.peer.name;
        let batch: Vec<OutboxEntry> = self.ctx.rt.state().read(|s| {
            s.ledger()
                .queue(site)
                .filter(|e| !self.sending.contains(&e.op_id))
                .filter(|e| self.entry_next.get(&e.op_id).is_none_or(|t| *t <= now))
                .take(room)
                .cloned()
                .collect()
        });
        for e in batch {
            self.sending.insert(e.op_id.clone());
            *self.attempts.entry(e.op_id.clone()).or_default() += 1;
            let (ctx, peer, url_at) = (self.ctx.clone(), self.peer.clone(), self.url_at.clone());
            self.inflight.spawn(send(ctx, peer, url_at, e));
        }
    }

    /// Records how an attempt went.
    fn finish(&mut self, a: Attempt) {
        let site = self.peer.name.as_str();
        let op_id = a.entry.op_id.clone();
        match a.result {
            Ok(()) => {
                let delay = Timestamp::now().since(a.entry.queued_at);
                self.ctx.metrics.delivery_attempt(site, Some(delay));
                self.acked.push(op_id);
                self.backoff.failures = 0;
                self.health.reachable = Some(true);
                self.health.consecutive_failures = 0;
                self.health.next_attempt = None;
                self.health.last_delivered_at = Some(Timestamp::now());
            }
            Err(failure) => {
                self.ctx.metrics.delivery_attempt(site, None);
                self.sending.remove(&op_id);
                let now = Instant::now();
                let attempt = self.attempts.get(&op_id).copied().unwrap_or(1);
                let (error, retry_at) = match failure {
                    Failure::Unreachable(error) => {
                        // Failures of attempts started together count as one step of backoff.
                        if self.health.next_attempt.is_none_or(|t| t <= now) {
                            self.health.next_attempt = Some(now + self.backoff.next());
                        }
                        self.health.reachable = Some(false);
                        (error, self.health.next_attempt.unwrap_or(now))
                    }
                    Failure::Refused(error) => {
                        let mut own = Backoff {
                            failures: attempt.saturating_sub(1),
                            ..self.backoff
                        };
                        let at = now + own.next();
                        self.entry_next.insert(op_id.clone(), at);
                        self.health.reachable = Some(true);
                        (error, at)
                    }
                };
                let retry_in = retry_at.saturating_duration_since(now).as_millis() as u64;
                self.health.consecutive_failures += 1;
                self.health.last_error = Some(error.clone());
                tracing::warn!(peer = site, op_id = %op_id, %error, retry_in_ms = retry_in, "fan-out delivery failed");
                self.ctx.audit.report(
                    "fanout_retry",
                    Some(a.entry.user_id.clone()),
                    json!({
                        "site": site,
                        "op_id": op_id,
                        "op": a.entry.kind,
                        "attempt": attempt,
                        "error": error,
                        "retry_in_ms": retry_in,
                    }),
                );
            }
        }
        self.ctx
            .fed
            .set_health(&self.peer.name, self.health.clone());
    }

    /// Commits the acknowledgements gathered so far in one `FanoutAcked` entry. If that fails
    /// (leadership moved), the entries are sent again later and the peer ignores the repeat.
    async fn commit_acks(&mut self) {
        if self.acked.is_empty() {
            return;
        }
        let acks: Vec<_> = std::mem::take(&mut self.acked)
            .into_iter()
            .map(|op| (self.peer.name.clone(), op))
            .collect();
        let cmd = Command::FanoutAcked(FanoutAcked {
            at: self.ctx.rt.cluster_now(),
            acks: acks.clone(),
        });
        if let Err(e) = self.ctx.rt.propose(cmd).await {
            tracing::warn!(peer = %self.peer.name, error = %e, "could not commit fan-out acknowledgements");
        }
        for (_, op) in &acks {
            self.sending.remove(op);
        }
        let site = &self.peer.name;
        let queued: HashSet<OpId> = self
            .ctx
            .rt
            .state()
            .read(|s| s.ledger().queue(site).map(|e| e.op_id.clone()).collect());
        self.attempts.retain(|op, _| queued.contains(op));
        self.entry_next.retain(|op, _| queued.contains(op));
    }
}

/// One attempt: the entry, signed, to the peer's nodes in turn (starting with the one that
/// answered last) until one acknowledges it or gives an answer that is the site's own.
async fn send(
    ctx: Delivery,
    peer: Arc<PeerConfig>,
    url_at: Arc<AtomicUsize>,
    e: OutboxEntry,
) -> Attempt {
    let fed = &ctx.fed;
    let body = serde_json::to_vec(&PeerOpRequest {
        op_id: e.op_id.clone(),
        origin_site: fed.site().clone(),
        user_id: e.user_id.clone(),
        session_id: e.session_id.clone(),
        origin_time: e.queued_at,
    })
    .expect("a peer request serialises");
    let path = e.kind.path();
    let n = peer.urls.len();
    let start = url_at.load(Ordering::Relaxed);
    let mut refused = None;
    let mut error = String::from("the peer has no URLs");
    for i in 0..n {
        let idx = (start + i) % n;
        let url = &peer.urls[idx];
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let ts = Timestamp::now().millis();
        let mut rb = ctx
            .rt
            .http()
            .post(format!("{url}{path}"))
            .timeout(fed.config().send_timeout)
            .header(CONTENT_TYPE, "application/json")
            .body(body.clone());
        for (k, v) in sign::headers(
            fed.site(),
            &peer.name,
            peer.send_secret.expose(),
            path,
            &body,
            ts,
            &nonce,
        ) {
            rb = rb.header(k, v);
        }
        let answer = match rb.send().await {
            Ok(resp) => signed_answer(resp, peer.send_secret.expose(), &nonce).await,
            Err(err) => Err(format!("{url}: {}", describe(&err))),
        };
        match answer {
            Ok((status, text)) if (200..300).contains(&status) => {
                // Only the peer's answer for this very operation acknowledges it: a 2xx from
                // anything else (another operation's answer) is a failed try.
                match acknowledges(&text, &e.op_id) {
                    Ok(()) => {
                        url_at.store(idx, Ordering::Relaxed);
                        return Attempt {
                            entry: e,
                            result: Ok(()),
                        };
                    }
                    Err(why) => error = format!("{url} answered {status} but {why}"),
                }
            }
            Ok((status, text)) => {
                let message = serde_json::from_slice::<ErrorBody>(&text)
                    .map(|b| b.error.message)
                    .unwrap_or_else(|_| String::from_utf8_lossy(&text).chars().take(200).collect());
                error = format!("{url} answered {status}: {message}");
                // A 400 is about the request itself: every node would say the same. Anything
                // else (no leader there, a node with a bad clock, a proxy's 502) may be that
                // node's alone: try the next.
                if status == 400 {
                    return Attempt {
                        entry: e,
                        result: Err(Failure::Refused(error)),
                    };
                }
                if (400..500).contains(&status) {
                    refused = Some(error.clone());
                }
            }
            Err(why) => error = why,
        }
    }
    // Some node refused it (and none took it): the site answers; else nobody did.
    let failure = match refused {
        Some(r) => Failure::Refused(r),
        None => Failure::Unreachable(error),
    };
    Attempt {
        entry: e,
        result: Err(failure),
    }
}

/// Most bytes of a peer's answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The status and body of `resp`, if it carries the peer's answer signature for the request
/// that carried `nonce`; if not, why it is not believed (a 401 that our request was not
/// signed right is the peer's too, and signed: a refusal before the signature checked out
/// is not, and counts as no answer).
async fn signed_answer(
    mut resp: reqwest::Response,
    secret: &[u8],
    nonce: &str,
) -> Result<(u16, Vec<u8>), String> {
    let url = resp.url().to_string();
    let status = resp.status().as_u16();
    let signature = resp
        .headers()
        .get(ANSWER_SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("{url}: its answer could not be read: {}", describe(&e)))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ANSWER_BYTES {
            return Err(format!(
                "{url} answered {status} with more than {MAX_ANSWER_BYTES} bytes"
            ));
        }
    }
    match signature {
        Some(sig) if sign::answer_authentic(secret, nonce, status, &body, &sig) => {
            Ok((status, body))
        }
        Some(_) => Err(format!(
            "{url} answered {status} with a wrong {ANSWER_SIGNATURE_HEADER}: not believed"
        )),
        None => {
            let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            Err(format!(
                "{url} answered {status} without {ANSWER_SIGNATURE_HEADER} (not believed): {text}"
            ))
        }
    }
}

/// Whether `body` is the peer's acknowledgement of `op_id`; if not, why not.
fn acknowledges(body: &[u8], op_id: &OpId) -> Result<(), String> {
    match serde_json::from_slice::<PeerOpResponse>(body) {
        Ok(a) if a.op_id == *op_id => Ok(()),
        Ok(a) => Err(format!("acknowledged another operation ({})", a.op_id)),
        Err(e) => Err(format!("not with an acknowledgement: {e}")),
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "no answer before send_timeout".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        e.to_string()
    }
}

//! Prometheus metrics (prometheus-client): request counts and latency per route, Raft state,
//! sessions by state, touches, forwarding, auth failures, and federation (outbox depth,
//! delivery latency, attempts, rejections per peer). Gauges are read at scrape time.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use sessync_proto::SessionState;

use crate::api::App;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    pub peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerResultLabels {
    pub peer: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerReasonLabels {
    pub peer: String,
    pub reason: String,
}

fn peer(site: &str) -> PeerLabels {
    PeerLabels {
        peer: site.to_owned(),
    }
}

fn delivery_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 16))
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// Every metric of a node; cheap to clone (each metric is shared).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub auth_failures: Counter,
    pub raft_rpc_refused: Counter,
    pub forwarded: Counter,
    pub touch_batches: Counter,
    pub touches_replicated: Counter,
    pub audit_dropped: Counter,
    sessions: Family<StateLabels, Gauge>,
    is_leader: Gauge,
    term: Gauge,
    last_log_index: Gauge,
    last_applied: Gauge,
    outbox_depth: Family<PeerLabels, Gauge>,
    outbox_full: Family<PeerLabels, Counter>,
    delivery: Family<PeerLabels, Histogram, fn() -> Histogram>,
    attempts: Family<PeerResultLabels, Counter>,
    rejections: Family<PeerReasonLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("sessync");
        let requests = Family::<RequestLabels, Counter>::default();
        r.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        r.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            latency.clone(),
        );
        let auth_failures = Counter::default();
        r.register(
            "auth_failures",
            "Requests refused for a missing, wrong or under-privileged API key",
            auth_failures.clone(),
        );
        let raft_rpc_refused = Counter::default();
        r.register(
            "raft_rpc_refused",
            "Raft RPCs refused for lack of a valid cluster proof",
            raft_rpc_refused.clone(),
        );
        let forwarded = Counter::default();
        r.register(
            "forwarded_requests",
            "Writes this node forwarded to the leader",
            forwarded.clone(),
        );
        let touch_batches = Counter::default();
        r.register(
            "touch_batches",
            "Touch entries proposed (each carries many touches)",
            touch_batches.clone(),
        );
        let touches_replicated = Counter::default();
        r.register(
            "touches_replicated",
            "Session touches replicated through Raft",
            touches_replicated.clone(),
        );
        let audit_dropped = Counter::default();
        r.register(
            "audit_dropped",
            "Audit events dropped because the queue was full",
            audit_dropped.clone(),
        );
        let sessions = Family::<StateLabels, Gauge>::default();
        r.register(
            "sessions",
            "Sessions held in this replica, by state",
            sessions.clone(),
        );
        let is_leader = Gauge::default();
        r.register(
            "raft_is_leader",
            "1 if this node is the Raft leader",
            is_leader.clone(),
        );
        let term = Gauge::default();
        r.register("raft_term", "Current Raft term", term.clone());
        let last_log_index = Gauge::default();
        r.register(
            "raft_last_log_index",
            "Index of the last log entry",
            last_log_index.clone(),
        );
        let last_applied = Gauge::default();
        r.register(
            "raft_last_applied",
            "Index of the last applied log entry",
            last_applied.clone(),
        );
        let outbox_depth = Family::<PeerLabels, Gauge>::default();
        r.register(
            "federation_outbox_depth",
            "Operations committed here and not yet acknowledged, by peer site",
            outbox_depth.clone(),
        );
        let outbox_full = Family::<PeerLabels, Counter>::default();
        r.register(
            "federation_outbox_full",
            "Verify or invalidate calls refused because a peer's outbox was full",
            outbox_full.clone(),
        );
        let delivery = Family::<PeerLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            delivery_histogram as fn() -> Histogram,
        );
        r.register(
            "federation_delivery_seconds",
            "Time from commit of an operation to the peer's acknowledgement",
            delivery.clone(),
        );
        let attempts = Family::<PeerResultLabels, Counter>::default();
        r.register(
            "federation_attempts",
            "Delivery attempts to peer sites, by result (delivered or failed)",
            attempts.clone(),
        );
        let rejections = Family::<PeerReasonLabels, Counter>::default();
        r.register(
            "federation_rejections",
            "Requests from peer sites refused, by claimed peer and reason",
            rejections.clone(),
        );
        Self {
            registry: Arc::new(r),
            outbox_depth,
            outbox_full,
            delivery,
            attempts,
            rejections,
            requests,
            latency,
            auth_failures,
            raft_rpc_refused,
            forwarded,
            touch_batches,
            touches_replicated,
            audit_dropped,
            sessions,
            is_leader,
            term,
            last_log_index,
            last_applied,
        }
    }

    /// Counts one answered request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts a verify or invalidate refused because `site`'s outbox was full.
    pub fn outbox_full(&self, site: &str) {
        self.outbox_full.get_or_create(&peer(site)).inc();
    }

    /// Records one delivery attempt to `site`; `delay` (commit to ack) when it was acknowledged.
    pub fn delivery_attempt(&self, site: &str, delay: Option<Duration>) {
        let result = if delay.is_some() {
            "delivered"
        } else {
            "failed"
        };
        self.attempts
            .get_or_create(&PeerResultLabels {
                peer: site.to_owned(),
                result: result.to_owned(),
            })
            .inc();
        if let Some(d) = delay {
            self.delivery
                .get_or_create(&peer(site))
                .observe(d.as_secs_f64());
        }
    }

    /// Counts a peer request refused for `reason`.
    pub fn peer_rejected(&self, site: &str, reason: &str) {
        self.rejections
            .get_or_create(&PeerReasonLabels {
                peer: site.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// The text exposition, with gauges read now.
    pub fn render(&self, app: &App) -> String {
        let m = app.raft().metrics().borrow().clone();
        self.is_leader
            .set(i64::from(m.current_leader == Some(app.node_id())));
        self.term.set(m.current_term as i64);
        self.last_log_index
            .set(m.last_log_index.unwrap_or(0) as i64);
        self.last_applied
            .set(m.last_applied.map(|l| l.index).unwrap_or(0) as i64);
        let (active, blocked, ended) = app.state().read(|s| {
            s.all()
                .fold((0i64, 0i64, 0i64), |(a, b, e), x| match x.state {
                    SessionState::Active => (a + 1, b, e),
                    SessionState::Blocked => (a, b + 1, e),
                    SessionState::Ended => (a, b, e + 1),
                })
        });
        for (state, n) in [("active", active), ("blocked", blocked), ("ended", ended)] {
            self.sessions
                .get_or_create(&StateLabels {
                    state: state.to_owned(),
                })
                .set(n);
        }
        for site in app.federation().peer_names() {
            let depth = app.state().read(|s| s.ledger().queued(site));
            self.outbox_depth
                .get_or_create(&peer(site.as_str()))
                .set(depth as i64);
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.push_str("# encoding failed\n");
        }
        out
    }
}

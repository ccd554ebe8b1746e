//! Prometheus metrics (prometheus-client): request counts and latency per route, Raft state,
//! sessions by state, touches, forwarding, auth failures, and federation (outbox depth,
//! delivery latency, attempts, rejections per peer), and the build (`sessync_build_info`).
//! Gauges are read at scrape time.

mod peers;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};
use sessync_proto::{SessionState, SiteName};

use crate::runtime::{Readiness, Runtime};
use crate::store::AuditStats;
use peers::{peer, PeerMetrics, PeerReasonLabels, PeerResultLabels};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) method: String,
    pub(crate) route: String,
    pub(crate) status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabels {
    pub(crate) method: String,
    pub(crate) route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabels {
    pub(crate) reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StateLabels {
    pub(crate) state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    build: &'static str,
}

/// `sessync_build_info{version, build} 1`: which release and build this node runs.
fn build_info() -> Family<BuildLabels, Gauge> {
    let info = Family::<BuildLabels, Gauge>::default();
    info.get_or_create(&BuildLabels {
        version: crate::build_info::VERSION,
        build: crate::build_info::BUILD,
    })
    .set(1);
    info
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// Every metric of a node; cheap to clone (each metric is shared).
#[derive(Clone)]
pub(crate) struct Metrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    auth_failures: Family<ReasonLabels, Counter>,
    raft_rpc_refused: Family<ReasonLabels, Counter>,
    pub(crate) forwarded: Counter,
    pub(crate) touch_batches: Counter,
    pub(crate) touches_replicated: Counter,
    pub(crate) audit_dropped: Counter,
    pub(crate) events: EventMetrics,
    sessions: Family<StateLabels, Gauge>,
    policy_file_differs: Gauge,
    audit: AuditMetrics,
    is_leader: Gauge,
    term: Gauge,
    last_log_index: Gauge,
    last_applied: Gauge,
    health: HealthMetrics,
    peers: PeerMetrics,
}

/// The node's readiness and its clock against the voters' median.
#[derive(Clone)]
struct HealthMetrics {
    ready: Gauge,
    clock_offset: Gauge<f64, AtomicU64>,
    clock_skewed: Gauge,
}

/// The event streams (`/v1/events`).
#[derive(Clone)]
pub(crate) struct EventMetrics {
    pub(crate) catch_ups: Counter,
    pub(crate) open: Gauge,
    refused: Family<ReasonLabels, Counter>,
}

impl EventMetrics {
    fn register(r: &mut Registry) -> Self {
        Self {
            catch_ups: reg(
                r,
                "event_catch_ups",
                "Event subscribers that resumed or fell behind and caught up from the store",
                Counter::default(),
            ),
            open: reg(
                r,
                "event_streams_open",
                "Event streams (/v1/events) open on this node",
                Gauge::default(),
            ),
            refused: reg(
                r,
                "event_streams_refused",
                "Event streams refused for a full bound: `node` (max_event_streams) or `per_key` \
                 (max_event_streams_per_key)",
                Family::default(),
            ),
        }
    }

    /// Counts a stream refused for a full bound (`node` or `per_key`).
    pub(crate) fn refused(&self, bound: &'static str) {
        self.refused
            .get_or_create(&ReasonLabels { reason: bound })
            .inc();
    }
}

impl HealthMetrics {
    fn register(r: &mut Registry) -> Self {
        Self {
            ready: reg(
                r,
                "ready",
                "1 if this node is ready (what /readyz says)",
                Gauge::default(),
            ),
            clock_offset: reg(
                r,
                "clock_offset_seconds",
                "This node's clock minus the median of the voters' clocks, as last measured",
                Gauge::default(),
            ),
            clock_skewed: reg(
                r,
                "clock_skewed",
                "1 if this node's clock is off the voters' median by more than max_clock_skew",
                Gauge::default(),
            ),
        }
    }

    fn read(&self, r: &Readiness) {
        self.ready.set(i64::from(r.ready));
        self.clock_skewed.set(i64::from(r.clock.skewed));
        if let Some(ms) = r.clock.deviation_ms {
            self.clock_offset.set(ms as f64 / 1000.0);
        }
    }
}

/// The replicated audit log in this replica: size and what was trimmed.
#[derive(Clone)]
struct AuditMetrics {
    events: Gauge,
    bytes: Gauge,
    trimmed: Family<ReasonLabels, Counter>,
}

impl AuditMetrics {
    fn register(r: &mut Registry) -> Self {
        Self {
            events: reg(
                r,
                "audit_events",
                "Audit events kept in this replica",
                Gauge::default(),
            ),
            bytes: reg(
                r,
                "audit_bytes",
                "Bytes of audit events kept in this replica",
                Gauge::default(),
            ),
            trimmed: reg(
                r,
                "audit_trimmed",
                "Audit events trimmed in this replica since it started, by reason (age or cap)",
                Family::default(),
            ),
        }
    }

    /// Reads the store's figures into the metrics.
    fn read(&self, stats: &AuditStats) {
        self.events.set(stats.events.load(Ordering::Relaxed) as i64);
        self.bytes.set(stats.bytes.load(Ordering::Relaxed) as i64);
        for (reason, n) in [("age", &stats.trimmed_age), ("cap", &stats.trimmed_cap)] {
            let c = self.trimmed.get_or_create(&ReasonLabels { reason });
            let now = n.load(Ordering::Relaxed);
            c.inc_by(now.saturating_sub(c.get()));
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers `metric` under `name` and hands it back.
pub(super) fn reg<M: Metric + Clone>(r: &mut Registry, name: &str, help: &str, metric: M) -> M {
    r.register(name, help, metric.clone());
    metric
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("sessync");
        registry.register(
            "build_info",
            "1, labelled with this node's release (version) and source commit (build)",
            build_info(),
        );
        let r = &mut registry;
        let latency = || Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        Self {
            requests: reg(
                r,
                "http_requests",
                "HTTP requests answered, by route and status",
                Family::default(),
            ),
            latency: reg(
                r,
                "http_request_duration_seconds",
                "Time to answer an HTTP request",
                latency(),
            ),
            auth_failures: reg(
                r,
                "auth_failures",
                "Requests refused for a missing, wrong or under-privileged API key, by reason",
                Family::default(),
            ),
            raft_rpc_refused: reg(
                r,
                "raft_rpc_refused",
                "Node-to-node requests refused for lack of a valid cluster proof, by reason",
                Family::default(),
            ),
            forwarded: reg(
                r,
                "forwarded_requests",
                "Writes this node forwarded to the leader",
                Counter::default(),
            ),
            touch_batches: reg(
                r,
                "touch_batches",
                "Touch entries proposed (each carries many touches)",
                Counter::default(),
            ),
            touches_replicated: reg(
                r,
                "touches_replicated",
                "Session touches replicated through Raft",
                Counter::default(),
            ),
            audit_dropped: reg(
                r,
                "audit_dropped",
                "Audit events dropped because the queue was full",
                Counter::default(),
            ),
            events: EventMetrics::register(r),
            sessions: reg(
                r,
                "sessions",
                "Sessions held in this replica, by state",
                Family::default(),
            ),
            policy_file_differs: reg(
                r,
                "policy_file_differs",
                "Keys of this node's [policy] that differ from the replicated policy (which applies)",
                Gauge::default(),
            ),
            audit: AuditMetrics::register(r),
            is_leader: reg(
                r,
                "raft_is_leader",
                "1 if this node is the Raft leader",
                Gauge::default(),
            ),
            term: reg(r, "raft_term", "Current Raft term", Gauge::default()),
            last_log_index: reg(
                r,
                "raft_last_log_index",
                "Index of the last log entry",
                Gauge::default(),
            ),
            last_applied: reg(
                r,
                "raft_last_applied",
                "Index of the last applied log entry",
                Gauge::default(),
            ),
            health: HealthMetrics::register(r),

            peers: PeerMetrics::register(r),
            // Last: every metric above is registered by now.
            registry: Arc::new(std::mem::take(r)),
        }
    }

    /// Counts one answered request.
    pub(crate) fn observe_request(&self, method: &str, route: &str, status: u16, took: Duration) {
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

    /// Counts a request refused for its API key, for `reason` (one of a fixed set).
    pub(crate) fn auth_failure(&self, reason: &'static str) {
        self.auth_failures
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Counts a node-to-node request refused for `reason` (one of a fixed set).
    pub(crate) fn rpc_refused(&self, reason: &'static str) {
        self.raft_rpc_refused
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Counts a verify or invalidate refused because `site`'s outbox was full.
    pub(crate) fn outbox_full(&self, site: &str) {
        self.peers.outbox_full.get_or_create(&peer(site)).inc();
    }

    /// Records one delivery attempt to `site`; `delay` (commit to ack) when it was acknowledged.
    pub(crate) fn delivery_attempt(&self, site: &str, delay: Option<Duration>) {
        let result = if delay.is_some() {
            "delivered"
        } else {
            "failed"
        };
        self.peers
            .attempts
            .get_or_create(&PeerResultLabels {
                peer: site.to_owned(),
                result: result.to_owned(),
            })
            .inc();
        if let Some(d) = delay {
            self.peers
                .delivery
                .get_or_create(&peer(site))
                .observe(d.as_secs_f64());
        }
    }

    /// Counts a peer request refused for `reason`.
    pub(crate) fn peer_rejected(&self, site: &str, reason: &str) {
        self.peers
            .rejections
            .get_or_create(&PeerReasonLabels {
                peer: site.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// The text exposition, with gauges read now; `peers` are the configured peer sites.
    pub(crate) fn render<'a>(
        &self,
        rt: &Runtime,
        peers: impl Iterator<Item = &'a SiteName>,
    ) -> String {
        let m = rt.raft().metrics().borrow().clone();
        self.is_leader
            .set(i64::from(m.current_leader == Some(rt.node_id())));
        self.term.set(m.current_term as i64);
        self.last_log_index
            .set(m.last_log_index.unwrap_or(0) as i64);
        self.last_applied
            .set(m.last_applied.map(|l| l.index).unwrap_or(0) as i64);
        let (active, blocked, ended) = rt.state().read(|s| {
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
        self.policy_file_differs
            .set(rt.policy_file_differs().len() as i64);
        self.audit.read(rt.state().audit_stats());
        self.health.read(&rt.readiness());
        for site in peers {
            let depth = rt.state().read(|s| s.ledger().queued(site));
            self.peers
                .outbox_depth
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

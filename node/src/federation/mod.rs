//! Federation between sites: a verify or invalidate with `targets` reaches every peer site.
//!
//! The path of one operation:
//! 1. The verify or invalidate handler splits the targets into configured peers and unknown
//!    sites ([`FanoutPlan`]) and proposes the local change with a [`crate::session::Fanout`]:
//!    the state machine commits the change and one outbox entry per target in the same entry.
//! 2. On the leader, [`deliver`] sends each peer its queued entries, signed ([`sign`]), to any
//!    of its nodes, retries with exponential backoff and jitter, and proposes `FanoutAcked` for
//!    what the peer acknowledged. The outbox is replicated, so a new leader carries on.
//! 3. At the peer, the receiving handler checks the signature, timestamp and nonce shape with
//!    [`sign::check`], then proposes a `PeerOp`; the peer's state machine refuses a nonce it has
//!    seen and applies an `op_id` once.
//!
//! [`status`] builds `GET /v1/federation/status` from the leader's view of each peer.

pub(crate) mod deliver;
mod plan;
pub(crate) mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sessync_config::{FederationConfig, PeerConfig};
use sessync_proto::{SiteName, Timestamp};
use tokio::sync::watch;

pub(crate) use plan::FanoutPlan;
/// The signed headers between sites, made and checked (`sessync-signing`, no RocksDB, fuzzed).
pub(crate) use sessync_signing::federation as sign;

/// The federation settings of a node and the leader's view of each peer; cheap to clone.
#[derive(Clone)]
pub(crate) struct Federation(Arc<Inner>);

struct Inner {
    site: SiteName,
    config: FederationConfig,
    /// Bumped when new entries are queued, so delivery starts at once.
    kick: watch::Sender<u64>,
    health: Mutex<BTreeMap<SiteName, PeerHealth>>,
}

/// What the delivering leader knows of one peer (not replicated: a new leader starts afresh).
#[derive(Clone, Debug, Default)]
pub(crate) struct PeerHealth {
    pub(crate) reachable: Option<bool>,
    pub(crate) last_delivered_at: Option<Timestamp>,
    pub(crate) last_error: Option<String>,
    pub(crate) consecutive_failures: u32,
    pub(crate) next_attempt: Option<Instant>,
}

impl Federation {
    pub(crate) fn new(site: SiteName, config: FederationConfig) -> Self {
        let (kick, _) = watch::channel(0);
        Federation(Arc::new(Inner {
            site,
            config,
            kick,
            health: Mutex::new(BTreeMap::new()),
        }))
    }

    /// This site's name.
    pub(crate) fn site(&self) -> &SiteName {
        &self.0.site
    }

    pub(crate) fn config(&self) -> &FederationConfig {
        &self.0.config
    }

    /// The configured peers' names.
    pub(crate) fn peer_names(&self) -> impl Iterator<Item = &SiteName> {
        self.0.config.peers.iter().map(|p| &p.name)
    }

    pub(crate) fn peer(&self, site: &SiteName) -> Option<&PeerConfig> {
        self.0.config.peer(site)
    }

    /// Splits requested targets into configured peers and unknown sites, each once, in order.
    pub(crate) fn plan(&self, targets: &[SiteName]) -> (Vec<SiteName>, Vec<SiteName>) {
        let mut seen = BTreeSet::new();
        let (mut known, mut unknown) = (Vec::new(), Vec::new());
        for t in targets.iter().filter(|t| seen.insert(*t)) {
            if self.peer(t).is_some() {
                known.push(t.clone());
            } else {
                unknown.push(t.clone());
            }
        }
        (known, unknown)
    }

    /// Tells the delivery tasks that new entries are queued.
    pub(crate) fn kick(&self) {
        self.0.kick.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn kicks(&self) -> watch::Receiver<u64> {
        self.0.kick.subscribe()
    }

    /// The leader's view of `site`.
    pub(crate) fn health(&self, site: &SiteName) -> PeerHealth {
        self.0.health.lock().get(site).cloned().unwrap_or_default()
    }

    pub(crate) fn set_health(&self, site: &SiteName, h: PeerHealth) {
        self.0.health.lock().insert(site.clone(), h);
    }

    /// How long a verify or invalidate waits for its fan-out to be acknowledged before it
    /// answers `queued`.
    pub(crate) fn answer_wait(&self, request_timeout: Duration) -> Duration {
        (request_timeout / 3).min(Duration::from_secs(1))
    }
}

//! The nemesis of a chaos run: faults injected into real node processes and the links between
//! them while the workload runs, each held for a while and then healed, after which it times
//! how long the site takes to acknowledge a write again. Every fault and heal goes to the
//! history. Faults pick their victims with the run's seeded random generator, so a seed
//! replays the same choices (the timing of real processes still varies).
//!
//! Kinds ([`FaultKind`]): crashes (kill -9 of a node, of the leader, of a majority), pauses
//! (SIGSTOP past the election timeout), partitions of the Raft links (the leader alone,
//! majority/minority halves, a ring, a bridge, a one-way cut), slow and lossy links, a wall
//! clock skewed within and beyond `max_clock_skew` (libfaketime), membership changes under load
//! (a voter removed, its disk wiped, and added back as a learner, caught up by snapshot, and
//! promoted; the leader too), and faults of a peer site (down, cut off, slow, answering
//! garbage, restarted) while fan-outs are queued and the origin's leader is killed.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use sessync_proto::api::CreateSessionRequest;
use sessync_proto::UserId;
use tokio::time::Instant;

mod links;
mod peer;
mod process;

use crate::cluster::TestCluster;
use crate::history::{Entry, FaultEvent, HistoryWriter, Phase};
use crate::net::SiteProxy;

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// kill -9 of one node, restarted on the same data.
    Kill,
    /// kill -9 of the leader, restarted on the same data.
    KillLeader,
    /// kill -9 of a majority, then all restarted.
    KillMajority,
    /// SIGSTOP of a node (the leader half the time) past the election timeout, then SIGCONT.
    Pause,
    /// The leader cut off from every other node, both ways.
    IsolateLeader,
    /// A majority and a minority that cannot hear each other.
    Halves,
    /// Each node hears only its two neighbours on a ring (5 nodes).
    Ring,
    /// Two halves cut apart but for one node that sees both.
    Bridge,
    /// Every link out of one node drops, its inbound links stay up.
    OneWay,
    /// Delay on some links.
    SlowLinks,
    /// Connections dropped at random on some links.
    LossyLinks,
    /// One node's wall clock moved, within `max_clock_skew`.
    SkewWithin,
    /// One node's wall clock moved beyond `max_clock_skew`.
    SkewBeyond,
    /// Remove a voter (the leader half the time), wipe its disk, add it back as a learner
    /// (it catches up by snapshot) and promote it.
    Replace,
    /// The peer site refuses connections.
    PeerDown,
    /// The peer site's connections hang (a partition).
    PeerCut,
    /// The peer site answers late.
    PeerSlow,
    /// The peer site answers garbage.
    PeerGarbage,
    /// The peer site's node killed and restarted.
    PeerRestart,
    /// Kill the origin site's leader while fan-outs are queued for a peer that is down.
    OriginLeaderWithPeerDown,
}

impl FaultKind {
    /// The name in the history and reports.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::KillLeader => "kill_leader",
            FaultKind::KillMajority => "kill_majority",
            FaultKind::Pause => "pause",
            FaultKind::IsolateLeader => "isolate_leader",
            FaultKind::Halves => "partition_halves",
            FaultKind::Ring => "partition_ring",
            FaultKind::Bridge => "partition_bridge",
            FaultKind::OneWay => "one_way_cut",
            FaultKind::SlowLinks => "slow_links",
            FaultKind::LossyLinks => "lossy_links",
            FaultKind::SkewWithin => "clock_skew_within",
            FaultKind::SkewBeyond => "clock_skew_beyond",
            FaultKind::Replace => "replace_wiped",
            FaultKind::PeerDown => "peer_down",
            FaultKind::PeerCut => "peer_cut",
            FaultKind::PeerSlow => "peer_slow",
            FaultKind::PeerGarbage => "peer_garbage",
            FaultKind::PeerRestart => "peer_restart",
            FaultKind::OriginLeaderWithPeerDown => "origin_leader_killed_peer_down",
        }
    }

    /// Every kind, for `--faults all` and the soak.
    pub const ALL: [FaultKind; 20] = [
        FaultKind::Kill,
        FaultKind::KillLeader,
        FaultKind::KillMajority,
        FaultKind::Pause,
        FaultKind::IsolateLeader,
        FaultKind::Halves,
        FaultKind::Ring,
        FaultKind::Bridge,
        FaultKind::OneWay,
        FaultKind::SlowLinks,
        FaultKind::LossyLinks,
        FaultKind::SkewWithin,
        FaultKind::SkewBeyond,
        FaultKind::Replace,
        FaultKind::PeerDown,
        FaultKind::PeerCut,
        FaultKind::PeerSlow,
        FaultKind::PeerGarbage,
        FaultKind::PeerRestart,
        FaultKind::OriginLeaderWithPeerDown,
    ];

    /// Whether it needs a peer site.
    pub fn federated(self) -> bool {
        matches!(
            self,
            FaultKind::PeerDown
                | FaultKind::PeerCut
                | FaultKind::PeerSlow
                | FaultKind::PeerGarbage
                | FaultKind::PeerRestart
                | FaultKind::OriginLeaderWithPeerDown
        )
    }
}

/// The clock offsets of the skew faults, with the run's `max_clock_skew` of 2 s.
pub const SKEW_WITHIN: &str = "+1";
/// Well past `max_clock_skew`.
pub const SKEW_BEYOND: &str = "+30";
/// The `max_clock_skew` a chaos run's policy sets.
pub const MAX_CLOCK_SKEW: &str = "2s";

/// How long a fault is held, at least and at most.
const HOLD: (u64, u64) = (2_000, 6_000);
/// Calm between faults, at least and at most.
const CALM: (u64, u64) = (1_000, 3_000);
/// How long the nemesis tries a write after a heal before it calls the recovery failed.
pub const RECOVERY_BOUND: Duration = Duration::from_secs(30);
/// Deadline of a membership change or a node's catch-up.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(40);

/// The origin site (the one faults are injected into), and the peer site behind its proxy.
pub struct Target {
    /// The origin site's name.
    pub name: String,
    /// The origin site's nodes (started proxied, so links can be cut).
    pub cluster: TestCluster,
    /// The peer site, when the run is federated: its cluster and the proxy the origin reaches
    /// it through.
    pub peer: Option<(String, TestCluster, SiteProxy)>,
    /// Files the nodes read at each start (the federation secrets), kept for the run.
    pub files: Option<tempfile::TempDir>,
}

/// Injects faults into a [`Target`] and records them.
pub struct Nemesis {
    /// What the faults are injected into.
    pub target: Target,
    kinds: Vec<FaultKind>,
    rng: StdRng,
    history: HistoryWriter,
    started: Instant,
    /// Faults injected so far, by name.
    pub injected: BTreeMap<String, u64>,
    probe: u64,
}

impl Nemesis {
    /// A nemesis that picks among `kinds` (those needing a peer are dropped without one).
    pub fn new(
        target: Target,
        kinds: &[FaultKind],
        rng: StdRng,
        history: HistoryWriter,
        started: Instant,
    ) -> Nemesis {
        let kinds = kinds
            .iter()
            .copied()
            .filter(|k| target.peer.is_some() || !k.federated())
            .filter(|k| {
                target.cluster.node_ids().len() >= 5
                    || !matches!(k, FaultKind::Ring | FaultKind::Bridge)
            })
            .collect();
        Nemesis {
            target,
            kinds,
            rng,
            history,
            started,
            injected: BTreeMap::new(),
            probe: 0,
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn event(
        &self,
        fault: FaultKind,
        phase: Phase,
        nodes: &[u64],
        detail: &str,
        recovery_ms: Option<u64>,
    ) {
        self.record(fault.name(), phase, nodes, detail, recovery_ms);
    }

    /// Writes a fault event named `fault` to the history.
    fn record(
        &self,
        fault: &str,
        phase: Phase,
        nodes: &[u64],
        detail: &str,
        recovery_ms: Option<u64>,
    ) {
        let e = Entry::Fault(FaultEvent {
            at_ms: self.now_ms(),
            site: self.target.name.clone(),
            fault: fault.into(),
            phase,
            nodes: nodes.to_vec(),
            detail: detail.into(),
            recovery_ms,
        });
        if let Err(e) = self.history.write(&e) {
            eprintln!("cannot write the history: {e:#}");
        }
    }

    /// Injects faults one after another until `until`, each held and healed, with calm in
    /// between. Returns the first error that left the cluster in a state the run cannot heal.
    pub async fn run_until(&mut self, until: Instant) -> anyhow::Result<()> {
        while Instant::now() + Duration::from_millis(HOLD.1) < until && !self.kinds.is_empty() {
            let kind = *self.kinds.choose(&mut self.rng).expect("not empty");
            self.inject(kind)
                .await
                .with_context(|| format!("fault {}", kind.name()))?;
            let calm = self.rng.gen_range(CALM.0..=CALM.1);
            tokio::time::sleep(Duration::from_millis(calm)).await;
        }
        Ok(())
    }

    async fn hold(&mut self) {
        let ms = self.rng.gen_range(HOLD.0..=HOLD.1);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// Injects one fault, holds it, heals it, and times the recovery.
    pub async fn inject(&mut self, kind: FaultKind) -> anyhow::Result<()> {
        *self.injected.entry(kind.name().into()).or_default() += 1;
        let (nodes, detail) = match kind {
            FaultKind::Kill
            | FaultKind::KillLeader
            | FaultKind::KillMajority
            | FaultKind::Pause => self.process_fault(kind).await?,
            FaultKind::IsolateLeader
            | FaultKind::Halves
            | FaultKind::Ring
            | FaultKind::Bridge
            | FaultKind::OneWay
            | FaultKind::SlowLinks
            | FaultKind::LossyLinks => self.link_fault(kind).await?,
            FaultKind::SkewWithin | FaultKind::SkewBeyond => self.clock_fault(kind).await?,
            FaultKind::Replace => {
                let id = self.replace().await?;
                (
                    vec![id],
                    format!("node {id} removed, wiped, re-added by snapshot"),
                )
            }
            FaultKind::PeerDown
            | FaultKind::PeerCut
            | FaultKind::PeerSlow
            | FaultKind::PeerGarbage
            | FaultKind::PeerRestart
            | FaultKind::OriginLeaderWithPeerDown => self.peer_fault(kind).await?,
        };
        let recovery = self.recovery().await;
        self.event(kind, Phase::Recovered, &nodes, &detail, recovery);
        Ok(())
    }

    /// Time from now until the site acknowledges a write (a create for a probe user), at most
    /// [`RECOVERY_BOUND`].
    async fn recovery(&mut self) -> Option<u64> {
        let t0 = Instant::now();
        let client = self
            .target
            .cluster
            .app_client()
            .with_timeout(Duration::from_secs(2))
            .with_attempt_timeout(Duration::from_secs(1));
        while t0.elapsed() < RECOVERY_BOUND {
            self.probe += 1;
            // A user of its own each time, so the session limit never refuses the probe.
            let user = UserId::parse_field(&format!("chaos-probe-{}", self.probe), "user_id")
                .expect("valid");
            let req = CreateSessionRequest {
                user_id: user,
                device: Default::default(),
                origin: Some("chaos-probe".into()),
                idempotency_key: Some(format!("probe-{}-{}", self.now_ms(), self.probe)),
            };
            if client.create_session(&req).await.is_ok() {
                return Some(t0.elapsed().as_millis() as u64);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }
}

/// Tries a cluster change a few times (a leader change may refuse it once), for at most
/// [`CHANGE_TIMEOUT`].
async fn retry<T, F, Fut>(what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sessync_client::ClientError>>,
{
    let t0 = Instant::now();
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if t0.elapsed() < CHANGE_TIMEOUT => {
                eprintln!("chaos: {what}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(anyhow::anyhow!("cannot {what}: {e}")),
        }
    }
}

//! One chaos run: start the site (and its peer), run the workload and the nemesis together for
//! the run's duration, heal every fault, read everything back, check the history and report.
//! A [`Scenario`] names the cluster and the faults; the seed picks the workload's choices, the
//! victims and `on_limit` (deny, block_new, evict_oldest in turn).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::SeedableRng;
use sessync_proto::UserId;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::checker;
use crate::cluster::TestCluster;
use crate::config::ClusterOptions;
use crate::history::{Entry, History, HistoryWriter, RunInfo, SitePolicy};
use crate::nemesis::{FaultKind, Nemesis, Target, MAX_CLOCK_SKEW, RECOVERY_BOUND};
use crate::net::SiteProxy;
use crate::report::Summary;
use crate::sites::{peer_toml, random_secret, SITE_A, SITE_B};
use crate::workload::{Sabotage, SiteTarget, Workload};

mod finals;

use finals::heal_and_read;

/// The modes the seed picks `on_limit` from.
const ON_LIMIT: [&str; 3] = ["deny", "block_new", "evict_oldest"];
/// Sessions per user the runs allow, so the limit bites.
const LIMIT: u32 = 2;
/// Users per site.
const USERS: usize = 3;
/// How long the healed cluster may take to converge before the run fails.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);

/// A cluster shape and the faults it suffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// 3 nodes: kill -9 of any node, the leader, a majority; SIGSTOP.
    Crash,
    /// 5 nodes: every partition shape, one-way cuts, slow and lossy links.
    Partition,
    /// 3 nodes: a clock skewed within and beyond `max_clock_skew`, pauses, the leader cut off.
    Clock,
    /// 3 nodes: voters removed, wiped and re-added (the leader too), leader crashes, one-way cuts.
    Membership,
    /// 3 nodes and a 1-node peer site: the peer down, cut off, slow, answering garbage,
    /// restarted, and the origin's leader killed with fan-outs queued.
    Federation,
    /// 5 nodes and a peer site: every fault kind.
    All,
}

impl Scenario {
    /// Every scenario, in the CI's order.
    pub const EVERY: [Scenario; 6] = [
        Scenario::Crash,
        Scenario::Partition,
        Scenario::Clock,
        Scenario::Membership,
        Scenario::Federation,
        Scenario::All,
    ];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Crash => "crash",
            Scenario::Partition => "partition",
            Scenario::Clock => "clock",
            Scenario::Membership => "membership",
            Scenario::Federation => "federation",
            Scenario::All => "all",
        }
    }

    /// The scenario called `name`.
    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::EVERY.into_iter().find(|s| s.name() == name)
    }

    fn nodes(self) -> usize {
        match self {
            Scenario::Partition | Scenario::All => 5,
            _ => 3,
        }
    }

    fn federated(self) -> bool {
        matches!(self, Scenario::Federation | Scenario::All)
    }

    fn faults(self) -> Vec<FaultKind> {
        use FaultKind::*;
        match self {
            Scenario::Crash => vec![Kill, KillLeader, KillMajority, Pause],
            Scenario::Partition => vec![
                IsolateLeader,
                Halves,
                Ring,
                Bridge,
                OneWay,
                SlowLinks,
                LossyLinks,
            ],
            Scenario::Clock => vec![SkewWithin, SkewBeyond, Pause, IsolateLeader],
            Scenario::Membership => vec![Replace, KillLeader, OneWay],
            Scenario::Federation => vec![
                PeerDown,
                PeerCut,
                PeerSlow,
                PeerGarbage,
                PeerRestart,
                OriginLeaderWithPeerDown,
                KillLeader,
            ],
            Scenario::All => FaultKind::ALL.to_vec(),
        }
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// Seeds the workload, the nemesis and the limit mode: the same seed replays the run.
    pub seed: u64,
    /// Which faults are injected, into which sites.
    pub scenario: Scenario,
    /// How long the workload and the nemesis run.
    pub duration: Duration,
    /// Concurrent workload clients.
    pub clients: u32,
    /// Where the history and the report go.
    pub out_dir: PathBuf,
    /// The node program (default: next to this executable, as the harness finds it).
    pub node_bin: Option<PathBuf>,
    /// A deliberate workload fault the checker must catch (never in CI's passing runs).
    pub sabotage: Option<Sabotage>,
}

impl RunSpec {
    /// The command that runs this again.
    pub fn replay_command(&self) -> String {
        format!(
            "cargo run --release -p sessync-chaos-tests --bin sessync-chaos -- --scenario {} --seed {} --duration {}s{}",
            self.scenario.name(),
            self.seed,
            self.duration.as_secs(),
            if self.sabotage.is_some() {
                " --sabotage-local-reads"
            } else {
                ""
            }
        )
    }
}

fn options(spec: &RunSpec, nodes: usize, on_limit: &str) -> ClusterOptions {
    ClusterOptions {
        nodes,
        proxied: true,
        policy_toml: format!(
            "max_concurrent_sessions = {LIMIT}\non_limit = \"{on_limit}\"\nidle_timeout = \"1h\"\nmax_lifetime = \"8h\"\nmax_clock_skew = \"{MAX_CLOCK_SKEW}\""
        ),
        // Short logs, so a wiped node must catch up by snapshot.
        raft_toml: "snapshot_after_logs = 300".into(),
        node_bin: spec.node_bin.clone(),
        ..Default::default()
    }
}

/// Runs `spec` and returns its summary (written to `out_dir` as JSON too). Every node process
/// is killed when this returns, whatever happened.
pub async fn run(spec: &RunSpec) -> anyhow::Result<Summary> {
    fs::create_dir_all(&spec.out_dir)?;
    let stem = format!(
        "{}-{}{}",
        spec.scenario.name(),
        spec.seed,
        if spec.sabotage.is_some() {
            "-sabotaged"
        } else {
            ""
        }
    );
    let history_path = spec.out_dir.join(format!("{stem}.history.jsonl"));
    let history = HistoryWriter::create(&history_path)?;
    let on_limit = ON_LIMIT[(spec.seed % 3) as usize];
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let target = start(spec, on_limit).await?;
    let started = Instant::now();
    let mut sites = BTreeMap::new();
    sites.insert(
        target.name.clone(),
        SitePolicy {
            max_concurrent_sessions: LIMIT,
            on_limit: on_limit.into(),
        },
    );
    if let Some((name, ..)) = &target.peer {
        sites.insert(
            name.clone(),
            SitePolicy {
                max_concurrent_sessions: LIMIT,
                on_limit: on_limit.into(),
            },
        );
    }
    history.write(&Entry::Run(RunInfo {
        seed: spec.seed,
        scenario: spec.scenario.name().into(),
        sites,
        recovery_bound_ms: RECOVERY_BOUND.as_millis() as u64,
    }))?;
    let workload = Workload::new(
        workload_sites(&target),
        spec.seed,
        history.clone(),
        started,
        spec.sabotage,
    )?;
    let stop = CancellationToken::new();
    // At most 40 operations per client per second of the run: a bound, not a target.
    let max_ops = spec.duration.as_secs().max(1) * 40;
    let load = {
        let (w, stop, clients) = (workload.clone(), stop.clone(), spec.clients);
        tokio::spawn(async move { w.run(clients, max_ops, stop).await })
    };
    let mut nemesis = Nemesis::new(
        target,
        &spec.scenario.faults(),
        StdRng::from_rng(&mut rng)?,
        history.clone(),
        started,
    );
    let faults = nemesis.run_until(started + spec.duration).await;
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), load).await;
    let injected = nemesis.injected.clone();
    let mut target = nemesis.target;
    let finals = match faults {
        Ok(()) => heal_and_read(&mut target, &workload, &history).await,
        Err(e) => Err(e),
    };
    let crashed = target.cluster.check_no_crashes();
    let history = History::read(&history_path)?;
    let anomalies = checker::check(&history);
    let mut summary = Summary::new(spec, &history, injected, anomalies);
    if let Err(e) = finals.and(crashed) {
        summary.error = Some(format!("{e:#}"));
    }
    summary.history = history_path.display().to_string();
    let json = spec.out_dir.join(format!("{stem}.json"));
    fs::write(&json, serde_json::to_string_pretty(&summary)?)?;
    Ok(summary)
}

/// Starts the site under test (proxied links) and, for a federated scenario, its peer behind a
/// [`SiteProxy`].
async fn start(spec: &RunSpec, on_limit: &str) -> anyhow::Result<Target> {
    let nodes = spec.scenario.nodes();
    if !spec.scenario.federated() {
        let mut o = options(spec, nodes, on_limit);
        o.site = SITE_A.into();
        let cluster = TestCluster::start(o).await.context("starting the site")?;
        return Ok(Target {
            name: SITE_A.into(),
            cluster,
            peer: None,
            files: None,
        });
    }
    let dir = tempfile::Builder::new()
        .prefix("sessync-chaos-")
        .tempdir()?;
    let ports = crate::process::free_ports(nodes + 1, &Default::default())?;
    let (pa, pb) = ports.split_at(nodes);
    let proxy = SiteProxy::start(pb[0]).await?;
    let (a_to_b, b_to_a) = (random_secret(), random_secret());
    let (fa, fb) = (dir.path().join("a-to-b"), dir.path().join("b-to-a"));
    fs::write(&fa, format!("{a_to_b}\n"))?;
    fs::write(&fb, format!("{b_to_a}\n"))?;
    let a_urls: Vec<String> = pa.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
    let mut a = options(spec, nodes, on_limit);
    a.site = SITE_A.into();
    a.ports = pa.to_vec();
    a.peers_toml = peer_toml(SITE_B, &[proxy.url()], &fa, &fb);
    let mut b = options(spec, 1, on_limit);
    b.proxied = false;
    b.site = SITE_B.into();
    b.ports = pb.to_vec();
    b.peers_toml = peer_toml(SITE_A, &a_urls, &fb, &fa);
    let cluster = TestCluster::start(a).await.context("starting site A")?;
    let peer = TestCluster::start(b).await.context("starting site B")?;
    Ok(Target {
        name: SITE_A.into(),
        cluster,
        peer: Some((SITE_B.into(), peer, proxy)),
        // A restarted node reads the secrets' files again: they live as long as the run.
        files: Some(dir),
    })
}

fn users() -> Vec<UserId> {
    (0..USERS)
        .map(|i| UserId::parse_field(&format!("user-{i}"), "user_id").expect("valid"))
        .collect()
}

fn site_target(name: &str, c: &TestCluster, peers: Vec<String>) -> SiteTarget {
    SiteTarget {
        name: name.into(),
        nodes: c.node_ids().into_iter().map(|id| (id, c.url(id))).collect(),
        app_key: c.app_key().into(),
        users: users(),
        peers,
    }
}

fn workload_sites(t: &Target) -> Vec<SiteTarget> {
    let peers: Vec<String> = t.peer.iter().map(|(n, ..)| n.clone()).collect();
    let mut v = vec![site_target(&t.name, &t.cluster, peers)];
    if let Some((name, peer, _)) = &t.peer {
        v.push(site_target(name, peer, vec![]));
    }
    v
}

/// Where reports go by default: `chaos-results/` in the working directory.
pub fn default_out_dir() -> PathBuf {
    Path::new("chaos-results").to_path_buf()
}

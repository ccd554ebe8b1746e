//! `sessync-bench`: sessync against etcd on this machine, in one run.
//!
//! Starts a 3-node etcd cluster (Debian's `etcd-server`) and then a 3-node sessync cluster on
//! loopback, each with its own data dirs and fsync on, drives each in turn with the same load
//! generator at each client count, and writes `bench-results/<time>.json` and `.md` (the tables
//! of docs/performance.md). See docs/performance.md for the method and the last full run.
//!
//! `--smoke` runs every part for a moment, to prove the harness works (scripts/test.sh).

mod etcd;
mod load;
mod profile;
mod report;
mod scale;
mod target;
mod workloads;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Parser;
use sessync_chaos_tests::{ClusterOptions, TestCluster};

use crate::etcd::EtcdCluster;
use crate::report::Report;
use crate::scale::{footprint, Scale};
use crate::target::{Conn, System};
use crate::workloads::{closed_points, progress, Bench, Plan, Row, Workload};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Benchmarks sessync against etcd on this machine (docs/performance.md)"
)]
struct Args {
    /// Where the JSON and markdown reports go.
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
    /// A few seconds per part: proves the harness works; its figures mean nothing.
    #[arg(long)]
    smoke: bool,
    /// Measured time per point.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    duration: Duration,
    /// Unmeasured time before each closed-loop point.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    warmup: Duration,
    /// Concurrent clients, one closed-loop point each.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    clients: Vec<usize>,
    /// Live sessions the validates and the login-day mix run over.
    #[arg(long, default_value_t = 100_000)]
    pool: u64,
    /// Live sessions for the memory, disk and restart figures (0: skip them).
    #[arg(long, default_value_t = 1_000_000)]
    scale_sessions: u64,
    /// Only these workloads (default: all), e.g. `create,validate_linearizable`.
    #[arg(long, value_delimiter = ',', value_enum)]
    only: Vec<Workload>,
    /// Profile each workload's point at the most clients with perf into this folder (a
    /// flamegraph SVG per system and workload).
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Skip etcd (no ratios, no open-loop rate): sessync's figures only.
    #[arg(long)]
    no_etcd: bool,
}

/// The bench's sessync policy: sessions outlive the run, and every create is a new user.
const POLICY: &str = r#"
idle_timeout = "8h"
max_lifetime = "24h"
"#;

fn stamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs))
        .to_string()
        .replace(':', "-")
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    format!("{cpus} cores, {model}")
}

/// Half the best closed-loop throughput of `w` on `system`: the open-loop rate.
fn half_peak(rows: &[Row], system: System, w: Workload) -> Option<u64> {
    rows.iter()
        .filter(|r| r.system == system && r.workload == w && r.mode == "closed")
        .map(|r| r.point.throughput)
        .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))))
        .map(|t| (t / 2.0).max(1.0) as u64)
}

const OPEN_LOOP: [Workload; 2] = [Workload::Create, Workload::ValidateLinearizable];

async fn run_etcd(
    plan: &Plan,
    profile: Option<&std::path::Path>,
    rows: &mut Vec<Row>,
) -> anyhow::Result<scale::Footprint> {
    let dir = tempfile::Builder::new()
        .prefix("sessync-bench-etcd-")
        .tempdir()?;
    let cluster = EtcdCluster::start(dir.path(), 3).await?;
    progress(&format!("etcd up at {:?}", cluster.endpoints()));
    let max = plan.clients.iter().copied().max().unwrap_or(1);
    let mut conns = Vec::with_capacity(max);
    for _ in 0..max {
        conns.push(Conn::etcd(cluster.endpoints()).await?);
    }
    let bench = Bench::new(System::Etcd, conns);
    let pids = cluster.pids();
    rows.extend(closed_points(&bench, plan, profile.map(|d| (d, &pids[..]))).await?);
    for w in OPEN_LOOP.into_iter().filter(|w| plan.workloads.contains(w)) {
        if let Some(rate) = half_peak(rows, System::Etcd, w) {
            rows.push(bench.open(w, rate, plan).await);
        }
    }
    Ok(footprint(
        bench.live(),
        &cluster.pids(),
        &cluster.data_dirs(),
    ))
}

async fn run_sessync(
    plan: &Plan,
    args: &Args,
    rows: &mut Vec<Row>,
) -> anyhow::Result<(scale::Footprint, Option<Scale>)> {
    let mut cluster = TestCluster::start(ClusterOptions {
        policy_toml: POLICY.into(),
        ..Default::default()
    })
    .await?;
    progress(&format!("sessync up at {:?}", cluster.urls()));
    let pids = |c: &TestCluster| {
        c.node_ids()
            .iter()
            .filter_map(|&id| c.pid(id))
            .collect::<Vec<_>>()
    };
    let max = plan.clients.iter().copied().max().unwrap_or(1);
    let conns = (0..max)
        .map(|_| Conn::sessync(cluster.urls(), cluster.app_key()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let bench = Bench::new(System::Sessync, conns);
    let node_pids = pids(&cluster);
    let profile = args.profile.as_deref().map(|d| (d, &node_pids[..]));
    rows.extend(closed_points(&bench, plan, profile).await?);
    let etcd_rows = rows.clone();
    for w in OPEN_LOOP.into_iter().filter(|w| plan.workloads.contains(w)) {
        if let Some(rate) = half_peak(&etcd_rows, System::Etcd, w) {
            rows.push(bench.open(w, rate, plan).await);
        }
    }
    let dirs = |c: &TestCluster| {
        c.node_ids()
            .iter()
            .map(|&id| c.data_dir(id))
            .collect::<Vec<_>>()
    };
    let pool_fp = footprint(bench.live(), &pids(&cluster), &dirs(&cluster));
    if args.scale_sessions == 0 {
        return Ok((pool_fp, None));
    }
    progress("touches of busy sessions");
    let busy_n = max.min(64);
    bench.fill_pool(busy_n as u64).await?;
    let busy: Vec<_> = bench
        .shared
        .pool
        .lock()
        .iter()
        .rev()
        .take(busy_n)
        .cloned()
        .collect();
    let (touches, entries) = scale::touches(&cluster, &bench.conns, busy, plan.duration).await?;
    let k = bench.conns.len().min(256);
    let (live, stopped_early) = scale::grow(
        &bench.conns[..k],
        bench.live(),
        args.scale_sessions,
        bench.take_users(args.scale_sessions),
    )
    .await?;
    // Let the followers apply and RocksDB flush before reading memory and disk.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let fp = footprint(live, &pids(&cluster), &dirs(&cluster));
    progress("restart to ready");
    let restart_to_ready_ms = scale::restart_to_ready(&mut cluster).await?;
    progress("kill -9 of the leader");
    let leader_kill_to_first_write_ms =
        scale::leader_kill(&mut cluster, bench.take_users(1)).await?;
    Ok((
        pool_fp,
        Some(Scale {
            touches,
            raft_entries_for_touches: entries,
            raft_entries_per_1000_touches: entries as f64 * 1000.0 / touches.max(1) as f64,
            footprint: fp,
            stopped_early,
            restart_to_ready_ms,
            leader_kill_to_first_write_ms,
        }),
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.duration = Duration::from_secs(1);
        args.warmup = Duration::from_millis(200);
        args.clients = vec![1, 16];
        args.pool = 500;
        args.scale_sessions = args.scale_sessions.min(2_000);
    }
    let plan = Plan {
        clients: args.clients.clone(),
        duration: args.duration,
        warmup: args.warmup,
        pool: args.pool,
        workloads: if args.only.is_empty() {
            Workload::ALL.to_vec()
        } else {
            args.only.clone()
        },
    };
    let started_at = stamp();
    let mut rows = Vec::new();
    let etcd_footprint = if args.no_etcd {
        None
    } else {
        Some(
            run_etcd(&plan, args.profile.as_deref(), &mut rows)
                .await
                .context("the etcd half")?,
        )
    };
    let (pool_fp, scale) = run_sessync(&plan, &args, &mut rows)
        .await
        .context("the sessync half")?;
    let report = Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        started_at: started_at.clone(),
        machine: machine(),
        plan,
        rows,
        etcd_footprint,
        sessync_pool_footprint: Some(pool_fp),
        scale,
    };
    let json = report.write(&args.out, &started_at)?;
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", report.markdown())?;
    writeln!(out, "report: {}", json.display())?;
    Ok(())
}

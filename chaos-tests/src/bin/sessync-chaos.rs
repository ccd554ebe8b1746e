//! `sessync-chaos`: Jepsen-style runs of real sessync nodes under faults, checked by the
//! history checker.
//!
//! - `sessync-chaos --ci`: the fixed seeds and scenarios CI runs (a few minutes), then a
//!   control run with a broken client that the checker must fail.
//! - `sessync-chaos --scenario partition --seed 7 --duration 60s`: one run (replays a seed).
//! - `sessync-chaos --duration 30m`: a soak, every scenario in turn with new seeds, until the
//!   time is up; prints the totals table.
//!
//! - `sessync-chaos --scenario partition --seed 2 --duration 60s --sabotage-local-reads`: the
//!   same with a broken client (linearizable reads sent as local ones); the checker must fail it.
//!
//! - `sessync-chaos --check chaos-results/crash-1.history.jsonl`: the checker on a stored
//!   history.
//!
//! Exits 1 if any run found an anomaly or failed, printing its seed and the replay command.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Parser;
use sessync_chaos_tests::checker;
use sessync_chaos_tests::history::History;
use sessync_chaos_tests::report::{totals, Summary};
use sessync_chaos_tests::run::{default_out_dir, run, RunSpec, Scenario};
use sessync_chaos_tests::workload::Sabotage;
use tokio::signal::unix::{signal, SignalKind};

/// The CI's runs: each scenario once, with a fixed seed.
const CI_RUNS: [(Scenario, u64); 5] = [
    (Scenario::Crash, 1),
    (Scenario::Partition, 2),
    (Scenario::Clock, 3),
    (Scenario::Membership, 4),
    (Scenario::Federation, 5),
];

/// The control run of CI: a broken client whose anomalies the checker must report.
const CONTROL_SEED: u64 = 2;
const CONTROL_LENGTH: Duration = Duration::from_secs(20);

#[derive(Parser)]
#[command(about = "Chaos runs of sessync: faults, a concurrent workload, a history checker")]
struct Args {
    /// Run the CI's fixed seeds and scenarios.
    #[arg(long)]
    ci: bool,
    /// One scenario: crash, partition, clock, membership, federation, all.
    #[arg(long)]
    scenario: Option<String>,
    /// The seed of a single run (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// With --scenario: the run's length. Without: a soak of this length over every scenario.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Length of each run in a soak or in CI.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "45s")]
    run_length: Duration,
    /// Concurrent workload clients.
    #[arg(long, default_value_t = 6)]
    clients: u32,
    /// Where histories and reports go.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Check a stored history again (after a change to the checker) and exit.
    #[arg(long, value_name = "HISTORY_JSONL")]
    check: Option<PathBuf>,
    /// Send linearizable validates as local reads (recorded as linearizable): a broken
    /// client the checker must catch. Such a run is expected to fail.
    #[arg(long)]
    sabotage_local_reads: bool,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    // On a signal the runs are dropped, which kills every node process they started.
    let done = tokio::select! {
        r = chaos(args) => Some(r),
        _ = term.recv() => None,
        _ = int.recv() => None,
    };
    match done {
        Some(r) => r,
        None => {
            eprintln!("sessync-chaos: interrupted; every node it started is stopped");
            std::process::exit(130);
        }
    }
}

/// Runs what `args` asks for, prints the tables, and exits 1 on a failed run.
async fn chaos(args: Args) -> anyhow::Result<()> {
    if let Some(path) = &args.check {
        return check_stored(path);
    }
    let out_dir = args.out.clone().unwrap_or_else(default_out_dir);
    let spec = |scenario, seed, duration| RunSpec {
        seed,
        scenario,
        duration,
        clients: args.clients,
        out_dir: out_dir.clone(),
        node_bin: None,
        sabotage: args.sabotage_local_reads.then_some(Sabotage::LocalReads),
    };
    let mut specs = Vec::new();
    let mut soak_until = None;
    if args.ci {
        specs.extend(
            CI_RUNS
                .iter()
                .map(|&(s, seed)| spec(s, seed, args.run_length)),
        );
    } else if let Some(name) = &args.scenario {
        let Some(s) = Scenario::parse(name) else {
            bail!("no scenario {name}; scenarios: crash, partition, clock, membership, federation, all");
        };
        let seed = args.seed.unwrap_or_else(clock_seed);
        specs.push(spec(s, seed, args.duration.unwrap_or(args.run_length)));
    } else if let Some(d) = args.duration {
        soak_until = Some(Instant::now() + d);
    } else {
        bail!("say --ci, --scenario NAME, or --duration for a soak");
    }
    let mut summaries: Vec<Summary> = Vec::new();
    let mut i = 0u64;
    let base = args.seed.unwrap_or_else(clock_seed);
    loop {
        let next = if let Some(until) = soak_until {
            if Instant::now() + args.run_length > until {
                break;
            }
            let s = Scenario::EVERY[(i as usize) % Scenario::EVERY.len()];
            spec(s, base + i, args.run_length)
        } else if let Some(s) = specs.get(i as usize) {
            s.clone()
        } else {
            break;
        };
        i += 1;
        let summary = match run(&next).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!(
                    "chaos run {} seed {} could not run: {e:#}\nreplay: {}",
                    next.scenario.name(),
                    next.seed,
                    next.replay_command()
                );
                let mut s = Summary::new(&next, &Default::default(), Default::default(), vec![]);
                s.error = Some(format!("{e:#}"));
                s
            }
        };
        eprint!("{}", summary.table());
        summaries.push(summary);
    }
    eprintln!("\n{}", totals(&summaries));
    std::fs::write(out_dir.join("totals.md"), totals(&summaries))?;
    let mut failed: Vec<&Summary> = summaries.iter().filter(|s| !s.passed()).collect();
    // CI also proves on a real run that the checker can fail: a broken client must be caught.
    let control = if args.ci {
        let mut broken = spec(Scenario::Partition, CONTROL_SEED, CONTROL_LENGTH);
        broken.sabotage = Some(Sabotage::LocalReads);
        let s = run(&broken).await?;
        eprintln!(
            "control run (linearizable validates sent as local reads): the checker found {} anomalies",
            s.anomalies.len()
        );
        Some(s)
    } else {
        None
    };
    if let Some(c) = control.as_ref().filter(|c| c.anomalies.is_empty()) {
        eprintln!("FAILED: the checker passed a run whose client reads stale data");
        failed.push(c);
    }
    if !failed.is_empty() {
        for s in failed {
            eprintln!(
                "FAILED: {} seed {}: replay with\n  {}",
                s.scenario, s.seed, s.replay
            );
        }
        std::process::exit(1);
    }
    Ok(())
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(1)
}

/// The checker on a stored history; exits 1 if it finds anything.
fn check_stored(path: &std::path::Path) -> anyhow::Result<()> {
    let found = checker::check(&History::read(path)?);
    for a in &found {
        eprintln!("ANOMALY {:?}: {} (ops {:?})", a.kind, a.message, a.ops);
    }
    eprintln!("{}: {} anomalies", path.display(), found.len());
    if !found.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

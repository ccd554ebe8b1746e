//! `sessync-chaos`: Jepsen-style runs of real sessync nodes under faults, checked by the
//! history checker.
//!
//! - `sessync-chaos --ci`: the fixed seeds and scenarios CI runs (a few minutes).
//! - `sessync-chaos --scenario partition --seed 7 --duration 60s`: one run (replays a seed).
//! - `sessync-chaos --duration 30m`: a soak, every scenario in turn with new seeds, until the
//!   time is up; prints the totals table.
//!
//! Exits 1 if any run found an anomaly or failed, printing its seed and the replay command.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Parser;
use sessync_chaos_tests::report::{totals, Summary};
use sessync_chaos_tests::run::{default_out_dir, run, RunSpec, Scenario};

/// The CI's runs: each scenario once, with a fixed seed.
const CI_RUNS: [(Scenario, u64); 5] = [
    (Scenario::Crash, 1),
    (Scenario::Partition, 2),
    (Scenario::Clock, 3),
    (Scenario::Membership, 4),
    (Scenario::Federation, 5),
];

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
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let out_dir = args.out.clone().unwrap_or_else(default_out_dir);
    let spec = |scenario, seed, duration| RunSpec {
        seed,
        scenario,
        duration,
        clients: args.clients,
        out_dir: out_dir.clone(),
        node_bin: None,
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
    let failed: Vec<&Summary> = summaries.iter().filter(|s| !s.passed()).collect();
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

//! A chaos run's summary, as JSON (`<scenario>-<seed>.json`) and as a readable table: the
//! seed, the faults injected by kind and count, the operations by kind and outcome, the
//! anomalies with the operations involved, the recovery times, and the command that replays
//! the run.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::checker::Anomaly;
use crate::history::{History, Outcome, Phase};
use crate::run::RunSpec;

/// Operations of one kind by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcomes {
    /// Acknowledged.
    pub ok: u64,
    /// Refused (nothing happened).
    pub fail: u64,
    /// Timed out or unanswered (may or may not have happened).
    pub unknown: u64,
}

/// Times from a heal to the first acknowledged write.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    /// Heals timed.
    pub heals: u64,
    /// Heals after which no write was taken within the bound.
    pub not_recovered: u64,
    /// Median time to the first write after a heal.
    pub p50_ms: u64,
    /// Longest time to the first write after a heal.
    pub max_ms: u64,
}

/// The summary of one run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The run's seed.
    pub seed: u64,
    /// The scenario's name.
    pub scenario: String,
    /// The sites' `on_limit` mode.
    pub on_limit: String,
    /// How long the workload ran.
    pub duration_s: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Operations by kind and outcome.
    pub operations: BTreeMap<String, Outcomes>,
    /// What the checker found.
    pub anomalies: Vec<Anomaly>,
    /// Times to recover after the heals.
    pub recovery: Recovery,
    /// Why the run itself failed (a node crashed, the cluster did not converge), if it did.
    pub error: Option<String>,
    /// The history file.
    pub history: String,
    /// The command that replays the run.
    pub replay: String,
}

impl Summary {
    /// Summarises a checked history.
    pub fn new(
        spec: &RunSpec,
        h: &History,
        faults: BTreeMap<String, u64>,
        anomalies: Vec<Anomaly>,
    ) -> Summary {
        let mut operations: BTreeMap<String, Outcomes> = BTreeMap::new();
        for o in &h.ops {
            let e = operations.entry(o.call.kind().into()).or_default();
            match o.outcome {
                Outcome::Ok { .. } => e.ok += 1,
                Outcome::Fail { .. } => e.fail += 1,
                Outcome::Unknown { .. } => e.unknown += 1,
            }
        }
        let mut times: Vec<u64> = Vec::new();
        let mut not_recovered = 0;
        for f in h.faults.iter().filter(|f| f.phase == Phase::Recovered) {
            match f.recovery_ms {
                Some(ms) => times.push(ms),
                None => not_recovered += 1,
            }
        }
        times.sort_unstable();
        let recovery = Recovery {
            heals: times.len() as u64 + not_recovered,
            not_recovered,
            p50_ms: times.get(times.len() / 2).copied().unwrap_or(0),
            max_ms: times.last().copied().unwrap_or(0),
        };
        let on_limit = h
            .run
            .as_ref()
            .and_then(|r| r.sites.values().next())
            .map(|p| p.on_limit.clone())
            .unwrap_or_default();
        Summary {
            seed: spec.seed,
            scenario: spec.scenario.name().into(),
            on_limit,
            duration_s: spec.duration.as_secs(),
            faults,
            operations,
            anomalies,
            recovery,
            error: None,
            history: String::new(),
            replay: spec.replay_command(),
        }
    }

    /// Whether the run found nothing wrong.
    pub fn passed(&self) -> bool {
        self.anomalies.is_empty() && self.error.is_none()
    }

    /// The summary as a readable text table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let verdict = if self.passed() { "PASS" } else { "FAIL" };
        let _ = writeln!(
            t,
            "== chaos {} seed {} ({} s, on_limit {}): {verdict}",
            self.scenario, self.seed, self.duration_s, self.on_limit
        );
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(k, n)| format!("{k} x{n}"))
            .collect();
        let _ = writeln!(
            t,
            "faults: {}",
            if faults.is_empty() {
                "none".into()
            } else {
                faults.join(", ")
            }
        );
        let _ = writeln!(
            t,
            "{:<18} {:>7} {:>7} {:>8}",
            "operation", "ok", "fail", "unknown"
        );
        let mut total = Outcomes::default();
        for (k, o) in &self.operations {
            let _ = writeln!(t, "{k:<18} {:>7} {:>7} {:>8}", o.ok, o.fail, o.unknown);
            total.ok += o.ok;
            total.fail += o.fail;
            total.unknown += o.unknown;
        }
        let _ = writeln!(
            t,
            "{:<18} {:>7} {:>7} {:>8}",
            "total", total.ok, total.fail, total.unknown
        );
        let r = &self.recovery;
        let _ = writeln!(
            t,
            "recovery after {} heals: p50 {} ms, max {} ms, not recovered {}",
            r.heals, r.p50_ms, r.max_ms, r.not_recovered
        );
        if self.anomalies.is_empty() {
            let _ = writeln!(t, "anomalies: none");
        }
        for a in &self.anomalies {
            let _ = writeln!(t, "ANOMALY {:?}: {} (ops {:?})", a.kind, a.message, a.ops);
        }
        if let Some(e) = &self.error {
            let _ = writeln!(t, "RUN FAILED: {e}");
        }
        if !self.passed() {
            let _ = writeln!(t, "history: {}\nreplay: {}", self.history, self.replay);
        }
        t
    }
}

/// Totals over several runs (the soak's table): runs, faults by kind, operations by outcome,
/// anomalies, worst recovery.
pub fn totals(runs: &[Summary]) -> String {
    let mut faults: BTreeMap<&str, u64> = BTreeMap::new();
    let mut ops = Outcomes::default();
    let (mut anomalies, mut failed, mut worst) = (0, 0, 0);
    for s in runs {
        for (k, n) in &s.faults {
            *faults.entry(k).or_default() += n;
        }
        for o in s.operations.values() {
            ops.ok += o.ok;
            ops.fail += o.fail;
            ops.unknown += o.unknown;
        }
        anomalies += s.anomalies.len();
        failed += u64::from(!s.passed());
        worst = worst.max(s.recovery.max_ms);
    }
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| runs | failed | operations ok / fail / unknown | anomalies | worst recovery |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|");
    let _ = writeln!(
        t,
        "| {} | {failed} | {} / {} / {} | {anomalies} | {worst} ms |",
        runs.len(),
        ops.ok,
        ops.fail,
        ops.unknown
    );
    let _ = writeln!(t, "\n| fault | injected |\n|---|---|");
    for (k, n) in faults {
        let _ = writeln!(t, "| {k} | {n} |");
    }
    t
}

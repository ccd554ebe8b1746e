//! The report: everything measured as JSON (`bench-results/<time>.json`) and the tables of
//! docs/performance.md as markdown beside it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::scale::{Footprint, Scale};
use crate::target::System;
use crate::workloads::{Plan, Row, Workload};

/// One run.
#[derive(Serialize)]
pub(crate) struct Report {
    pub command: String,
    pub started_at: String,
    pub machine: String,
    pub plan: Plan,
    pub rows: Vec<Row>,
    pub etcd_footprint: Option<Footprint>,
    pub sessync_pool_footprint: Option<Footprint>,
    pub scale: Option<Scale>,
}

fn find<'a>(
    rows: &'a [Row],
    s: System,
    w: Workload,
    mode: &str,
    clients: usize,
) -> Option<&'a Row> {
    rows.iter().find(|r| {
        r.system == s
            && r.workload == w
            && r.mode == mode
            && (mode == "open" || r.point.clients == clients)
    })
}

fn cell(r: Option<&Row>) -> String {
    match r {
        Some(r) => {
            let errors = if r.point.errors > 0 {
                format!(", {} errors", r.point.errors)
            } else {
                String::new()
            };
            format!(
                "{:.0} | {:.2} / {:.2} / {:.2}{errors}",
                r.point.throughput, r.point.p50_ms, r.point.p99_ms, r.point.p999_ms
            )
        }
        None => "— | —".into(),
    }
}

fn ratio(a: Option<&Row>, b: Option<&Row>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b.point.throughput > 0.0 => {
            format!("{:.2}", a.point.throughput / b.point.throughput)
        }
        _ => "—".into(),
    }
}

impl Report {
    /// The markdown tables.
    pub(crate) fn markdown(&self) -> String {
        let mut m = String::new();
        let _ = writeln!(m, "Command: `{}`  ", self.command);
        let _ = writeln!(
            m,
            "Started {} on {}; {:?} per point after {:?} of warm-up; pool of {} live sessions.\n",
            self.started_at, self.machine, self.plan.duration, self.plan.warmup, self.plan.pool
        );
        let _ = writeln!(
            m,
            "Closed loop (throughput in req/s; latency p50 / p99 / p99.9 in ms):\n"
        );
        let _ = writeln!(m, "| workload | clients | sessync req/s | sessync ms | etcd req/s | etcd ms | sessync/etcd |");
        let _ = writeln!(m, "|---|---:|---:|---|---:|---|---:|");
        for &w in &self.plan.workloads {
            for &c in &self.plan.clients {
                let s = find(&self.rows, System::Sessync, w, "closed", c);
                let e = find(&self.rows, System::Etcd, w, "closed", c);
                let _ = writeln!(
                    m,
                    "| {} | {c} | {} | {} | {} |",
                    w.label(),
                    cell(s),
                    cell(e),
                    ratio(s, e)
                );
            }
        }
        let open: Vec<&Row> = self.rows.iter().filter(|r| r.mode == "open").collect();
        if !open.is_empty() {
            let _ = writeln!(m, "\nOpen loop at half of etcd's peak closed-loop rate (latency from when each request was due, ms):\n");
            let _ = writeln!(m, "| workload | rate req/s | sessync p50 / p99 / p99.9 | etcd p50 / p99 / p99.9 | p99 sessync/etcd |");
            let _ = writeln!(m, "|---|---:|---|---|---:|");
            for &w in &self.plan.workloads {
                let s = find(&self.rows, System::Sessync, w, "open", 0);
                let e = find(&self.rows, System::Etcd, w, "open", 0);
                if let (Some(s), Some(e)) = (s, e) {
                    let lat = |r: &Row| {
                        let errors = if r.point.errors > 0 {
                            format!(" ({} errors)", r.point.errors)
                        } else {
                            String::new()
                        };
                        format!(
                            "{:.2} / {:.2} / {:.2}{errors}",
                            r.point.p50_ms, r.point.p99_ms, r.point.p999_ms
                        )
                    };
                    let _ = writeln!(
                        m,
                        "| {} | {} | {} | {} | {:.2} |",
                        w.label(),
                        s.point.rate.unwrap_or(0),
                        lat(s),
                        lat(e),
                        s.point.p99_ms / e.point.p99_ms.max(0.001)
                    );
                }
            }
        }
        let _ = writeln!(m, "\nFootprint (average per node):\n");
        let _ = writeln!(
            m,
            "| system | live sessions | RSS bytes / session | disk bytes / session |"
        );
        let _ = writeln!(m, "|---|---:|---:|---:|");
        let fp = |m: &mut String, name: &str, f: &Footprint| {
            let _ = writeln!(
                m,
                "| {name} | {} | {:.0} | {:.0} |",
                f.live_sessions, f.rss_bytes_per_session, f.disk_bytes_per_session
            );
        };
        if let Some(f) = &self.sessync_pool_footprint {
            fp(&mut m, "sessync", f);
        }
        if let Some(f) = &self.etcd_footprint {
            fp(&mut m, "etcd", f);
        }
        if let Some(s) = &self.scale {
            fp(&mut m, "sessync", &s.footprint);
            let _ = writeln!(m, "\n| sessync figure | value |\n|---|---:|");
            let _ = writeln!(m, "| Raft entries per 1,000 touches of busy sessions | {:.1} ({} entries, {} touches) |", s.raft_entries_per_1000_touches, s.raft_entries_for_touches, s.touches);
            let _ = writeln!(
                m,
                "| restart to ready, {} sessions | {} ms |",
                s.footprint.live_sessions, s.restart_to_ready_ms
            );
            let _ = writeln!(
                m,
                "| kill -9 of the leader to the first acknowledged write | {} ms |",
                s.leader_kill_to_first_write_ms
            );
            if let Some(why) = &s.stopped_early {
                let _ = writeln!(m, "\nThe session count stopped short: {why}.");
            }
        }
        m
    }

    /// Writes `<out>/<stamp>.json` and `<out>/<stamp>.md`; returns the JSON's path.
    pub(crate) fn write(&self, out: &Path, stamp: &str) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(out)?;
        let json = out.join(format!("{stamp}.json"));
        std::fs::write(&json, serde_json::to_vec_pretty(self)?)?;
        std::fs::write(out.join(format!("{stamp}.md")), self.markdown())?;
        Ok(json)
    }
}

//! The figures beyond throughput, on the sessync cluster: Raft entries per 1,000 touches of busy
//! sessions, memory and disk per live session at a large session count, a node's restart to
//! ready with those sessions, and the time from `kill -9` of the leader to the first
//! acknowledged write. Memory and disk are read for etcd too, at the pool size.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use sessync_chaos_tests::TestCluster;
use sessync_client::Client;

use crate::load::closed_loop;
use crate::target::{Conn, Live, Read};
use crate::workloads::progress;

/// A process's resident memory, from `/proc/<pid>/status`.
pub(crate) fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("no VmRSS line")?;
    Ok(kb * 1024)
}

/// Bytes of every file under `dir`.
pub(crate) fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The machine's available memory, from `/proc/meminfo`.
fn mem_available() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(u64::MAX, |kb| kb * 1024)
}

/// Memory and disk per live session, averaged over a cluster's nodes.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Footprint {
    pub live_sessions: u64,
    pub rss_bytes_per_node: Vec<u64>,
    pub disk_bytes_per_node: Vec<u64>,
    pub rss_bytes_per_session: f64,
    pub disk_bytes_per_session: f64,
}

pub(crate) fn footprint(live: u64, pids: &[u32], dirs: &[std::path::PathBuf]) -> Footprint {
    let rss: Vec<u64> = pids.iter().map(|&p| rss_bytes(p).unwrap_or(0)).collect();
    let disk: Vec<u64> = dirs.iter().map(|d| disk_bytes(d)).collect();
    let per = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len().max(1) as f64 / live.max(1) as f64;
    Footprint {
        live_sessions: live,
        rss_bytes_per_session: per(&rss),
        disk_bytes_per_session: per(&disk),
        rss_bytes_per_node: rss,
        disk_bytes_per_node: disk,
    }
}

/// The sessync-only figures.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Scale {
    pub touches: u64,
    pub raft_entries_for_touches: u64,
    pub raft_entries_per_1000_touches: f64,
    pub footprint: Footprint,
    /// Sessions the load stopped at, if the machine ran low on memory before the target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<String>,
    pub restart_to_ready_ms: u64,
    pub leader_kill_to_first_write_ms: u64,
}

async fn last_log_index(client: &Client) -> anyhow::Result<u64> {
    Ok(client.cluster_status().await?.last_log_index.unwrap_or(0))
}

/// `clients` busy sessions, each validated with touch back to back by its own client for
/// `duration`: the touches made and the Raft entries the leader's log grew by meanwhile.
pub(crate) async fn touches(
    cluster: &TestCluster,
    conns: &[Conn],
    busy: Vec<Live>,
    duration: Duration,
) -> anyhow::Result<(u64, u64)> {
    let leader = cluster.leader().await?;
    let admin = cluster.admin_client_for(leader);
    let before = last_log_index(&admin).await?;
    let n = busy.len().min(conns.len());
    let (conns, busy) = (
        std::sync::Arc::new(conns.to_vec()),
        std::sync::Arc::new(busy),
    );
    let point = closed_loop(n, Duration::ZERO, duration, move |c, _| {
        let (conns, busy) = (conns.clone(), busy.clone());
        async move {
            match conns[c]
                .validate(&busy[c], Read::Linearizable, true)
                .await?
            {
                true => Ok(()),
                false => Err(anyhow::anyhow!("a busy session validated as not valid")),
            }
        }
    })
    .await;
    let after = last_log_index(&admin).await?;
    Ok((point.ops, after.saturating_sub(before)))
}

/// Creates sessions until `target` are live (or the machine has under 3 GiB available), with
/// `conns` clients; returns how many are live and why it stopped early, if it did.
pub(crate) async fn grow(
    conns: &[Conn],
    live: u64,
    target: u64,
    first_user: u64,
) -> anyhow::Result<(u64, Option<String>)> {
    const LOW_MEMORY: u64 = 3 << 30;
    const STEP: u64 = 50_000;
    let mut live = live;
    let mut next = first_user;
    let started = Instant::now();
    while live < target {
        if mem_available() < LOW_MEMORY {
            return Ok((
                live,
                Some(format!(
                    "stopped at {live} sessions: under 3 GiB of memory left"
                )),
            ));
        }
        let n = STEP.min(target - live);
        crate::target::preload(conns, n, next).await?;
        next += n;
        live += n;
        progress(&format!(
            "{live} live sessions ({:.0} creates/s)",
            (live - first_user.min(live)) as f64 / started.elapsed().as_secs_f64()
        ));
    }
    Ok((live, None))
}

/// A follower killed with `kill -9` and started again: milliseconds from its start to its
/// `/readyz` answering ready (its state loaded, caught up with the leader).
pub(crate) async fn restart_to_ready(cluster: &mut TestCluster) -> anyhow::Result<u64> {
    let leader = cluster.leader().await?;
    let follower = cluster
        .node_ids()
        .into_iter()
        .find(|&id| id != leader)
        .context("no follower")?;
    cluster.kill(follower);
    let started = Instant::now();
    cluster.restart(follower).await?;
    let admin = cluster.admin_client_for(follower);
    loop {
        if admin.readyz().await.unwrap_or(false) {
            return Ok(started.elapsed().as_millis() as u64);
        }
        if started.elapsed() > Duration::from_secs(300) {
            anyhow::bail!("node {follower} was not ready 300 s after its restart");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The leader killed with `kill -9`, then creates sent (each bounded by 250 ms per node tried)
/// to the other nodes until one is acknowledged: milliseconds from the kill to that answer.
pub(crate) async fn leader_kill(cluster: &mut TestCluster, user: u64) -> anyhow::Result<u64> {
    let leader = cluster.leader().await?;
    let others: Vec<String> = cluster
        .node_ids()
        .into_iter()
        .filter(|&id| id != leader)
        .map(|id| cluster.url(id))
        .collect();
    let client = Client::builder(others, cluster.app_key())
        .timeout(Duration::from_secs(2))
        .attempt_timeout(Duration::from_millis(250))
        .build()?;
    let conn = Conn::Sessync(client);
    cluster.kill(leader);
    let started = Instant::now();
    loop {
        if conn.create(user).await.is_ok() {
            let ms = started.elapsed().as_millis() as u64;
            cluster.restart(leader).await?;
            return Ok(ms);
        }
        if started.elapsed() > Duration::from_secs(60) {
            anyhow::bail!("no write acknowledged within 60 s of the leader's kill");
        }
    }
}

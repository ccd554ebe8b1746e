//! Backups, restores and recoveries with the real binaries: `sessyncctl backup save` from a
//! cluster under load, restored with `sessync-node restore` into a new cluster on other ports;
//! a survivor of a lost quorum made a one-node cluster with `sessync-node recover`, grown back
//! to three, and deaf to the old nodes when they return.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use futures::StreamExt;
use serde_json::Value;
use sessync_chaos_tests::{ClusterOptions, TestCluster};
use sessync_client::Client;
use sessync_proto::api::{Consistency, CreateSessionRequest, ValidateRequest};
use sessync_proto::{SessionId, UserId};
use tokio_util::sync::CancellationToken;

use crate::ctl::ctl;

/// The most writes a background writer makes, and the longest it runs.
const WRITER_MAX_OPS: u32 = 5_000;
const WRITER_MAX_TIME: Duration = Duration::from_secs(90);

/// A session a test created and was acknowledged.
#[derive(Clone)]
struct Made {
    id: SessionId,
    token: String,
}

async fn create(client: &Client, user: &str) -> anyhow::Result<Made> {
    let r = client
        .create_session(&CreateSessionRequest {
            user_id: UserId::parse_field(user, "user_id")?,
            device: Default::default(),
            origin: None,
            idempotency_key: None,
        })
        .await?;
    Ok(Made {
        id: r.session.session_id,
        token: r.token,
    })
}

/// When a write began, and how long it took.
type Timed = (Instant, Duration);

/// Creates sessions until `stop` (bounded in count and time): each acknowledged one, and each
/// write's (start, latency).
fn writer(
    client: Client,
    prefix: &'static str,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<(Vec<Made>, Vec<Timed>)> {
    tokio::spawn(async move {
        let (mut made, mut times) = (Vec::new(), Vec::new());
        let began = Instant::now();
        for i in 0..WRITER_MAX_OPS {
            if stop.is_cancelled() || began.elapsed() > WRITER_MAX_TIME {
                break;
            }
            let at = Instant::now();
            if let Ok(m) = create(&client, &format!("{prefix}-{}", i % 50)).await {
                times.push((at, at.elapsed()));
                made.push(m);
            }
        }
        (made, times)
    })
}

/// Whether every session in `made` validates through `client`.
async fn all_valid(client: &Client, made: &[Made]) -> anyhow::Result<()> {
    for m in made {
        let v = client
            .validate(&ValidateRequest {
                token: m.token.clone(),
                touch: false,
                consistency: Consistency::Linearizable,
            })
            .await?;
        if !v.valid {
            let seen = client.get_session(&m.id).await;
            anyhow::bail!("session {} is not valid: {v:?}; it reads {seen:?}", m.id);
        }
    }
    Ok(())
}

/// Runs `sessync-node ARGS` to completion; its stdout as JSON.
fn node_command(args: &[&str]) -> anyhow::Result<Value> {
    let bin = sessync_chaos_tests::node_binary()?;
    let out = Command::new(bin).args(args).output()?;
    ensure!(
        out.status.success(),
        "sessync-node {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).context("its report is not JSON")
}

/// No session limit: every session made stays active, so "valid" means "there".
fn unlimited() -> ClusterOptions {
    ClusterOptions {
        policy_toml: "max_concurrent_sessions = 0".to_owned(),
        ..ClusterOptions::default()
    }
}

fn p(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_into_a_new_cluster() -> anyhow::Result<()> {
    let old = TestCluster::start(unlimited()).await?;
    let app = old.app_client();
    // `SESSYNC_BACKUP_SESSIONS` fills a larger state for a measurement (docs/testing.md).
    let fill: usize = std::env::var("SESSYNC_BACKUP_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let before: Vec<Made> = futures::stream::iter(0..fill)
        .map(|i| {
            let app = app.clone();
            async move { create(&app, &format!("before-{}", i % 1000)).await }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    // Under load: a writer runs through the whole backup.
    let stop = CancellationToken::new();
    let load = writer(app.clone(), "during", stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let file = old.dir().join("site.backup");
    let endpoints = old.urls().join(",");
    let (started, saved) = (Instant::now(), {
        let file = file.clone();
        let key = old.admin_key().to_owned();
        tokio::task::spawn_blocking(move || {
            ctl(
                &[("SESSYNC_ENDPOINTS", &endpoints), ("SESSYNC_API_KEY", &key)],
                &["--output", "json", "backup", "save", p(&file)],
            )
        })
        .await??
    });
    let finished = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    let (during, times) = load.await?;
    ensure!(saved.code == 0, "backup save failed: {}", saved.err);
    let header = saved.json()?;
    let index = header["index"].as_u64().context("index")?;
    let digest = header["digest"].as_str().context("digest")?.to_owned();
    let mut in_window: Vec<Duration> = times
        .iter()
        .filter(|(at, d)| *at + *d >= started && *at <= finished)
        .map(|(_, d)| *d)
        .collect();
    let mut outside: Vec<Duration> = times
        .iter()
        .filter(|(at, d)| *at + *d < started || *at > finished)
        .map(|(_, d)| *d)
        .collect();
    in_window.sort();
    outside.sort();
    let median = |v: &[Duration]| v.get(v.len() / 2).copied().unwrap_or_default();
    println!(
        "backup: index {index}, {} bytes, save took {} ms; writes during it: {} (median {:?}, \
         slowest {:?}), outside it: {} (median {:?}, slowest {:?})",
        header["snapshot_bytes"],
        header["took_ms"],
        in_window.len(),
        median(&in_window),
        in_window.last(),
        outside.len(),
        median(&outside),
        outside.last()
    );
    ensure!(
        !in_window.is_empty(),
        "the writer made no write during the backup"
    );

    // The file verifies; a damaged copy says what is wrong.
    let verify = |f: &Path| ctl(&[], &["--output", "json", "backup", "verify", p(f)]);
    let ok = verify(&file)?;
    ensure!(ok.code == 0, "verify: {}", ok.err);
    let bytes = std::fs::read(&file)?;
    let short = old.dir().join("short.backup");
    std::fs::write(&short, &bytes[..bytes.len() - 7])?;
    let run = verify(&short)?;
    ensure!(
        run.code != 0 && run.err.contains("truncated"),
        "{}",
        run.err
    );
    let mut flipped = bytes.clone();
    let last = flipped.len() - 3;
    flipped[last] ^= 0x20;
    let bad = old.dir().join("flipped.backup");
    std::fs::write(&bad, &flipped)?;
    let run = verify(&bad)?;
    ensure!(
        run.code != 0 && run.err.contains("checksum mismatch"),
        "{}",
        run.err
    );

    // A new cluster on other ports: nodes 1 and 2 restored, node 3 starts empty.
    let mut new = TestCluster::start(ClusterOptions {
        init: false,
        ..unlimited()
    })
    .await?;
    let members: Vec<String> = new
        .node_ids()
        .iter()
        .map(|&id| format!("{id}={}", new.raft_url(id)))
        .collect();
    let mut reports = BTreeMap::new();
    for id in new.node_ids() {
        new.wipe(id);
    }
    for id in [1, 2] {
        let config = new.config_path(id);
        let mut args = vec!["restore", "--config", p(&config), "--from", p(&file)];
        for m in &members {
            args.extend(["--member", m]);
        }
        let report = node_command(&args)?;
        ensure!(report["index"].as_u64() == Some(index), "{report}");
        ensure!(
            report["content_digest"].as_str() == Some(&digest),
            "{report}"
        );
        reports.insert(id, report);
    }
    ensure!(
        reports[&1]["cluster_id"] == reports[&2]["cluster_id"],
        "two nodes restored alike name one cluster: {reports:?}"
    );
    // Restoring into a directory with data is refused.
    let again = Command::new(sessync_chaos_tests::node_binary()?)
        .args([
            "restore",
            "--config",
            p(&new.config_path(1)),
            "--from",
            p(&file),
        ])
        .output()?;
    ensure!(
        !again.status.success() && String::from_utf8_lossy(&again.stderr).contains("holds data"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    for id in new.node_ids() {
        new.restart(id).await?;
    }
    new.leader().await?;
    new.wait_converged(Duration::from_secs(60)).await?;
    let status = new.admin_client().cluster_status().await?;
    let old_status = old.admin_client().cluster_status().await?;
    ensure!(
        status.cluster_id.is_some() && status.cluster_id != old_status.cluster_id,
        "a new cluster id: {:?} vs {:?}",
        status.cluster_id,
        old_status.cluster_id
    );
    ensure!(
        status.cluster_id.as_deref() == reports[&1]["cluster_id"].as_str(),
        "{status:?}"
    );
    // Every session acknowledged before the backup is there, the same on every node.
    for id in new.node_ids() {
        all_valid(&new.app_client_for(id), &before).await?;
    }
    let old_admin = old.admin_client();
    let new_admin = new.admin_client();
    for m in before.iter().step_by((before.len() / 30).max(1)) {
        let (a, b) = (
            old_admin.get_session(&m.id).await?,
            new_admin.get_session(&m.id).await?,
        );
        ensure!(
            serde_json::to_value(&a)? == serde_json::to_value(&b)?,
            "session {} differs: {a:?} vs {b:?}",
            m.id
        );
    }
    new.assert_identical_state().await?;
    println!(
        "restored: {} sessions acknowledged before the backup all there; {} made during it",
        before.len(),
        during.len()
    );
    Ok(())
}

/// The value of `sessync_raft_rpc_refused_total{reason="other_cluster"}` on a node.
async fn refused_other_cluster(admin: &Client) -> anyhow::Result<f64> {
    let text = admin.metrics().await?;
    Ok(text
        .lines()
        .filter(|l| l.contains("raft_rpc_refused") && l.contains("other_cluster"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_survivor_of_a_lost_quorum_recovers_and_the_old_nodes_stay_out() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(unlimited()).await?;
    // The survivor is the leader: every acknowledged write is in its log.
    let survivor = cluster.leader().await?;
    let lost: Vec<u64> = cluster
        .node_ids()
        .into_iter()
        .filter(|n| *n != survivor)
        .collect();
    let app = cluster.app_client_for(survivor);
    let stop = CancellationToken::new();
    let load = writer(app.clone(), "load", stop.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    for &id in &lost {
        cluster.kill(id);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    let (acked, _) = load.await?;
    ensure!(!acked.is_empty(), "the writer made no write");
    cluster.kill(survivor);

    let config = cluster.config_path(survivor);
    let started = Instant::now();
    let report = node_command(&["recover", "--config", p(&config)])?;
    println!(
        "recover took {} ms: {report}",
        started.elapsed().as_millis()
    );
    ensure!(
        report["voters_before"].as_array().map(Vec::len) == Some(3),
        "{report}"
    );
    cluster.restart(survivor).await?;
    let admin = cluster.admin_client_for(survivor);
    let status = admin.cluster_status().await?;
    ensure!(
        status.role == "leader",
        "the survivor leads alone: {status:?}"
    );
    ensure!(
        status.cluster_id.as_deref() == report["cluster_id"].as_str(),
        "{status:?}"
    );
    all_valid(&app, &acked).await?;

    // Two fresh nodes join the recovered cluster.
    let mut voters = vec![survivor];
    for _ in 0..2 {
        let id = cluster.add_node().await?;
        admin.add_learner(id, cluster.raft_url(id)).await?;
        voters.push(id);
    }
    admin.change_membership(voters.clone(), false).await?;
    for &id in &voters {
        all_valid(&cluster.app_client_for(id), &acked).await?;
    }
    let term = admin.cluster_status().await?.term;

    // The lost nodes come back with their old data: they are refused, and change nothing.
    for &id in &lost {
        cluster.restart(id).await?;
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    let refused = refused_other_cluster(&admin).await?;
    let after = admin.cluster_status().await?;
    ensure!(
        refused > 0.0,
        "the survivor refused none of the old nodes' requests"
    );
    ensure!(
        after.role == "leader" && after.term == term,
        "the old nodes disturbed the recovered cluster: term {term} -> {}, {after:?}",
        after.term
    );
    ensure!(
        refused > 0.0,
        "the survivor refused none of the old nodes' requests"
    );
    let members: Vec<u64> = after.members.iter().map(|m| m.node_id).collect();
    for old in &lost {
        ensure!(
            !members.contains(old),
            "old node {old} is a member: {after:?}"
        );
    }
    all_valid(&cluster.app_client_for(survivor), &acked).await?;
    println!(
        "recovered: {} acknowledged sessions all there; {refused} requests from the old nodes refused",
        acked.len()
    );
    Ok(())
}

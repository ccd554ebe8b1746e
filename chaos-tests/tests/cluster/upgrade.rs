//! Upgrades without a stall: a rolling restart of every node (SIGTERM, start again with the
//! same config, followers first, the leader last) while the Rust client over all three
//! endpoints keeps creating and validating sessions, with no request failing and the longest
//! write stall measured; leadership handed to a named node and to the best one; a leader told
//! to stop hands over before it goes; a drained node reports not ready.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sessync_chaos_tests::{login, ClusterOptions, TestCluster};
use sessync_client::{Client, ClientError, Method};
use sessync_proto::api::{Consistency, ValidateRequest};
use tokio::time::Instant;

use crate::ctl::{ctl, Run};

/// Concurrent writers of the load (one reader validates what they create).
const WORKERS: usize = 2;
/// Most creates of one writer.
const MAX_ROUNDS: usize = 20_000;
/// Longest the load runs, whatever happens.
const MAX_LOAD: Duration = Duration::from_secs(240);
/// How long a restarted node may take to be ready again.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// What the load saw.
#[derive(Default)]
struct Load {
    requests: u64,
    failures: Vec<String>,
    /// When each acknowledged write (a create) finished, across workers.
    writes_done: Vec<Instant>,
    slowest_write: Duration,
    /// The slowest validate (a linearizable read).
    slowest_read: Duration,
    /// Tokens of the acknowledged creates.
    tokens: Vec<String>,
}

impl Load {
    fn merge(&mut self, other: Load) {
        self.requests += other.requests;
        self.failures.extend(other.failures);
        self.writes_done.extend(other.writes_done);
        self.slowest_write = self.slowest_write.max(other.slowest_write);
        self.slowest_read = self.slowest_read.max(other.slowest_read);
        self.tokens.extend(other.tokens);
    }

    /// The longest time between two consecutive acknowledged writes, and when it began.
    fn longest_stall(&mut self) -> (Duration, Option<Instant>) {
        self.writes_done.sort();
        self.writes_done
            .windows(2)
            .map(|w| (w[1] - w[0], Some(w[0])))
            .max()
            .unwrap_or_default()
    }
}

fn validate_request(token: &str) -> ValidateRequest {
    ValidateRequest {
        token: token.to_owned(),
        touch: false,
        consistency: Consistency::Linearizable,
    }
}

/// One writer: creates sessions, one after another, until `stop` (or its bounds), and hands
/// each token to the reader.
async fn writer(
    client: Client,
    n: usize,
    stop: Arc<AtomicBool>,
    tokens: tokio::sync::mpsc::UnboundedSender<String>,
) -> Load {
    let mut load = Load::default();
    let started = Instant::now();
    for round in 0..MAX_ROUNDS {
        if stop.load(Ordering::Relaxed) || started.elapsed() > MAX_LOAD {
            break;
        }
        let t0 = Instant::now();
        load.requests += 1;
        match client
            .create_session(&login(&format!("roll-{n}-{round}")))
            .await
        {
            Ok(created) => {
                let done = Instant::now();
                load.writes_done.push(done);
                load.slowest_write = load.slowest_write.max(done - t0);
                let _ = tokens.send(created.token.clone());
                load.tokens.push(created.token);
            }
            Err(e) => load.failures.push(format!("create {n}/{round}: {e}")),
        }
    }
    load
}

/// The reader: validates every token the writers hand it, as they come (linearizable: each
/// acknowledged session is there), until they are done.
async fn reader(client: Client, mut tokens: tokio::sync::mpsc::UnboundedReceiver<String>) -> Load {
    let mut load = Load::default();
    while let Some(token) = tokens.recv().await {
        load.requests += 1;
        let t0 = Instant::now();
        let validated = client.validate(&validate_request(&token)).await;
        load.slowest_read = load.slowest_read.max(t0.elapsed());
        match validated {
            Ok(v) if v.valid => {}
            Ok(v) => load
                .failures
                .push(format!("validate: not valid: {:?}", v.reason)),
            Err(e) => load.failures.push(format!("validate: {e}")),
        }
    }
    load
}

/// The load running in the background: [`WORKERS`] writers and one reader.
struct Background {
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<Load>>,
}

impl Background {
    fn start(client: &Client) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut workers: Vec<_> = (0..WORKERS)
            .map(|n| tokio::spawn(writer(client.clone(), n, stop.clone(), tx.clone())))
            .collect();
        workers.push(tokio::spawn(reader(client.clone(), rx)));
        Background { stop, workers }
    }

    async fn finish(self) -> Load {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Load::default();
        for w in self.workers {
            all.merge(w.await.expect("a load task panicked"));
        }
        all
    }
}

/// `GET /readyz` of node `id`: its status and body.
async fn readyz(cluster: &TestCluster, id: u64) -> anyhow::Result<(u16, serde_json::Value)> {
    let probe = cluster.app_client_for(id);
    let (status, body) = probe.request_raw(Method::GET, "/readyz", None, &[]).await?;
    Ok((status, serde_json::from_slice(&body)?))
}

/// Waits until node `id` answers `/readyz` with `status`; its body then.
async fn until_readyz(
    cluster: &TestCluster,
    id: u64,
    status: u16,
) -> anyhow::Result<serde_json::Value> {
    let started = Instant::now();
    loop {
        let last = readyz(cluster, id).await;
        if let Ok((got, body)) = &last {
            if *got == status {
                return Ok(body.clone());
            }
        }
        anyhow::ensure!(
            started.elapsed() < READY_WITHIN,
            "node {id} did not answer /readyz {status} within {READY_WITHIN:?}: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every token still validates (no acknowledged write was lost).
async fn all_valid(client: &Client, tokens: &[String]) -> anyhow::Result<()> {
    for token in tokens {
        let v = client.validate(&validate_request(token)).await?;
        anyhow::ensure!(v.valid, "an acknowledged session is gone: {:?}", v.reason);
    }
    Ok(())
}

/// Runs `sessyncctl --output json|table ARGS` with the admin key over the cluster's nodes.
fn admin_ctl(cluster: &TestCluster, json: bool, args: &[&str]) -> Run {
    let mut all = vec!["--timeout", "30s", "--output"];
    all.push(if json { "json" } else { "table" });
    all.extend_from_slice(args);
    let endpoints = cluster.urls().join(",");
    ctl(
        &[
            ("SESSYNC_ENDPOINTS", &endpoints),
            ("SESSYNC_API_KEY", cluster.admin_key()),
        ],
        &all,
    )
    .expect("sessyncctl runs")
}

/// `line` without its terminal colour codes (`ESC [ ... m`).
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether node `id`'s log says it handed leadership over while stopping.
fn handed_over_on_stop(cluster: &TestCluster, id: u64) -> anyhow::Result<bool> {
    let log = std::fs::read_to_string(cluster.log_path(id))?;
    Ok(log.lines().map(plain).any(|l| {
        l.contains("stopping: leadership handed over")
            && (l.contains("handed_over=true") || l.contains("\"handed_over\":true"))
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_load_fails_no_request() -> anyhow::Result<()> {
    // The shipped Raft timings (250 ms heartbeat, 1-2 s election timeout), not the harness's
    // fast ones: the stall an operator sees is the figure.
    let raft_toml =
        "heartbeat_interval = \"250ms\"\nelection_timeout_min = \"1s\"\nelection_timeout_max = \"2s\""
            .to_owned();
    let mut cluster = TestCluster::start(ClusterOptions {
        raft_toml,
        ..ClusterOptions::default()
    })
    .await?;
    let leader = cluster.leader().await?;
    let mut order: Vec<u64> = cluster.node_ids();
    order.retain(|id| *id != leader);
    order.push(leader);

    let load = Background::start(&cluster.app_client());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rolling = Instant::now();
    let mut timeline = Vec::new();
    let at = |t: Instant| t.saturating_duration_since(rolling).as_millis();
    for id in &order {
        timeline.push(format!("{} ms SIGTERM {id}", at(Instant::now())));
        cluster.stop(*id).await?;
        timeline.push(format!("{} ms {id} exited", at(Instant::now())));
        cluster.restart(*id).await?;
        timeline.push(format!("{} ms {id} started", at(Instant::now())));
        until_readyz(&cluster, *id, 200).await?;
        timeline.push(format!("{} ms {id} ready", at(Instant::now())));
        // Everyone ready again before the next node goes.
        for other in cluster.node_ids() {
            until_readyz(&cluster, other, 200).await?;
        }
    }
    let took = rolling.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut seen = load.finish().await;
    let (stall, from) = seen.longest_stall();
    println!(
        "rolling restart of {} nodes (leader {leader} last) in {took:?}: {} requests, {} writes, \
         {} failed; longest write stall {stall:?} (from {} ms), slowest write {:?}, slowest \
         validate {:?}; {}",
        order.len(),
        seen.requests,
        seen.writes_done.len(),
        seen.failures.len(),
        from.map_or(0, at),
        seen.slowest_write,
        seen.slowest_read,
        timeline.join(", ")
    );
    assert!(
        seen.failures.is_empty(),
        "{} of {} requests failed, the first: {:?}",
        seen.failures.len(),
        seen.requests,
        &seen.failures[..seen.failures.len().min(5)]
    );
    assert!(seen.writes_done.len() > 10, "the load barely ran");
    assert!(
        handed_over_on_stop(&cluster, leader)?,
        "the leader did not hand over"
    );
    let new_leader = cluster.leader().await?;
    assert_ne!(new_leader, leader);
    all_valid(&cluster.app_client(), &seen.tokens).await?;
    cluster.assert_identical_state().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_moves_to_a_named_node_and_to_the_best_one() -> anyhow::Result<()> {
    let cluster = TestCluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader().await?;
    let followers: Vec<u64> = cluster
        .node_ids()
        .into_iter()
        .filter(|id| *id != leader)
        .collect();
    let load = Background::start(&cluster.app_client());
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Named, asked of a follower (which forwards it to the leader).
    let to = followers[1];
    let asked = cluster.admin_client_for(followers[0]);
    let t = asked.transfer_leader(Some(to)).await?;
    assert_eq!((t.leader, t.previous_leader), (to, leader), "{t:?}");
    println!("hand-over {leader} -> {to} took {} ms", t.took_ms);
    assert_eq!(cluster.leader().await?, to);

    // Errors name what is wrong.
    match asked.transfer_leader(Some(99)).await {
        Err(ClientError::BadRequest { field, .. }) => assert_eq!(field.as_deref(), Some("to")),
        other => panic!("a transfer to node 99: {other:?}"),
    }

    // The best voter, through the CLI (JSON), then the text form.
    let t = admin_ctl(&cluster, true, &["cluster", "transfer-leader"])
        .expect(0)?
        .json()?;
    assert_eq!(t["previous_leader"], to, "{t}");
    let best = t["leader"].as_u64().expect("a leader id");
    assert_ne!(best, to);
    assert_eq!(cluster.leader().await?, best);
    let other = cluster
        .node_ids()
        .into_iter()
        .find(|id| *id != best)
        .expect("another node");
    let text = admin_ctl(
        &cluster,
        false,
        &["cluster", "transfer-leader", "--to", &other.to_string()],
    )
    .expect(0)?
    .out;
    assert!(
        text.starts_with(&format!(
            "leadership handed over from node {best} to node {other}"
        )),
        "{text}"
    );
    assert_eq!(cluster.leader().await?, other);

    let mut seen = load.finish().await;
    let (stall, _) = seen.longest_stall();
    println!(
        "three hand-overs under load: {} requests, {} failed; longest write stall {stall:?}, \
         slowest write {:?}, slowest validate {:?}",
        seen.requests,
        seen.failures.len(),
        seen.slowest_write,
        seen.slowest_read
    );
    assert!(seen.failures.is_empty(), "{:?}", seen.failures);
    // No acknowledged write was lost.
    all_valid(&cluster.app_client(), &seen.tokens).await?;
    cluster.assert_identical_state().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_told_to_stop_hands_over_first() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader().await?;
    let term = cluster
        .admin_client_for(leader)
        .cluster_status()
        .await?
        .term;
    cluster.stop(leader).await?;
    let new_leader = cluster.leader().await?;
    let status = cluster
        .admin_client_for(new_leader)
        .cluster_status()
        .await?;
    // Handed over: one election, which the target won at once.
    assert_eq!(status.term, term + 1, "{status:?}");
    assert!(
        handed_over_on_stop(&cluster, leader)?,
        "the stopping leader's log does not say it handed over:\n{}",
        cluster.log_tail(leader, 30)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_node_is_not_ready_until_it_restarts() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader().await?;
    let follower = cluster
        .node_ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    for id in cluster.node_ids() {
        until_readyz(&cluster, id, 200).await?;
    }

    // A follower, through the CLI: nothing to hand over.
    let url = cluster.url(follower);
    let d = admin_ctl(&cluster, true, &["node", "drain", "--node", &url])
        .expect(0)?
        .json()?;
    assert_eq!(d["node_id"], follower, "{d}");
    assert_eq!(d["draining"], true, "{d}");
    assert!(d.get("transfer").is_none(), "{d}");
    let body = until_readyz(&cluster, follower, 503).await?;
    assert_eq!(body["reasons"], serde_json::json!(["draining"]), "{body}");
    let status = cluster.admin_client_for(follower).cluster_status().await?;
    assert!(status.draining, "{status:?}");

    // The leader: it hands over first.
    let d = cluster.admin_client_for(leader).drain().await?;
    let t = d.transfer.expect("the leader handed over");
    assert_eq!(t.previous_leader, leader);
    assert_ne!(t.leader, leader);
    until_readyz(&cluster, leader, 503).await?;
    assert_eq!(cluster.leader().await?, t.leader);
    // Writes go on.
    cluster
        .app_client()
        .create_session(&login("after-drain"))
        .await?;

    // A restart undrains.
    cluster.stop(follower).await?;
    cluster.restart(follower).await?;
    until_readyz(&cluster, follower, 200).await?;
    let status = cluster.admin_client_for(follower).cluster_status().await?;
    assert!(!status.draining, "{status:?}");
    Ok(())
}

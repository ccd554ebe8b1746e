//! Readiness says whether a node can serve now, not only whether it once heard of a leader: a
//! learner cut off from every voter still names its old leader (it never campaigns), yet it is
//! not ready once the leader has been silent for an election timeout; a leader no quorum has
//! acknowledged for that long is not ready either; and a replica far behind the leader's commit
//! index (a learner catching up a long log) is `lagging` until it has caught up.

use std::collections::BTreeSet;
use std::time::Duration;

use sessync_chaos_tests::{ClusterOptions, LinkFault, TestCluster};
use sessync_client::{Client, Method};
use sessync_proto::api::CreateSessionRequest;
use sessync_proto::session::Device;
use sessync_proto::UserId;

/// `GET /readyz` of the node `probe` talks to: (status, body).
async fn readyz(probe: &Client) -> anyhow::Result<(u16, serde_json::Value)> {
    let (status, body) = probe.request_raw(Method::GET, "/readyz", None, &[]).await?;
    Ok((status, serde_json::from_slice(&body)?))
}

/// Polls `/readyz` of the node `probe` talks to until it answers `status`, for at most
/// `within`; its body then. `what` names the wait for the failure message.
async fn until_readyz(
    probe: &Client,
    status: u16,
    within: Duration,
    what: &str,
) -> anyhow::Result<serde_json::Value> {
    let started = tokio::time::Instant::now();
    loop {
        let (got, body) = readyz(probe).await?;
        if got == status {
            return Ok(body);
        }
        assert!(started.elapsed() < within, "{what}: {got} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for node `id` to be ready, kills every other node, and checks that within an election
/// timeout and a little it is not ready, for `leader_silent` alone, while still naming `leader`.
async fn ready_then_silent_alone(
    cluster: &mut TestCluster,
    id: u64,
    leader: u64,
) -> anyhow::Result<()> {
    let probe = cluster.app_client_for(id);
    let never = format!("node {id} never became ready");
    until_readyz(&probe, 200, Duration::from_secs(20), &never).await?;
    for other in cluster.node_ids().into_iter().filter(|n| *n != id) {
        cluster.kill(other);
    }
    let still = format!("node {id} still ready with every other node gone");
    let body = until_readyz(&probe, 503, Duration::from_secs(10), &still).await?;
    assert_eq!(body["leader"], leader, "{body}");
    assert_eq!(
        body["reasons"],
        serde_json::json!(["leader_silent"]),
        "{body}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_has_not_heard_from_its_leader_is_not_ready() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader().await?;
    let learner = cluster.add_node().await?;
    cluster
        .admin_client_for(leader)
        .add_learner(learner, cluster.url(learner))
        .await?;
    // It still names the old leader: knowing a leader is not enough to be ready.
    ready_then_silent_alone(&mut cluster, learner, leader).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_without_a_quorum_is_not_ready() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader().await?;
    // It still leads as far as it knows: what it lacks is a quorum that acknowledges it.
    ready_then_silent_alone(&mut cluster, leader, leader).await
}

/// A learner held behind a long log: the leader's link to it is slowed (20 ms per chunk, each
/// way), so its heartbeats (small) arrive within Raft's append timeout (the heartbeat interval,
/// 100 ms here) and keep it in contact, while the appends that carry entries (hundreds of KB)
/// time out. It hears the leader's commit index and cannot reach it: `lagging`, and only that,
/// until the link heals and it catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_far_behind_the_leader_is_lagging() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(ClusterOptions {
        proxied: true,
        ..ClusterOptions::default()
    })
    .await?;
    let leader = cluster.leader().await?;
    // A log far longer than the bound of 100 entries, of large entries: one login each.
    let app = cluster.app_client_for(leader);
    for i in 0..400 {
        app.create_session(&CreateSessionRequest {
            user_id: UserId::parse_field(&format!("lag-{i}"), "user_id").unwrap(),
            device: Device {
                user_agent: Some(format!("{i:0>400}")),
                ..Default::default()
            },
            origin: None,
            idempotency_key: None,
        })
        .await?;
    }

    let learner = cluster.add_node().await?;
    cluster
        .faults()
        .set(leader, learner, LinkFault::Delay(Duration::from_millis(20)));
    // Blocks until the learner has caught up (or answers 503 after request_timeout).
    let adding = {
        let admin = cluster
            .admin_client_for(leader)
            .with_timeout(Duration::from_secs(60));
        let url = cluster.raft_url(learner);
        tokio::spawn(async move { admin.add_learner(learner, url).await })
    };

    let probe = cluster.app_client_for(learner);
    let mut seen = BTreeSet::new();
    let mut lagging = 0;
    let started = tokio::time::Instant::now();
    while lagging < 20 {
        let (status, body) = readyz(&probe).await?;
        seen.insert(body["reasons"].to_string());
        if body["reasons"] == serde_json::json!(["lagging"]) {
            assert_eq!(status, 503, "{body}");
            let lag = body["lag"].as_u64().unwrap_or(0);
            assert!(lag > 100, "lagging by {lag}: {body}");
            lagging += 1;
        } else {
            assert_ne!(status, 200, "ready while held behind: {body}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never lagging for long (seen {seen:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("the learner's /readyz reasons while held behind: {seen:?}");

    // The link heals: it catches up, and is ready.
    cluster.faults().heal_all();
    let not_yet = "not ready after catching up";
    let body = until_readyz(&probe, 200, Duration::from_secs(30), not_yet).await?;
    assert_eq!(body["lag"].as_u64().map(|l| l <= 100), Some(true), "{body}");
    let added = adding.await?;
    println!("add_learner: {added:?}");
    Ok(())
}

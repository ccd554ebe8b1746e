//! Readiness says whether a node can serve now, not only whether it once heard of a leader: a
//! learner cut off from every voter still names its old leader (it never campaigns), yet it is
//! not ready once the leader has been silent for an election timeout.

use std::time::Duration;

use sessync_chaos_tests::{ClusterOptions, TestCluster};
use sessync_client::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_has_not_heard_from_its_leader_is_not_ready() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader().await?;
    let learner = cluster.add_node().await?;
    cluster
        .admin_client_for(leader)
        .add_learner(learner, cluster.url(learner))
        .await?;
    let probe = cluster.app_client_for(learner);
    let readyz = || probe.request_raw(Method::GET, "/readyz", None, &[]);
    let started = tokio::time::Instant::now();
    while readyz().await?.0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the learner never became ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    for voter in cluster.node_ids().into_iter().filter(|n| *n != learner) {
        cluster.kill(voter);
    }
    let started = tokio::time::Instant::now();
    let body = loop {
        let (status, body) = readyz().await?;
        let body: serde_json::Value = serde_json::from_slice(&body)?;
        if status == 503 {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still ready with every voter gone: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // It still names the old leader: knowing a leader is not enough to be ready.
    assert_eq!(body["leader"], leader, "{body}");
    assert_eq!(
        body["reasons"],
        serde_json::json!(["leader_silent"]),
        "{body}"
    );
    Ok(())
}

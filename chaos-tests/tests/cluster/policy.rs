//! The policy comes from the log, not from each node's file: a node whose file disagrees still
//! applies the replicated policy, shows it at GET /v1/config, and logs a warning naming the key.

use std::time::Duration;

use sessync_chaos_tests::{ClusterOptions, TestCluster};
use sessync_client::ClientError;
use sessync_proto::api::CreateSessionRequest;
use sessync_proto::{OnLimit, UserId};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_a_different_file_applies_the_replicated_policy() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(ClusterOptions {
        policy_toml: "max_concurrent_sessions = 2\non_limit = \"deny\"".to_owned(),
        ..ClusterOptions::default()
    })
    .await?;
    let leader = cluster.leader().await?;
    let odd = cluster
        .node_ids()
        .into_iter()
        .find(|n| *n != leader)
        .unwrap();
    cluster.set_node_toml(
        odd,
        "[policy]\nmax_concurrent_sessions = 7\non_limit = \"evict_oldest\"",
    )?;
    cluster.restart(odd).await?;
    cluster.wait_converged(Duration::from_secs(20)).await?;

    for id in cluster.node_ids() {
        let c = cluster.admin_client_for(id).config().await?;
        let p = c.policy.expect("the policy is replicated");
        assert_eq!(
            (p.max_concurrent_sessions, p.on_limit),
            (2, OnLimit::Deny),
            "node {id}"
        );
    }

    // Logins through the odd node are judged by the replicated policy.
    let client = cluster.app_client_for(odd);
    let req = CreateSessionRequest {
        user_id: UserId::parse_field("policy-user", "user_id").unwrap(),
        device: Default::default(),
        origin: None,
        idempotency_key: None,
    };
    client.create_session(&req).await?;
    client.create_session(&req).await?;
    let third = client.create_session(&req).await;
    assert!(
        matches!(third, Err(ClientError::LimitReached { .. })),
        "{third:?}"
    );

    // The odd node said which keys disagree.
    let log = std::fs::read_to_string(cluster.log_path(odd))?;
    assert!(
        log.contains("policy.max_concurrent_sessions"),
        "no warning naming the key in:\n{log}"
    );
    assert!(log.contains("policy.on_limit"));
    Ok(())
}

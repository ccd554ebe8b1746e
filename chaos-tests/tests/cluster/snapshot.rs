//! A node whose data is wiped, removed and added back catches up by snapshot (the leader has
//! compacted its log), and ends with the same state as the others.

use std::time::Duration;

use sessync_chaos_tests::{ClusterOptions, TestCluster};
use sessync_proto::api::{Consistency, CreateSessionRequest, ValidateRequest};
use sessync_proto::UserId;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wiped_node_catches_up_by_snapshot() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(ClusterOptions {
        policy_toml: "max_concurrent_sessions = 0".to_owned(),
        raft_toml: "snapshot_after_logs = 40\nmax_logs_kept_after_snapshot = 5".to_owned(),
        ..ClusterOptions::default()
    })
    .await?;
    let leader = cluster.leader().await?;
    let victim = cluster
        .node_ids()
        .into_iter()
        .find(|n| *n != leader)
        .unwrap();
    let voters: Vec<u64> = cluster.node_ids();

    let admin = cluster.admin_client();
    let client = cluster.app_client();
    let mut tokens = Vec::new();
    for i in 0..150 {
        let r = client
            .create_session(&CreateSessionRequest {
                user_id: UserId::parse_field(&format!("snap-{}", i % 10), "user_id").unwrap(),
                device: Default::default(),
                origin: None,
                idempotency_key: None,
            })
            .await?;
        tokens.push(r.token);
    }

    // Take the victim out, wipe it, and bring it back empty.
    cluster.wipe(victim);
    let remaining: Vec<u64> = voters.iter().copied().filter(|n| *n != victim).collect();
    admin.change_membership(remaining, false).await?;
    for i in 0..60 {
        client
            .create_session(&CreateSessionRequest {
                user_id: UserId::parse_field(&format!("after-{i}"), "user_id").unwrap(),
                device: Default::default(),
                origin: None,
                idempotency_key: None,
            })
            .await?;
    }
    let status = cluster.admin_client_for(leader).cluster_status().await?;
    assert!(
        status.snapshot_index.is_some(),
        "the leader has compacted its log: {status:?}"
    );

    cluster.restart(victim).await?;
    admin.add_learner(victim, cluster.url(victim)).await?;
    admin.change_membership(voters, false).await?;
    cluster.wait_converged(Duration::from_secs(30)).await?;

    let st = cluster.admin_client_for(victim).cluster_status().await?;
    assert!(
        st.snapshot_index.is_some(),
        "the victim installed a snapshot: {st:?}"
    );
    let on_victim = cluster.app_client_for(victim);
    for token in tokens {
        let v = on_victim
            .validate(&ValidateRequest {
                token,
                touch: false,
                consistency: Consistency::Local,
            })
            .await?;
        assert!(v.valid, "the re-added node lacks a session");
    }
    cluster.assert_identical_state().await?;
    Ok(())
}

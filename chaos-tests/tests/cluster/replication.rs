//! Three real node processes: a write on a follower is readable linearizably on another node,
//! and an acknowledged end is seen by every node.

use sessync_chaos_tests::{login, ClusterOptions, TestCluster};
use sessync_proto::api::{Consistency, ValidateRequest};

fn validate(token: &str) -> ValidateRequest {
    ValidateRequest {
        token: token.to_owned(),
        touch: false,
        consistency: Consistency::Linearizable,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_on_follower_validate_on_another() -> anyhow::Result<()> {
    let cluster = TestCluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader().await?;
    let followers: Vec<u64> = cluster
        .node_ids()
        .into_iter()
        .filter(|id| *id != leader)
        .collect();
    let (f1, f2) = (followers[0], followers[1]);

    // Many times in a row, so a lagging follower would be caught.
    for i in 0..20 {
        let created = cluster
            .app_client_for(f1)
            .create_session(&login(&format!("user-{i}")))
            .await?;
        let v = cluster
            .app_client_for(f2)
            .validate(&validate(&created.token))
            .await?;
        assert!(
            v.valid,
            "session {i} created on node {f1} not valid on node {f2}: {v:?}"
        );
        let v = cluster
            .app_client_for(leader)
            .validate(&validate(&created.token))
            .await?;
        assert!(v.valid);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_end_is_seen_everywhere() -> anyhow::Result<()> {
    let cluster = TestCluster::start(ClusterOptions::default()).await?;
    for i in 0..10 {
        let ids = cluster.node_ids();
        let creator = ids[i % ids.len()];
        let ender = ids[(i + 1) % ids.len()];
        let created = cluster
            .app_client_for(creator)
            .create_session(&login("ender"))
            .await?;
        let ended = cluster
            .app_client_for(ender)
            .end_session(&created.session.session_id)
            .await?;
        assert_eq!(ended.end_reason.map(|r| r.as_str()), Some("logout"));
        // Immediately after the acknowledgement, no node may say valid.
        for id in &ids {
            let v = cluster
                .app_client_for(*id)
                .validate(&validate(&created.token))
                .await?;
            assert!(!v.valid, "node {id} still validates an ended session");
            assert_eq!(v.reason.as_deref(), Some("logout"));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_hold_identical_state() -> anyhow::Result<()> {
    let cluster = TestCluster::start(ClusterOptions::default()).await?;
    let client = cluster.app_client();
    for i in 0..30 {
        let c = client
            .create_session(&login(&format!("d-{}", i % 4)))
            .await?;
        if i % 3 == 0 {
            client.end_session(&c.session.session_id).await?;
        }
    }
    cluster
        .wait_converged(std::time::Duration::from_secs(20))
        .await?;
    cluster.assert_identical_state().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_touch_through_a_follower_is_replicated() -> anyhow::Result<()> {
    let cluster = TestCluster::start(ClusterOptions {
        policy_toml: "touch_interval = \"200ms\"".to_owned(),
        ..ClusterOptions::default()
    })
    .await?;
    let leader = cluster.leader().await?;
    let follower = cluster
        .node_ids()
        .into_iter()
        .find(|n| *n != leader)
        .unwrap();
    let created = cluster
        .app_client()
        .create_session(&login("toucher"))
        .await?;
    let before = created.session.last_seen_at;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let v = cluster
        .app_client_for(follower)
        .validate(&ValidateRequest {
            token: created.token.clone(),
            touch: true,
            consistency: Consistency::Linearizable,
        })
        .await?;
    assert!(v.valid, "{v:?}");
    let after = v
        .session
        .expect("a valid answer carries the session")
        .last_seen_at;
    assert!(
        after > before,
        "the touch moved last_seen_at: {before} -> {after}"
    );
    // Every node sees the replicated touch.
    for id in cluster.node_ids() {
        let s = cluster
            .app_client_for(id)
            .get_session(&created.session.session_id)
            .await?;
        assert_eq!(s.last_seen_at, after, "node {id}");
    }
    Ok(())
}

//! kill -9 the leader in the middle of a login load: every acknowledged session is still there
//! on the survivors, and on the dead node once it restarts on its own data.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use sessync_chaos_tests::{ClusterOptions, TestCluster};
use sessync_proto::api::{Consistency, CreateSessionRequest, ValidateRequest};
use sessync_proto::UserId;

/// Logins per writer task, at most.
const PER_WRITER: usize = 60;
const WRITERS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_sessions_survive_leader_kill() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(ClusterOptions {
        policy_toml: "max_concurrent_sessions = 0".to_owned(),
        ..ClusterOptions::default()
    })
    .await?;
    let leader = cluster.leader().await?;

    // Writers use every node with failover; each records what was acknowledged.
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let client = cluster.app_client().with_timeout(Duration::from_secs(3));
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(30);
                for i in 0..PER_WRITER {
                    if Instant::now() > deadline {
                        break;
                    }
                    let req = CreateSessionRequest {
                        user_id: UserId::parse_field(&format!("w{w}-{}", i % 5), "user_id")
                            .unwrap(),
                        device: Default::default(),
                        origin: None,
                        idempotency_key: Some(format!("w{w}-i{i}")),
                    };
                    if let Ok(r) = client.create_session(&req).await {
                        acked.push((r.session.session_id, r.token));
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                acked
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(400)).await;
    cluster.kill(leader);
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await?);
    }
    assert!(
        acked.len() > WRITERS * 5,
        "the load made progress: {} acked",
        acked.len()
    );
    let ids: BTreeSet<_> = acked.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids.len(), acked.len(), "no acknowledged session twice");

    let new_leader = cluster.leader().await?;
    assert_ne!(new_leader, leader);
    eprintln!(
        "crash test: {} sessions acknowledged by {WRITERS} writers; leader {leader} killed, node {new_leader} leads",
        acked.len()
    );
    let check =
        |cluster: &TestCluster, node: u64, acked: Vec<(sessync_proto::SessionId, String)>| {
            let client = cluster.app_client_for(node);
            async move {
                for (id, token) in acked {
                    let s = client.get_session(&id).await?;
                    assert_eq!(s.session_id, id);
                    let v = client
                        .validate(&ValidateRequest {
                            token,
                            touch: false,
                            consistency: Consistency::Linearizable,
                        })
                        .await?;
                    assert!(v.valid, "node {node} lost acknowledged session {id}");
                }
                anyhow::Ok(())
            }
        };
    for node in cluster.node_ids().into_iter().filter(|n| *n != leader) {
        check(&cluster, node, acked.clone()).await?;
    }

    cluster.restart(leader).await?;
    cluster.wait_converged(Duration::from_secs(30)).await?;
    check(&cluster, leader, acked.clone()).await?;
    cluster.assert_identical_state().await?;
    Ok(())
}

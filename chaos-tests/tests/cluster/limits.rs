//! 40 concurrent logins of one user, spread over all three nodes, in each on_limit mode: no
//! linearizable read ever shows more active sessions than the limit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sessync_chaos_tests::{ClusterOptions, TestCluster};
use sessync_client::ClientError;
use sessync_proto::api::CreateSessionRequest;
use sessync_proto::{SessionState, UserId};

const LIMIT: usize = 3;
const LOGINS: usize = 40;

async fn run(mode: &str) -> anyhow::Result<(usize, usize)> {
    let cluster = TestCluster::start(ClusterOptions {
        policy_toml: format!("max_concurrent_sessions = {LIMIT}\non_limit = \"{mode}\""),
        ..ClusterOptions::default()
    })
    .await?;
    let user = UserId::parse_field("contended", "user_id").unwrap();
    let ids = cluster.node_ids();

    // A reader checks the invariant on every node while the logins run.
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let clients: Vec<_> = ids.iter().map(|id| cluster.app_client_for(*id)).collect();
        let user = user.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut reads = 0;
            while !done.load(Ordering::Relaxed) && reads < 500 {
                for c in &clients {
                    if let Ok(list) = c.list_sessions(&user, true).await {
                        let active = list
                            .iter()
                            .filter(|s| s.state == SessionState::Active)
                            .count();
                        assert!(active <= LIMIT, "a read saw {active} active sessions");
                    }
                }
                reads += 1;
            }
        })
    };

    let logins = (0..LOGINS).map(|i| {
        let client = cluster.app_client_for(ids[i % ids.len()]);
        let req = CreateSessionRequest {
            user_id: user.clone(),
            device: Default::default(),
            origin: Some(format!("login-{i}")),
            idempotency_key: None,
        };
        async move { client.create_session(&req).await }
    });
    let results = futures::future::join_all(logins).await;
    done.store(true, Ordering::Relaxed);
    reader.await?;

    let created = results.iter().filter(|r| r.is_ok()).count();
    let denied = results
        .iter()
        .filter(|r| matches!(r, Err(ClientError::LimitReached { .. })))
        .count();
    assert_eq!(
        created + denied,
        LOGINS,
        "every login answered: {results:?}"
    );

    for id in &ids {
        let list = cluster
            .app_client_for(*id)
            .list_sessions(&user, true)
            .await?;
        let active = list
            .iter()
            .filter(|s| s.state == SessionState::Active)
            .count();
        assert_eq!(active, LIMIT, "node {id}: {active} active after {mode}");
    }
    Ok((created, denied))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_never_exceeds_the_limit() -> anyhow::Result<()> {
    let (created, denied) = run("deny").await?;
    assert_eq!((created, denied), (LIMIT, LOGINS - LIMIT));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_new_never_exceeds_the_limit() -> anyhow::Result<()> {
    let (created, denied) = run("block_new").await?;
    assert_eq!((created, denied), (LOGINS, 0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evict_oldest_never_exceeds_the_limit() -> anyhow::Result<()> {
    let (created, denied) = run("evict_oldest").await?;
    assert_eq!((created, denied), (LOGINS, 0));
    Ok(())
}

//! Without a quorum, writes and linearizable reads answer 503 `unavailable` within the request
//! deadline instead of hanging; once a quorum is back, the same calls succeed.

use std::time::Duration;

use sessync_chaos_tests::{ClusterOptions, TestCluster};
use sessync_client::ClientError;
use sessync_proto::api::{Consistency, CreateSessionRequest, ValidateRequest};
use sessync_proto::UserId;

fn login() -> CreateSessionRequest {
    CreateSessionRequest {
        user_id: UserId::parse_field("lonely", "user_id").unwrap(),
        device: Default::default(),
        origin: None,
        idempotency_key: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_quorum_is_unavailable_not_a_hang() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(ClusterOptions {
        extra_toml: "[limits]\nrequest_timeout = \"2s\"".to_owned(),
        ..ClusterOptions::default()
    })
    .await?;
    let leader = cluster.leader().await?;
    let token = cluster.app_client().create_session(&login()).await?.token;
    let followers: Vec<u64> = cluster
        .node_ids()
        .into_iter()
        .filter(|n| *n != leader)
        .collect();
    for f in &followers {
        cluster.kill(*f);
    }

    // The client's own deadline (15 s) is far past the node's (2 s): an answer, not a client
    // timeout, proves the node did not hang.
    let on_leader = cluster
        .app_client_for(leader)
        .with_timeout(Duration::from_secs(15));
    let write = on_leader.create_session(&login()).await;
    assert!(
        matches!(write, Err(ClientError::Unavailable { .. })),
        "write without quorum: {write:?}"
    );
    let read = on_leader
        .validate(&ValidateRequest {
            token: token.clone(),
            touch: false,
            consistency: Consistency::Linearizable,
        })
        .await;
    assert!(
        matches!(read, Err(ClientError::Unavailable { .. })),
        "read without quorum: {read:?}"
    );
    // A local read still answers from the replica.
    let local = on_leader
        .validate(&ValidateRequest {
            token,
            touch: false,
            consistency: Consistency::Local,
        })
        .await?;
    assert!(local.valid);

    cluster.restart(followers[0]).await?;
    cluster.leader().await?;
    let again = cluster
        .app_client()
        .with_timeout(Duration::from_secs(15))
        .create_session(&login())
        .await;
    assert!(
        again.is_ok(),
        "with a quorum back the write succeeds: {again:?}"
    );
    Ok(())
}

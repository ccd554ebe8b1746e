//! A leader frozen (SIGSTOP) while the others elect a new one must not, once it wakes, report
//! valid (or touch) a session whose end the new leader acknowledged in the meantime
//! (invariant 3), and nothing acknowledged before the freeze is lost.

use std::time::Duration;

use sessync_chaos_tests::{ClusterOptions, TestCluster};
use sessync_client::ClientError;
use sessync_proto::api::{Consistency, CreateSessionRequest, ValidateRequest};
use sessync_proto::UserId;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_woken_stale_leader_never_validates_an_ended_session() -> anyhow::Result<()> {
    // A long touch interval: a touch then needs no replication, so only reading linearizably
    // keeps a stale leader from answering it from its own replica.
    let mut cluster = TestCluster::start(ClusterOptions {
        policy_toml: "touch_interval = \"1m\"".to_owned(),
        ..ClusterOptions::default()
    })
    .await?;
    let old = cluster.leader().await?;
    let created = cluster
        .app_client()
        .create_session(&CreateSessionRequest {
            user_id: UserId::parse_field("frozen", "user_id").unwrap(),
            device: Default::default(),
            origin: None,
            idempotency_key: None,
        })
        .await?;

    cluster.pause(old)?;
    let new = cluster.leader().await?;
    assert_ne!(new, old);
    let ended = cluster
        .app_client_for(new)
        .end_session(&created.session.session_id)
        .await?;
    assert!(ended.ended_at.is_some());

    cluster.resume(old)?;
    // The woken node may still believe it leads: a touch there must not succeed...
    let t = cluster
        .app_client_for(old)
        .with_timeout(Duration::from_secs(15))
        .touch(&created.session.session_id)
        .await;
    match t {
        Ok(t) => panic!("stale leader touched an ended session: {t:?}"),
        Err(e) => assert!(
            e.is_unavailable() || matches!(e, ClientError::Conflict { .. }),
            "only a refusal is acceptable: {e:?}"
        ),
    }
    // ... and a linearizable read there must not say valid.
    let v = cluster
        .app_client_for(old)
        .with_timeout(Duration::from_secs(15))
        .validate(&ValidateRequest {
            token: created.token.clone(),
            touch: true,
            consistency: Consistency::Linearizable,
        })
        .await;
    match v {
        Ok(v) => assert!(!v.valid, "stale leader validated an ended session: {v:?}"),
        Err(e) => assert!(e.is_unavailable(), "only a refusal is acceptable: {e:?}"),
    }
    cluster.wait_converged(Duration::from_secs(20)).await?;
    cluster.assert_identical_state().await?;
    Ok(())
}

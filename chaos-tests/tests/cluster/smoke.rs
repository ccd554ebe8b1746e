//! Smoke test of the harness and the node together: a session created through a follower is
//! valid on another node.

use sessync_chaos_tests::{ClusterOptions, TestCluster};
use sessync_proto::api::{Consistency, CreateSessionRequest, ValidateRequest};
use sessync_proto::{Device, SessionState, UserId};

#[tokio::test(flavor = "multi_thread")]
async fn session_created_on_a_follower_validates_on_another_node() -> anyhow::Result<()> {
    let cluster = TestCluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader().await?;
    let followers: Vec<u64> = cluster
        .node_ids()
        .into_iter()
        .filter(|&id| id != leader)
        .collect();
    let (via, check_on) = (followers[0], followers[1]);

    let created = cluster
        .app_client_for(via)
        .create_session(&CreateSessionRequest {
            user_id: UserId::parse_field("alice", "user_id")?,
            device: Device {
                name: Some("laptop".into()),
                ..Device::default()
            },
            origin: None,
            idempotency_key: None,
        })
        .await?;
    assert_eq!(created.session.state, SessionState::Active);

    let answer = cluster
        .app_client_for(check_on)
        .validate(&ValidateRequest {
            token: created.token.clone(),
            touch: false,
            consistency: Consistency::Linearizable,
        })
        .await?;
    assert!(answer.valid, "{answer:?}");
    assert_eq!(
        answer.session.map(|s| s.session_id),
        Some(created.session.session_id)
    );
    cluster.check_no_crashes()
}

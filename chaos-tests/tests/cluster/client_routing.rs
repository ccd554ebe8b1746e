//! Where the client sends calls on a real cluster: writes go straight to the leader once any
//! node has named it (no forwarding hop), and reads take turns over all nodes.

use sessync_chaos_tests::{ClusterOptions, TestCluster};
use sessync_client::Client;
use sessync_proto::api::{Consistency, CreateSessionRequest, ValidateRequest};
use sessync_proto::UserId;

/// The value of a metric line that starts with `prefix` in a node's /metrics (0 if absent).
async fn metric(cluster: &TestCluster, id: u64, prefix: &str) -> anyhow::Result<u64> {
    let text = cluster.admin_client_for(id).metrics().await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_go_to_the_leader_and_reads_are_spread() -> anyhow::Result<()> {
    let cluster = TestCluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader().await?;
    // The leader last, so only the learned leader can take the writes there.
    let mut ids = cluster.node_ids();
    ids.sort_by_key(|id| *id == leader);
    let client = Client::new(
        ids.iter().map(|id| cluster.url(*id)).collect(),
        cluster.app_key(),
    )?;

    let forwarded = "sessync_forwarded_requests_total";
    let mut before = 0;
    for id in &ids {
        before += metric(&cluster, *id, forwarded).await?;
    }
    let mut tokens = Vec::new();
    for i in 0..10 {
        let r = client
            .create_session(&CreateSessionRequest {
                user_id: UserId::parse_field(&format!("routed-{i}"), "user_id").unwrap(),
                device: Default::default(),
                origin: None,
                idempotency_key: None,
            })
            .await?;
        tokens.push(r.token);
    }
    let mut after = 0;
    for id in &ids {
        after += metric(&cluster, *id, forwarded).await?;
    }
    // The first create may go through a follower (which names the leader in its answer);
    // every later one goes to the leader directly.
    assert!(
        after - before <= 1,
        "{} creates were forwarded",
        after - before
    );

    let validates = "sessync_http_requests_total{method=\"POST\",route=\"/v1/sessions/validate\"";
    for token in &tokens {
        let v = client
            .validate(&ValidateRequest {
                token: token.clone(),
                touch: false,
                consistency: Consistency::Linearizable,
            })
            .await?;
        assert!(v.valid);
    }
    for id in &ids {
        let n = metric(&cluster, *id, validates).await?;
        assert!(
            n >= 2,
            "node {id} answered {n} of the 10 validates: reads are not spread"
        );
    }
    Ok(())
}

//! TLS on every link: a three-node cluster whose nodes serve HTTPS only and require client
//! certificates of the test's CA, so Raft RPC, read index and forwarding between them run over
//! TLS; and two federated sites of such nodes, whose fan-out is delivered over TLS too.

use std::time::Duration;

use crate::fed::{live, login, poll, site, user};
use sessync_chaos_tests::{ClusterOptions, Sites, SitesOptions, TestCa, TestCluster, SITE_B};
use sessync_proto::api::InvalidateRequest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_cluster_runs_over_tls() -> anyhow::Result<()> {
    let ca = TestCa::new("sessync chaos CA")?;
    let mut cluster = TestCluster::start(ClusterOptions {
        tls: Some(ca.clone()),
        ..Default::default()
    })
    .await?;
    assert!(cluster.urls().iter().all(|u| u.starts_with("https://")));
    let leader = cluster.leader().await?;
    // A write through a follower is forwarded to the leader over TLS; a linearizable read on a
    // follower asks the leader's read index over TLS.
    let follower = cluster
        .node_ids()
        .into_iter()
        .find(|n| *n != leader)
        .unwrap();
    let app = cluster.app_client_for(follower);
    login(&app, "tls-alice").await?;
    assert_eq!(live(&app, "tls-alice").await?, 1);
    // Replication over TLS: every node has the same state, also after the leader changes.
    cluster.wait_converged(Duration::from_secs(20)).await?;
    cluster.kill(leader);
    let new_leader = cluster.leader().await?;
    assert_ne!(new_leader, leader);
    login(&cluster.app_client(), "tls-alice").await?;
    cluster.restart(leader).await?;
    cluster.wait_converged(Duration::from_secs(20)).await?;
    assert_eq!(live(&cluster.app_client_for(leader), "tls-alice").await?, 2);

    // A caller without a certificate of the CA is refused at the handshake.
    let plain = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()?;
    let r = plain
        .get(format!("{}/healthz", cluster.url(leader)))
        .send()
        .await;
    assert!(
        r.is_err(),
        "served a caller without a client certificate: {r:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_federated_sites_deliver_over_tls() -> anyhow::Result<()> {
    let ca = TestCa::new("sessync federation CA")?;
    let sites = Sites::start(SitesOptions {
        a: ClusterOptions {
            nodes: 1,
            tls: Some(ca.clone()),
            ..Default::default()
        },
        b: ClusterOptions {
            nodes: 3,
            tls: Some(ca),
            ..Default::default()
        },
        slow_link: None,
    })
    .await?;
    let a = sites.a.app_client();
    let b = sites.b.app_client();
    login(&b, "tls-bob").await?;
    login(&a, "tls-bob").await?;
    let user = user("tls-bob");
    let req = InvalidateRequest {
        session_id: None,
        targets: vec![site(SITE_B)],
    };
    a.invalidate(&user, &req).await?;
    poll(
        "the invalidate reached site B over TLS",
        Duration::from_secs(20),
        || {
            let b = b.clone();
            async move { Ok((live(&b, "tls-bob").await? == 0).then_some(())) }
        },
    )
    .await?;
    assert_eq!(live(&a, "tls-bob").await?, 0);
    Ok(())
}

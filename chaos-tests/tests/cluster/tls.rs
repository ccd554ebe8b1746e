//! TLS on every link: a three-node cluster whose nodes serve HTTPS only and require client
//! certificates of the test's CA, so Raft RPC, read index and forwarding between them run over
//! TLS; two federated sites of such nodes, whose fan-out is delivered over TLS too; and
//! `sessyncctl` against such a cluster, with its TLS files given as options or in the
//! environment.

use std::time::Duration;

use crate::ctl::ctl;
use crate::fed::{live, login, poll, site, user};
use sessync_chaos_tests::{ClusterOptions, Sites, SitesOptions, TestCa, TestCluster, SITE_B};
use sessync_proto::api::InvalidateRequest;
use sessync_proto::wire::VOTE_PATH;

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

    // A caller without a certificate of the CA never reaches the node-to-node routes: refused
    // at the handshake (a node that asks every caller for one) or answered 403 (a node that
    // asks it only on the routes for its peers).
    let plain = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()?;
    let r = plain
        .post(format!("{}{VOTE_PATH}", cluster.url(leader)))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body("{}")
        .send()
        .await;
    if let Ok(answer) = r {
        let status = answer.status();
        let body = answer.text().await.unwrap_or_default();
        assert_eq!(
            status, 403,
            "a node-to-node route served a caller without a client certificate: {body}"
        );
        assert!(body.contains("client certificate"), "{body}");
    }
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
        proxy_both_ways: false,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessyncctl_runs_over_tls() -> anyhow::Result<()> {
    let ca = TestCa::new("sessync ctl CA")?;
    let cluster = TestCluster::start(ClusterOptions {
        tls: Some(ca.clone()),
        ..Default::default()
    })
    .await?;
    login(&cluster.app_client(), "tls-carol").await?;
    // The operator's files: the cluster's CA, and a client certificate of it (shown whether or
    // not the nodes require one of an operator).
    let dir = cluster.dir();
    let issued = ca.issue("sessyncctl operator")?;
    let (ca_file, cert_file, key_file) = (
        dir.join("ctl-ca.pem"),
        dir.join("ctl-cert.pem"),
        dir.join("ctl-key.pem"),
    );
    std::fs::write(&ca_file, ca.cert_pem())?;
    std::fs::write(&cert_file, &issued.cert_pem)?;
    std::fs::write(&key_file, &issued.key_pem)?;
    let path = |p: &std::path::Path| p.to_str().expect("a UTF-8 temp path").to_owned();
    let (ca_file, cert_file, key_file) = (path(&ca_file), path(&cert_file), path(&key_file));
    let endpoints = cluster.urls().join(",");

    // The files as options: `cluster status`, one line per node, one of them the leader.
    let tls_args = [
        "--cacert",
        ca_file.as_str(),
        "--cert",
        cert_file.as_str(),
        "--key",
        key_file.as_str(),
    ];
    let admin_env = [
        ("SESSYNC_ENDPOINTS", endpoints.as_str()),
        ("SESSYNC_API_KEY", cluster.admin_key()),
    ];
    let mut args = tls_args.to_vec();
    args.extend(["--output", "json", "cluster", "status"]);
    let lines = ctl(&admin_env, &args)?.expect(0)?.json_lines()?;
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["status"]["role"] == "leader")
            .count(),
        1,
        "{lines:?}"
    );

    // The files from the environment: the user's sessions.
    let app_env = [
        ("SESSYNC_ENDPOINTS", endpoints.as_str()),
        ("SESSYNC_API_KEY", cluster.app_key()),
        ("SESSYNC_CACERT", ca_file.as_str()),
        ("SESSYNC_CERT", cert_file.as_str()),
        ("SESSYNC_KEY", key_file.as_str()),
    ];
    let args = [
        "--output",
        "json",
        "sessions",
        "list",
        "--user",
        "tls-carol",
    ];
    let lines = ctl(&app_env, &args)?.expect(0)?.json_lines()?;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["user_id"], "tls-carol", "{lines:?}");

    // Without the CA the nodes' certificates are not trusted: a failure that says so, on
    // stderr, and nothing on stdout.
    let args = [
        "--cert",
        cert_file.as_str(),
        "--key",
        key_file.as_str(),
        "--output",
        "json",
        "cluster",
        "status",
    ];
    let r = ctl(&admin_env, &args)?;
    println!(
        "sessyncctl without --cacert: exit {}, {}",
        r.code,
        r.err.trim()
    );
    assert_ne!(r.code, 0, "trusted the nodes without their CA: {}", r.out);
    let err = r.err.to_lowercase();
    assert!(
        err.contains("certificate") && (err.contains("issuer") || err.contains("trust")),
        "no clear message: {}",
        r.err
    );
    assert!(r.out.trim().is_empty(), "{}", r.out);
    Ok(())
}

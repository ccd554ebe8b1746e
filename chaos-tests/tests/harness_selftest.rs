//! The harness itself, against a stand-in node (`tests/fake_node/fake_node.py`) that fakes the
//! cluster endpoints: start, init, leader agreement, kill, restart, pause, wipe, add_node, the
//! waits, and the logs in a failed start's error. It needs python3 ≥ 3.11 and is skipped
//! (with a note) without it; it does not need the real node.

use std::path::PathBuf;
use std::time::Duration;

use sessync_chaos_tests::{ClusterOptions, TestCluster};
use sessync_client::ClientError;
use sessync_proto::ErrorCode;

fn fake_node() -> Option<PathBuf> {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import tomllib"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("skipped: the fake node needs python3 >= 3.11");
        return None;
    }
    Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fake_node/fake_node.py"))
}

fn opts(bin: PathBuf) -> ClusterOptions {
    ClusterOptions {
        node_bin: Some(bin),
        policy_toml: "max_concurrent_sessions = 2\non_limit = \"deny\"".into(),
        ..ClusterOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_kill_restart_pause() -> anyhow::Result<()> {
    let Some(bin) = fake_node() else {
        return Ok(());
    };
    let mut cluster = TestCluster::start(opts(bin)).await?;
    assert_eq!(cluster.node_ids(), vec![1, 2, 3]);
    assert_eq!(cluster.urls().len(), 3);
    assert!(cluster.url(2).starts_with("http://127.0.0.1:"));
    assert_eq!(cluster.leader().await?, 1);
    let config = std::fs::read_to_string(cluster.config_path(1))?;
    assert!(config.contains("on_limit = \"deny\""), "{config}");

    // The admin key works, the app key is refused on admin endpoints.
    let status = cluster.admin_client_for(2).cluster_status().await?;
    assert_eq!(status.leader, Some(1));
    let refused = cluster
        .app_client_for(2)
        .cluster_status()
        .await
        .unwrap_err();
    assert!(
        matches!(refused, ClientError::Unauthorized { .. }),
        "{refused:?}"
    );
    let again = cluster
        .admin_client()
        .cluster_init([(1, cluster.url(1))].into_iter().collect())
        .await
        .unwrap_err();
    assert_eq!(again.code(), Some(ErrorCode::AlreadyInitialized));

    cluster.kill(1);
    assert!(!cluster.is_live(1));
    assert_eq!(cluster.live_node_ids(), vec![2, 3]);
    assert_eq!(cluster.leader().await?, 2);
    // The failover client still answers with node 1 dead.
    assert_eq!(
        cluster.admin_client().cluster_status().await?.leader,
        Some(2)
    );

    cluster.restart(1).await?;
    assert_eq!(cluster.leader().await?, 1);
    assert!(cluster.log_tail(1, 50).contains("start #2 of node 1"));

    cluster.pause(3)?;
    assert_eq!(cluster.live_node_ids(), vec![1, 2]);
    assert_eq!(cluster.leader().await?, 1);
    cluster.resume(3)?;
    cluster.wait_converged(Duration::from_secs(10)).await?;
    cluster.assert_identical_state().await?;
    cluster.check_no_crashes()
}

#[tokio::test(flavor = "multi_thread")]
async fn wipe_and_membership_changes() -> anyhow::Result<()> {
    let Some(bin) = fake_node() else {
        return Ok(());
    };
    let mut cluster = TestCluster::start(opts(bin)).await?;
    let admin = cluster.admin_client();

    let new = cluster.add_node().await?;
    assert_eq!(new, 4);
    // Not a member yet: it need not agree.
    assert_eq!(cluster.leader().await?, 1);
    admin.add_learner(new, cluster.url(new)).await?;
    admin.change_membership(vec![1, 2, 3, 4], false).await?;
    cluster.wait_converged(Duration::from_secs(10)).await?;
    let st = cluster.admin_client_for(new).cluster_status().await?;
    assert_eq!(st.leader, Some(1));

    cluster.wipe(3);
    assert!(!cluster.data_dir(3).exists());
    admin.change_membership(vec![1, 2, 4], false).await?;
    cluster.restart(3).await?;
    let st = cluster.admin_client_for(3).cluster_status().await?;
    assert!(!st.initialized, "a wiped node starts empty: {st:?}");
    assert_eq!(cluster.leader().await?, 1);
    admin.add_learner(3, cluster.url(3)).await?;
    admin.change_membership(vec![1, 2, 3, 4], false).await?;
    cluster.wait_converged(Duration::from_secs(10)).await?;
    cluster.assert_identical_state().await?;
    cluster.check_no_crashes()
}

#[tokio::test(flavor = "multi_thread")]
async fn uninitialised_start_and_manual_init() -> anyhow::Result<()> {
    let Some(bin) = fake_node() else {
        return Ok(());
    };
    let cluster = TestCluster::start(ClusterOptions {
        nodes: 2,
        init: false,
        ..opts(bin)
    })
    .await?;
    let st = cluster.admin_client_for(1).cluster_status().await?;
    assert!(!st.initialized);
    let members = cluster
        .node_ids()
        .into_iter()
        .map(|id| (id, cluster.url(id)))
        .collect();
    cluster.admin_client_for(2).cluster_init(members).await?;
    assert_eq!(cluster.leader().await?, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_that_dies_at_start_fails_fast_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("broken-node");
    std::fs::write(
        &bin,
        "#!/bin/sh\necho 'config key `listen`: boom' >&2\nexit 1\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let started = std::time::Instant::now();
    let err = TestCluster::start(ClusterOptions {
        nodes: 1,
        node_bin: Some(bin),
        ..ClusterOptions::default()
    })
    .await
    .err()
    .expect("the node exits");
    let text = format!("{err:#}");
    assert!(text.contains("exited") && text.contains("boom"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

//! `sessyncctl audit tail --follow` against a real cluster: a login made after the tail started
//! shows up in its output.

use std::process::Stdio;
use std::time::Duration;

use sessync_chaos_tests::{ClusterOptions, TestCluster};
use sessync_proto::api::CreateSessionRequest;
use sessync_proto::UserId;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_tail_follows_new_events() -> anyhow::Result<()> {
    let cluster = TestCluster::start(ClusterOptions::default()).await?;
    let mut child = tokio::process::Command::new(crate::ctl::ctl_binary()?)
        .args([
            "--endpoints",
            &cluster.urls().join(","),
            "--api-key",
            cluster.admin_key(),
        ])
        .args([
            "--output",
            "json",
            "audit",
            "tail",
            "--follow",
            "--interval",
            "200ms",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();

    // Let the tail print the backlog and start following, then log in.
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster
        .app_client()
        .create_session(&CreateSessionRequest {
            user_id: UserId::parse_field("tailed-user", "user_id").unwrap(),
            device: Default::default(),
            origin: None,
            idempotency_key: None,
        })
        .await?;

    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines.next_line().await? {
            let v: serde_json::Value = serde_json::from_str(&line)?;
            if v["kind"] == "session_created" && v["user_id"] == "tailed-user" {
                return anyhow::Ok(true);
            }
        }
        anyhow::Ok(false)
    })
    .await;
    child.kill().await?;
    assert!(
        matches!(found, Ok(Ok(true))),
        "the tail did not show the login: {found:?}"
    );
    Ok(())
}

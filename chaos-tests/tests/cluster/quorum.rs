//! Without a quorum, writes and linearizable reads answer 503 `unavailable` within the request
//! deadline instead of hanging; once a quorum is back, the same calls succeed.

use std::time::Duration;

use sessync_chaos_tests::{login, ClusterOptions, TestCluster};
use sessync_client::ClientError;
use sessync_proto::api::{Consistency, ValidateRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_quorum_is_unavailable_not_a_hang() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(ClusterOptions {
        extra_toml: "[limits]\nrequest_timeout = \"2s\"".to_owned(),
        ..ClusterOptions::default()
    })
    .await?;
    let leader = cluster.leader().await?;
    let token = cluster
        .app_client()
        .create_session(&login("lonely"))
        .await?
        .token;
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
    let write = on_leader.create_session(&login("lonely")).await;
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
        .create_session(&login("lonely"))
        .await;
    assert!(
        again.is_ok(),
        "with a quorum back the write succeeds: {again:?}"
    );
    Ok(())
}

/// The one-deadline defect: a follower's read index then its forward, or a forward to a leader
/// that no longer answers, each waited its own timeout, so one request could take several
/// `request_timeout`s. Every request is answered within one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_answers_within_one_request_timeout() -> anyhow::Result<()> {
    const DEADLINE: Duration = Duration::from_secs(2);
    // What the answer may take past the node's deadline (loopback, a loaded CI machine).
    const SLACK: Duration = Duration::from_millis(1500);
    let mut cluster = TestCluster::start(ClusterOptions {
        extra_toml: "[limits]\nrequest_timeout = \"2s\"".to_owned(),
        ..ClusterOptions::default()
    })
    .await?;
    let leader = cluster.leader().await?;
    let created = cluster
        .app_client()
        .create_session(&login("lonely"))
        .await?;
    let followers: Vec<u64> = cluster
        .node_ids()
        .into_iter()
        .filter(|n| *n != leader)
        .collect();
    let (asked, gone) = (followers[0], followers[1]);
    cluster.kill(gone);
    // The leader hangs: the follower still names it, forwards to it and asks it for read
    // indexes, and gets no answer.
    cluster.pause(leader)?;
    let client = cluster.app_client_for(asked);
    let id = created.session.session_id.as_str().to_owned();
    let validate = serde_json::json!({"token": created.token, "touch": true}).to_string();
    let login = serde_json::json!({"user_id": "lonely"}).to_string();
    let touch = format!("/v1/sessions/{id}/touch");
    let calls: [(&str, &str, Option<&str>); 3] = [
        ("/v1/sessions", "POST", Some(&login)),
        ("/v1/sessions/validate", "POST", Some(&validate)),
        (&touch, "POST", None),
    ];
    // Twice: while the follower still names the paused leader, and after it gave up on it.
    for round in 0..2 {
        for (path, method, body) in &calls {
            let started = std::time::Instant::now();
            let (status, answer) = client
                .request_raw(
                    method.parse()?,
                    path,
                    body.map(|b| b.as_bytes().to_vec()),
                    &[],
                )
                .await?;
            let took = started.elapsed();
            assert_eq!(
                status,
                503,
                "round {round}, {path}: {}",
                String::from_utf8_lossy(&answer)
            );
            assert!(
                took <= DEADLINE + SLACK,
                "round {round}, {path} took {took:?}, past one request_timeout ({DEADLINE:?})"
            );
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    cluster.resume(leader)?;
    Ok(())
}

/// The one-deadline defect on a path that succeeds, only slowly: a follower's read index and
/// then its relay of the validate (the touch was due) each took most of a `request_timeout`, so
/// the answer came after two. The link from the follower to the leader is slowed (0.8 s each
/// way), so each stage takes 1.6 s of the 2 s deadline: the answer is 503 at the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_index_then_a_relay_share_one_request_timeout() -> anyhow::Result<()> {
    const DEADLINE: Duration = Duration::from_secs(2);
    const SLACK: Duration = Duration::from_millis(1000);
    let cluster = TestCluster::start(ClusterOptions {
        proxied: true,
        policy_toml: "touch_interval = \"1s\"".to_owned(),
        extra_toml: "[limits]\nrequest_timeout = \"2s\"".to_owned(),
        ..ClusterOptions::default()
    })
    .await?;
    let leader = cluster.leader().await?;
    let created = cluster
        .app_client_for(leader)
        .with_timeout(Duration::from_secs(15))
        .create_session(&login("lonely"))
        .await?;
    let asked = cluster
        .node_ids()
        .into_iter()
        .find(|n| *n != leader)
        .expect("a follower");
    cluster.faults().set(
        asked,
        leader,
        sessync_chaos_tests::LinkFault::Delay(Duration::from_millis(800)),
    );
    // The touch is due (past touch_interval), so the follower relays the validate.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let validate = serde_json::json!({"token": created.token, "touch": true}).to_string();
    let started = std::time::Instant::now();
    let (status, answer) = cluster
        .app_client_for(asked)
        .with_timeout(Duration::from_secs(15))
        .request_raw(
            "POST".parse()?,
            "/v1/sessions/validate",
            Some(validate.into_bytes()),
            &[],
        )
        .await?;
    let took = started.elapsed();
    cluster.faults().heal_all();
    assert!(
        took <= DEADLINE + SLACK,
        "answered {status} after {took:?}, past one request_timeout ({DEADLINE:?}): {}",
        String::from_utf8_lossy(&answer)
    );
    Ok(())
}

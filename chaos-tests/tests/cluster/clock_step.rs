//! A clock stepped while the node runs (libfaketime's `FAKETIME_TIMESTAMP_FILE`, re-read at
//! every clock reading: an NTP step, a VM resumed): the node stamps nothing by the stepped
//! clock, and no session ends early on any node, during the step or after.

use std::time::Duration;

use sessync_chaos_tests::{now_ms, ClusterOptions, TestCluster};
use sessync_client::Method;
use sessync_proto::api::{Consistency, CreateSessionResponse, ValidateRequest};

use crate::clock::{login, options, STAMP_SLACK_MS};

/// Every session of `sessions` (each its user's only one) still live, as every node sees it: a
/// linearizable and a local validate on each node say valid (a node may answer 503 for a while
/// after its clock moved, until it is measured again: retried), and no session of those users
/// ended `idle_timeout` or `max_lifetime` in any node's replica.
async fn none_ended_early(
    cluster: &TestCluster,
    sessions: &[CreateSessionResponse],
) -> anyhow::Result<()> {
    for id in cluster.node_ids() {
        let client = cluster
            .app_client_for(id)
            .with_timeout(Duration::from_secs(3));
        for s in sessions {
            for consistency in [Consistency::Linearizable, Consistency::Local] {
                let started = tokio::time::Instant::now();
                let v = loop {
                    let asked = client
                        .validate(&ValidateRequest {
                            token: s.token.clone(),
                            touch: false,
                            consistency,
                        })
                        .await;
                    match asked {
                        Ok(v) => break v,
                        Err(_) if started.elapsed() < Duration::from_secs(40) => {
                            tokio::time::sleep(Duration::from_millis(300)).await;
                        }
                        Err(e) => anyhow::bail!("node {id} never answered {consistency:?}: {e}"),
                    }
                };
                assert!(
                    v.valid,
                    "node {id} ({consistency:?}) ended {} early: {v:?}",
                    s.session.user_id
                );
            }
            let path = format!("/v1/users/{}/sessions?state=all", s.session.user_id);
            let started = tokio::time::Instant::now();
            let body = loop {
                let (status, body) = client.request_raw(Method::GET, &path, None, &[]).await?;
                if status == 200 {
                    break body;
                }
                anyhow::ensure!(
                    status == 503 && started.elapsed() < Duration::from_secs(40),
                    "node {id} never listed {}: {status}",
                    s.session.user_id
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            };
            let body: serde_json::Value = serde_json::from_slice(&body)?;
            for row in body["sessions"].as_array().into_iter().flatten() {
                let reason = row["end_reason"].as_str().unwrap_or_default();
                assert!(
                    !matches!(reason, "idle_timeout" | "max_lifetime"),
                    "node {id}: a session of {} ended {reason}: {row}",
                    s.session.user_id
                );
            }
        }
    }
    Ok(())
}

/// The measured defect of a stepped clock: the leader's wall clock stepped minutes ahead while
/// it ran (an NTP step, a VM resumed) and back after six seconds. Its samples were taken before
/// the step, so the guard let it stamp logins, touches and sweeps minutes ahead: idle sessions
/// ended `idle_timeout` at once (4 of 6 in the report), and a session made later had a
/// last_seen_at minutes in the future (cluster time never goes back). Now the step is found at the first
/// look at the clock after it (wall and monotonic time disagree) and nothing is stamped by it
/// until the clock is measured again; no session ends early on any node, during or after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_clock_stepped_forward_and_back_ends_no_session_early() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(ClusterOptions {
        init: false,
        // The shipped timing: a heartbeat (and so a clock sample) every 250 ms.
        raft_toml: "heartbeat_interval = \"250ms\"\nelection_timeout_min = \"1s\"\n\
                    election_timeout_max = \"2s\""
            .to_owned(),
        ..options()
    })
    .await?;
    for id in cluster.node_ids() {
        cluster.set_steppable_clock(id, true);
        cluster.restart(id).await?;
    }
    cluster.init_all().await?;
    let leader = cluster.leader().await?;
    let mut sessions = Vec::new();
    for i in 0..6 {
        sessions.push(login(&cluster.app_client(), &format!("stepped-{i}")).await?);
    }
    cluster.wait_converged(Duration::from_secs(20)).await?;

    // Ten minutes ahead for about six seconds, with traffic through every node meanwhile
    // (touching validates, logins): whatever is stamped, is stamped by a good clock or not at
    // all.
    // Four minutes: past the idle timeout, within the 5-minute freshness window of node-to-node
    // proofs (a step past it gets the stepped leader's appends refused as stale, and nothing it
    // stamps commits).
    cluster.step_clock(leader, "+240")?;
    println!("node {leader}'s clock stepped +240 s");
    // Logins on the leader right at the step (before, those it took before its next sample
    // were stamped ten minutes ahead): each is refused, or stamped by a good clock.
    let to_leader = cluster
        .app_client_for(leader)
        .with_timeout(Duration::from_secs(3));
    let burst = (0..16).map(|i| {
        let c = to_leader.clone();
        async move { login(&c, &format!("burst-{i}")).await }
    });
    let outcomes = futures::future::join_all(burst).await;
    let refused = outcomes.iter().filter(|o| o.is_err()).count();
    println!(
        "logins at the step: {} stamped, {refused} refused ({:?})",
        outcomes.len() - refused,
        outcomes.iter().find_map(|o| o.as_ref().err())
    );
    for made in outcomes.into_iter().flatten() {
        let (created, now) = (made.session.created_at.millis(), now_ms());
        assert!(
            created.abs_diff(now) < STAMP_SLACK_MS,
            "a login at the step was stamped {created}, true time {now}: by the stepped clock"
        );
    }
    let until = tokio::time::Instant::now() + Duration::from_secs(6);
    let mut i = 0;
    while tokio::time::Instant::now() < until {
        for id in cluster.node_ids() {
            let client = cluster
                .app_client_for(id)
                .with_timeout(Duration::from_secs(1));
            let s = &sessions[i % sessions.len()];
            let _ = client
                .validate(&ValidateRequest {
                    token: s.token.clone(),
                    touch: true,
                    consistency: Consistency::Linearizable,
                })
                .await;
            i += 1;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    none_ended_early_now(&cluster, &sessions).await?;
    // The stepped node knows its clock is off (by the step, or by fresh samples since).
    let status = cluster
        .admin_client_for(leader)
        .with_timeout(Duration::from_secs(3))
        .cluster_status()
        .await?;
    println!(
        "node {leader} while stepped: skewed {}, offset {:?} ms, role {}",
        status.clock_skewed, status.clock_offset_ms, status.role
    );
    assert!(status.clock_skewed, "{status:?}");
    assert!(status.clock_offset_ms.unwrap_or(0) > 230_000, "{status:?}");
    cluster.step_clock(leader, "+0")?;
    println!("node {leader}'s clock stepped back");
    tokio::time::sleep(Duration::from_secs(2)).await;
    none_ended_early(&cluster, &sessions).await?;

    // Made afterwards: stamped by a good clock, not ten minutes ahead.
    let started = tokio::time::Instant::now();
    let after = loop {
        match login(&cluster.app_client(), "stepped-after").await {
            Ok(s) => break s,
            Err(e) if started.elapsed() < Duration::from_secs(30) => {
                println!("login after the step: {e}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => return Err(e),
        }
    };
    let (seen, now) = (after.session.last_seen_at.millis(), now_ms());
    assert!(
        seen.abs_diff(now) < STAMP_SLACK_MS,
        "last_seen_at {seen}, true time {now}: cluster time ran ahead"
    );
    cluster.wait_converged(Duration::from_secs(20)).await?;
    cluster.assert_identical_state().await?;
    Ok(())
}

/// While the leader's clock is still stepped: no session of `sessions` has ended in any
/// replica (read from each node's own state, which needs no clock).
async fn none_ended_early_now(
    cluster: &TestCluster,
    sessions: &[CreateSessionResponse],
) -> anyhow::Result<()> {
    let mut answered = 0;
    for id in cluster.node_ids() {
        let client = cluster
            .app_client_for(id)
            .with_timeout(Duration::from_secs(3));
        for s in sessions {
            let path = format!("/v1/users/{}/sessions?state=all", s.session.user_id);
            let (status, body) = client.request_raw(Method::GET, &path, None, &[]).await?;
            if status == 503 {
                // The stepped node judges nothing by its clock (and lists nothing by it).
                continue;
            }
            anyhow::ensure!(status == 200, "node {id}: {status}");
            answered += 1;
            let body: serde_json::Value = serde_json::from_slice(&body)?;
            for row in body["sessions"].as_array().into_iter().flatten() {
                assert!(
                    row["end_reason"].is_null(),
                    "node {id}: a session of {} ended while the leader's clock was stepped: {row}",
                    s.session.user_id
                );
            }
        }
    }
    anyhow::ensure!(answered > 0, "no node listed the sessions");
    Ok(())
}

//! When a linearizable read is judged, and what a request's deadline covers, on real nodes
//! whose links are slowed by the proxies (a slow link makes each stage take a known time, so
//! these outcomes do not depend on luck).
//!
//! - The leader judges a validate at max(its clock, the applied cluster time) *after* its read
//!   index: a session whose idle deadline passes while the leader confirms its leadership is
//!   ended for that read (it was judged at the time the read began, before the fix).
//! - A write still waiting to be proposed when its request timed out is never written: the
//!   caller was told 503, and a create without an idempotency key would otherwise leave a
//!   session nobody holds.

use std::time::Duration;

use sessync_chaos_tests::{login, ClusterOptions, LinkFault, TestCluster};
use sessync_proto::api::{Consistency, ValidateRequest};
use sessync_proto::{Timestamp, UserId};

/// Sleeps until wall-clock time `t` (the nodes run on this machine's clock).
async fn sleep_until(t: Timestamp) {
    let now = Timestamp::now();
    if t > now {
        tokio::time::sleep(t.since(now)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_judges_a_read_after_its_read_index_not_before() -> anyhow::Result<()> {
    // Every link from the leader is slowed to 1 s each way, so confirming leadership takes
    // about 2 s; heartbeats and the election timeout are long enough for the slowed links to
    // keep the same leader.
    const DELAY: Duration = Duration::from_millis(1000);
    let cluster = TestCluster::start(ClusterOptions {
        proxied: true,
        policy_toml: "idle_timeout = \"4s\"\ntouch_interval = \"1s\"".to_owned(),
        raft_toml: "heartbeat_interval = \"3s\"\nelection_timeout_min = \"20s\"\n\
                    election_timeout_max = \"25s\""
            .to_owned(),
        extra_toml: "[limits]\nrequest_timeout = \"8s\"".to_owned(),
        ..ClusterOptions::default()
    })
    .await?;
    let leader = cluster.leader().await?;
    let on_leader = cluster
        .app_client_for(leader)
        .with_timeout(Duration::from_secs(20));
    let created = on_leader.create_session(&login("judged")).await?;
    let deadline = created.session.idle_expires_at;

    let faults = cluster.faults();
    for f in cluster.node_ids().into_iter().filter(|n| *n != leader) {
        faults.set(leader, f, LinkFault::Delay(DELAY));
    }
    // Asked 1 s before the session's idle end; the leader's read index completes past it.
    sleep_until(deadline.minus(Duration::from_secs(1))).await;
    let asked = Timestamp::now();
    let v = on_leader
        .validate(&ValidateRequest {
            token: created.token.clone(),
            touch: false,
            consistency: Consistency::Linearizable,
        })
        .await?;
    let answered = Timestamp::now();
    faults.heal_all();
    assert!(asked < deadline, "the read must begin before the deadline");
    assert!(
        answered > deadline,
        "the slowed read index must end after the deadline (asked {asked}, answered {answered}, \
         deadline {deadline})"
    );
    assert!(
        !v.valid,
        "the session's idle end ({deadline}) passed before the read index was confirmed \
         ({answered}); the leader judged the read at its start: {v:?}"
    );
    assert_eq!(v.reason.as_deref(), Some("idle_timeout"), "{v:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_request_timed_out_in_the_queue_is_never_applied() -> anyhow::Result<()> {
    // Long election timeouts: the leader stays leader while cut off, and commits what it holds
    // once healed.
    const WRITES: usize = 12;
    let cluster = TestCluster::start(ClusterOptions {
        proxied: true,
        policy_toml: "max_concurrent_sessions = 0".to_owned(),
        raft_toml: "election_timeout_min = \"20s\"\nelection_timeout_max = \"25s\"".to_owned(),
        extra_toml: "[limits]\nrequest_timeout = \"2s\"".to_owned(),
        ..ClusterOptions::default()
    })
    .await?;
    let leader = cluster.leader().await?;
    let ids = cluster.node_ids();
    cluster.faults().isolate(leader, &ids);

    // Creates without an idempotency key: the first two, a moment apart, take the group
    // commit's two slots alone (each an entry Raft holds while the leader is cut off); the rest,
    // sent together, wait for a slot. Every caller gets 503. (Sent all at once, a slot's first
    // entry may carry several of them: it takes everything waiting when it starts.)
    let raw = cluster
        .app_client_for(leader)
        .with_timeout(Duration::from_secs(10));
    let body = serde_json::json!({"user_id": "orphans"}).to_string();
    let mut calls = Vec::new();
    for i in 0..WRITES {
        if i == 1 || i == 2 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let (raw, body) = (raw.clone(), body.clone());
        calls.push(tokio::spawn(async move {
            raw.request_raw(
                "POST".parse().unwrap(),
                "/v1/sessions",
                Some(body.into_bytes()),
                &[],
            )
            .await
        }));
    }
    for c in calls {
        let (status, answer) = c.await??;
        assert_eq!(
            status,
            503,
            "a write without a quorum: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.faults().heal_all();
    cluster.wait_converged(Duration::from_secs(30)).await?;

    // What Raft already held may commit (the callers were told the outcome is unknown); what
    // still waited when its deadline passed must not.
    let user = UserId::parse_field("orphans", "user_id").unwrap();
    let kept = cluster
        .admin_client()
        .with_timeout(Duration::from_secs(20))
        .list_sessions(&user, true)
        .await?;
    assert!(
        kept.len() <= 2,
        "{} of {WRITES} timed-out creates were applied; only those Raft held when their callers \
         gave up (at most 2) may be",
        kept.len()
    );
    cluster.assert_identical_state().await?;
    Ok(())
}

/// The one-request deadline cut membership changes short: adding a learner waits until it has
/// caught up (within openraft's replication lag threshold, 5,000 entries), which may take
/// longer than `request_timeout` (2 s here), and was answered 503 at 2 s however long the
/// operator was willing to wait. It has a deadline of its own, also when a follower forwards it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_slow_learner_is_not_cut_off_at_request_timeout() -> anyhow::Result<()> {
    // More entries than the lag threshold, so the new learner is behind until it has run: two
    // clients one create at a time, so group commit finds a free slot for each and every create
    // is an entry of its own.
    const TASKS: usize = 2;
    const CREATES_PER_TASK: usize = 2600;
    let mut cluster = TestCluster::start(ClusterOptions {
        policy_toml: "max_concurrent_sessions = 0".to_owned(),
        extra_toml: "[limits]\nrequest_timeout = \"2s\"".to_owned(),
        ..ClusterOptions::default()
    })
    .await?;
    let leader = cluster.leader().await?;
    let mut fills = Vec::new();
    for t in 0..TASKS {
        let client = cluster
            .app_client_for(leader)
            .with_timeout(Duration::from_secs(20));
        fills.push(tokio::spawn(async move {
            for _ in 0..CREATES_PER_TASK {
                client
                    .create_session(&login(&format!("filler-{t}")))
                    .await?;
            }
            Ok::<_, sessync_client::ClientError>(())
        }));
    }
    for f in fills {
        f.await??;
    }
    let follower = cluster
        .node_ids()
        .into_iter()
        .find(|n| *n != leader)
        .expect("a follower");
    let learner = cluster.add_node().await?;
    // Frozen, the learner cannot catch up until it is let go, 4 s later.
    cluster.pause(learner)?;
    let body =
        serde_json::json!({"node_id": learner, "url": cluster.raft_url(learner)}).to_string();
    let admin = cluster
        .admin_client_for(follower)
        .with_timeout(Duration::from_secs(60));
    let call = tokio::spawn(async move {
        admin
            .request_raw(
                "POST".parse().unwrap(),
                "/cluster/learners",
                Some(body.into_bytes()),
                &[],
            )
            .await
    });
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        !call.is_finished(),
        "the learner cannot have caught up while frozen: {:?}",
        call.await
    );
    cluster.resume(learner)?;
    let (status, answer) = call.await??;
    assert_eq!(
        status,
        200,
        "adding a learner that caught up after 4 s: {}",
        String::from_utf8_lossy(&answer)
    );
    Ok(())
}

//! The clock guard on real nodes whose wall clock runs off (libfaketime): a node further from
//! the voters' median than `max_clock_skew` says so (`/readyz`, `cluster status`, metrics),
//! answers local reads `clock_skew` instead of judging sessions by its clock, never stamps a
//! command, and a leader with such a clock hands over; no session ends early (invariant 5). A
//! node whose clock has not been measured yet judges nothing by it either.

use std::time::Duration;

use sessync_chaos_tests::{now_ms, ClusterOptions, TestCluster};
use sessync_client::{Client, ClientError, Method};
use sessync_proto::api::ClusterStatus;
use sessync_proto::api::{
    Consistency, CreateSessionRequest, CreateSessionResponse, ValidateRequest,
};
use sessync_proto::UserId;

/// The policy of the measured defect: a two-minute idle timeout, a 500 ms skew bound.
const POLICY: &str = "idle_timeout = \"2m\"\nmax_clock_skew = \"500ms\"\ntouch_interval = \"1s\"";

/// Most a test waits for the guard to notice (samples arrive with every heartbeat).
const NOTICE: Duration = Duration::from_secs(20);

pub(crate) fn options() -> ClusterOptions {
    ClusterOptions {
        policy_toml: POLICY.to_owned(),
        ..ClusterOptions::default()
    }
}

/// A running cluster with the test's policy, and one of its followers (to run off).
async fn with_a_follower() -> anyhow::Result<(TestCluster, u64)> {
    let cluster = TestCluster::start(options()).await?;
    let leader = cluster.leader().await?;
    let follower = cluster
        .node_ids()
        .into_iter()
        .find(|n| *n != leader)
        .expect("three nodes");
    Ok((cluster, follower))
}

pub(crate) async fn login(client: &Client, user: &str) -> anyhow::Result<CreateSessionResponse> {
    Ok(client
        .create_session(&CreateSessionRequest {
            user_id: UserId::parse_field(user, "user_id").unwrap(),
            device: Default::default(),
            origin: None,
            idempotency_key: None,
        })
        .await?)
}

/// One local validate on exactly this node, no retries: (status, body).
async fn local_validate(
    cluster: &TestCluster,
    id: u64,
    token: &str,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let body = serde_json::to_vec(&ValidateRequest {
        token: token.to_owned(),
        touch: false,
        consistency: Consistency::Local,
    })?;
    let (status, body) = cluster
        .app_client_for(id)
        .request_raw(Method::POST, "/v1/sessions/validate", Some(body), &[])
        .await?;
    Ok((status, serde_json::from_slice(&body)?))
}

/// Node `id`'s own status, once it says its clock is skewed (or the last one seen).
async fn wait_skewed(cluster: &TestCluster, id: u64) -> anyhow::Result<ClusterStatus> {
    let admin = cluster
        .admin_client_for(id)
        .with_timeout(Duration::from_secs(2));
    let started = tokio::time::Instant::now();
    loop {
        let status = admin.cluster_status().await;
        match status {
            Ok(s) if s.clock_skewed => return Ok(s),
            other if started.elapsed() > NOTICE => {
                anyhow::bail!("node {id} never found its clock skewed: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Linearizable validate through every node: valid, with most of the idle timeout left.
async fn valid_everywhere(cluster: &TestCluster, token: &str) -> anyhow::Result<()> {
    for (id, v) in cluster.validate_everywhere(token).await? {
        assert!(v.valid, "node {id} ended a live session: {v:?}");
        let idle = v.seconds_until_idle_end.unwrap_or(0);
        assert!(
            idle > 60,
            "node {id} judged by a fast clock: {idle} s of idle left"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_three_minutes_fast_judges_nothing_by_its_clock() -> anyhow::Result<()> {
    let (mut cluster, fast) = with_a_follower().await?;
    let before = login(&cluster.app_client(), "clock-before").await?;

    cluster.set_clock_offset(fast, Some("+180"));
    cluster.restart(fast).await?;
    let status = wait_skewed(&cluster, fast).await?;
    let off = status.clock_offset_ms.expect("a measured offset");
    assert!((175_000..=185_000).contains(&off), "offset {off} ms");
    assert!(
        status.not_ready.contains(&"clock_skew".to_owned()),
        "{status:?}"
    );

    // Not ready, and no local read judged by its clock (it would call every session idle).
    let probe = cluster.app_client_for(fast);
    let (s, b) = probe.request_raw(Method::GET, "/readyz", None, &[]).await?;
    assert_eq!(s, 503, "{}", String::from_utf8_lossy(&b));
    let (s, b) = local_validate(&cluster, fast, &before.token).await?;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (503, Some("clock_skew")),
        "{b}"
    );
    // The other nodes' clocks are fine.
    for id in cluster.node_ids().into_iter().filter(|n| *n != fast) {
        let (s, b) = local_validate(&cluster, id, &before.token).await?;
        assert_eq!(
            (s, b["valid"].as_bool()),
            (200, Some(true)),
            "node {id}: {b}"
        );
    }
    let metrics = cluster.admin_client_for(fast).metrics().await?;
    assert!(metrics.contains("sessync_clock_skewed 1"), "{metrics}");

    // Writes through it go to the leader, which stamps them; it never leads.
    let through = login(&probe, "clock-through").await?;
    valid_everywhere(&cluster, &before.token).await?;
    valid_everywhere(&cluster, &through.token).await?;
    let leader = cluster.leader().await?;
    assert_ne!(leader, fast);

    // Fixed clock: ready again.
    cluster.set_clock_offset(fast, None);
    cluster.restart(fast).await?;
    let admin = cluster
        .admin_client_for(fast)
        .with_timeout(Duration::from_secs(2));
    let started = tokio::time::Instant::now();
    while !admin.readyz().await.unwrap_or(false) {
        assert!(
            started.elapsed() < NOTICE,
            "node {fast} never became ready again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (s, b) = local_validate(&cluster, fast, &before.token).await?;
    assert_eq!((s, b["valid"].as_bool()), (200, Some(true)), "{b}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_three_minutes_fast_stamps_nothing_and_hands_over() -> anyhow::Result<()> {
    // Node 1 starts fast and initialises the cluster, so it campaigns first.
    let mut cluster = TestCluster::start(ClusterOptions {
        init: false,
        ..options()
    })
    .await?;
    cluster.set_clock_offset(1, Some("+180"));
    cluster.restart(1).await?;
    cluster.init_all().await?;

    // Another node leads within a few election timeouts, and node 1 knows its clock is off.
    let started = tokio::time::Instant::now();
    let leader = loop {
        let l = cluster.leader().await?;
        if l != 1 {
            break l;
        }
        assert!(started.elapsed() < NOTICE, "node 1 kept the leadership");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let status = wait_skewed(&cluster, 1).await?;
    assert!(status.clock_offset_ms.unwrap_or(0) > 170_000, "{status:?}");

    // Everything is stamped by a good clock: a new session has its whole idle timeout, as
    // seen through every node, and was created at the true time.
    let s = login(&cluster.app_client(), "clock-leader").await?;
    let now_ms = now_ms();
    let created = s.session.created_at.millis();
    assert!(
        created.abs_diff(now_ms) < 30_000,
        "created_at {created} vs now {now_ms}: stamped by the fast clock"
    );
    valid_everywhere(&cluster, &s.token).await?;
    // Node 1 refuses to judge local reads by its clock.
    let (st, b) = local_validate(&cluster, 1, &s.token).await?;
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (503, Some("clock_skew")),
        "{b}"
    );
    assert_ne!(cluster.leader().await?, 1, "leader was {leader}");
    cluster.wait_converged(Duration::from_secs(20)).await?;
    cluster.assert_identical_state().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_twenty_minutes_fast_answers_local_reads_clock_skew() -> anyhow::Result<()> {
    // So far off that its node-to-node proofs are refused as stale: it learns the others'
    // time from the refusals, and says clock_skew rather than `valid: false, unknown`.
    let (mut cluster, fast) = with_a_follower().await?;
    let s = login(&cluster.app_client(), "clock-far").await?;
    cluster.wait_converged(Duration::from_secs(20)).await?;

    cluster.set_clock_offset(fast, Some("+1200"));
    cluster.restart(fast).await?;
    let status = wait_skewed(&cluster, fast).await?;
    assert!(
        status.clock_offset_ms.unwrap_or(0) > 1_100_000,
        "{status:?}"
    );
    let (st, b) = local_validate(&cluster, fast, &s.token).await?;
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (503, Some("clock_skew")),
        "{b}"
    );

    // The other two carry on.
    let others: Vec<u64> = cluster
        .node_ids()
        .into_iter()
        .filter(|n| *n != fast)
        .collect();
    for id in others {
        let v = cluster
            .app_client_for(id)
            .validate(&ValidateRequest {
                token: s.token.clone(),
                touch: true,
                consistency: Consistency::Linearizable,
            })
            .await?;
        assert!(v.valid, "node {id}: {v:?}");
    }
    let e = cluster
        .app_client_for(fast)
        .with_timeout(Duration::from_secs(2))
        .validate(&ValidateRequest {
            token: s.token.clone(),
            touch: false,
            consistency: Consistency::Local,
        })
        .await;
    assert!(matches!(e, Err(ClientError::ClockSkew { .. })), "{e:?}");
    Ok(())
}

/// How far from the true time a good clock may stamp a session (loopback, a loaded machine).
pub(crate) const STAMP_SLACK_MS: u64 = 5_000;

/// Node `id`'s own view: its role and the leader it names (`None` if it does not answer).
async fn role_of(cluster: &TestCluster, id: u64) -> Option<(String, Option<u64>)> {
    let admin = cluster
        .admin_client_for(id)
        .with_timeout(Duration::from_secs(2));
    admin
        .cluster_status()
        .await
        .ok()
        .map(|s| (s.role, s.leader))
}

/// Whether node `id` says it is the leader (its role, not only the leader id it remembers).
async fn leads(cluster: &TestCluster, id: u64) -> bool {
    role_of(cluster, id)
        .await
        .is_some_and(|(role, _)| role == "leader")
}

/// The measured defect, as leader: sessions made on a healthy cluster, then the leader comes
/// back three minutes fast and leads again. While it leads, every write sent to it is refused
/// `clock_skew` (nothing stamped by its clock); once it hands over, writes through it are
/// stamped by a good clock. No session made before ends early anywhere, and the replicas agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_gone_three_minutes_fast_stamps_nothing_and_ends_no_session() -> anyhow::Result<()>
{
    let mut cluster = TestCluster::start(options()).await?;
    let fast = cluster.leader().await?;
    let others: Vec<u64> = cluster
        .node_ids()
        .into_iter()
        .filter(|n| *n != fast)
        .collect();
    let made_at = tokio::time::Instant::now();
    let mut before = Vec::new();
    for i in 0..4 {
        before.push(login(&cluster.app_client(), &format!("skewed-leader-{i}")).await?);
    }
    cluster.wait_converged(Duration::from_secs(20)).await?;

    // Made to lead again, deterministically: the others are down while it restarts fast, so
    // nobody else can lead (it resumes its committed leadership at once, or wins their votes
    // later), and they come back with election timeouts of 6-7 s, so it still leads for
    // seconds after it finds its clock off and stops its heartbeats.
    for &o in &others {
        cluster.kill(o);
    }
    cluster.set_clock_offset(fast, Some("+180"));
    cluster.restart(fast).await?;
    for &o in &others {
        cluster.set_node_toml(
            o,
            "[raft]\nelection_timeout_min = \"6s\"\nelection_timeout_max = \"7s\"",
        )?;
        cluster.restart(o).await?;
    }
    let started = tokio::time::Instant::now();
    while !leads(&cluster, fast).await {
        assert!(
            started.elapsed() < NOTICE,
            "node {fast} never led again with its fast clock"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Writes sent to it until another node leads: each refused, `clock_skew` once its clock
    // is measured (503 `unavailable` naming the clock before: just restarted, it leads before
    // anyone has answered it), or (once it has handed over and forwards) stamped by a good
    // clock. Never stamped by its own.
    let to_fast = cluster
        .app_client_for(fast)
        .with_timeout(Duration::from_secs(3));
    let (mut refused, mut unmeasured, mut served, mut unavailable) = (0, 0, 0, 0);
    let started = tokio::time::Instant::now();
    for i in 0.. {
        let led = role_of(&cluster, fast).await;
        let another = led
            .as_ref()
            .is_some_and(|(role, l)| role != "leader" && l.is_some_and(|l| l != fast));
        if another && served > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "node {fast} never handed over ({refused} refused, {served} served)"
        );
        match login(&to_fast, &format!("skewed-write-{i}")).await {
            Ok(s) => {
                let (created, now) = (s.session.created_at.millis(), now_ms());
                assert!(
                    created.abs_diff(now) < STAMP_SLACK_MS,
                    "write {i} (leader then {led:?}) stamped {created}, true time {now}: \
                     stamped by the fast clock"
                );
                served += 1;
            }
            Err(e) => match e.downcast_ref::<ClientError>() {
                Some(ClientError::ClockSkew { .. }) => refused += 1,
                Some(ClientError::Unavailable { message }) if message.contains("clock") => {
                    unmeasured += 1;
                }
                // No leader for a moment (the election after it stepped back): nothing was
                // stamped either.
                Some(ClientError::Unavailable { .. }) if !leads(&cluster, fast).await => {
                    unavailable += 1;
                }
                _ => panic!("write {i} to node {fast} (leader then {led:?}): {e:?}"),
            },
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "writes to the fast leader: {refused} clock_skew, {unmeasured} unmeasured, {served} \
         served, {unavailable} unavailable"
    );
    assert!(refused > 0, "no write reached node {fast} while it led");
    let status = wait_skewed(&cluster, fast).await?;
    assert!(status.clock_offset_ms.unwrap_or(0) > 170_000, "{status:?}");

    // No session made before ended early: valid through every node, with the idle time the
    // true clock leaves them.
    for s in &before {
        for id in cluster.node_ids() {
            let v = cluster
                .app_client_for(id)
                .validate(&ValidateRequest {
                    token: s.token.clone(),
                    touch: false,
                    consistency: Consistency::Linearizable,
                })
                .await?;
            assert!(v.valid, "node {id} ended a live session: {v:?}");
            let left = v.seconds_until_idle_end.unwrap_or(0);
            let most = 120 - made_at.elapsed().as_secs().min(120);
            assert!(
                left + 10 >= most,
                "node {id}: {left} s of idle left, the true clock leaves {most}"
            );
        }
    }
    cluster.wait_converged(Duration::from_secs(20)).await?;
    cluster.assert_identical_state().await?;
    Ok(())
}

/// The startup window: a node restarted (three minutes fast) while the others are down has no
/// measurement of its clock. It is not ready (`clock_unmeasured`) and judges no local read by
/// its clock (which would call every session idle); once the others are back it learns it is
/// off, and says `clock_skew`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_clock_is_not_measured_judges_nothing_by_it() -> anyhow::Result<()> {
    let (mut cluster, fast) = with_a_follower().await?;
    let s = login(&cluster.app_client(), "clock-unmeasured").await?;
    cluster.wait_converged(Duration::from_secs(20)).await?;
    let others: Vec<u64> = cluster
        .node_ids()
        .into_iter()
        .filter(|n| *n != fast)
        .collect();
    for &o in &others {
        cluster.kill(o);
    }
    cluster.set_clock_offset(fast, Some("+180"));
    cluster.restart(fast).await?;

    let probe = cluster.app_client_for(fast);
    let (st, b) = probe.request_raw(Method::GET, "/readyz", None, &[]).await?;
    let b: serde_json::Value = serde_json::from_slice(&b)?;
    assert_eq!(st, 503, "{b}");
    let reasons = b["reasons"].as_array().cloned().unwrap_or_default();
    assert!(reasons.contains(&"clock_unmeasured".into()), "{b}");
    // Refused, not judged: 503, never `valid: false, idle_timeout` from the fast clock.
    let (st, b) = local_validate(&cluster, fast, &s.token).await?;
    assert_eq!(st, 503, "a local read judged by an unmeasured clock: {b}");
    let message = b["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("clock"), "{b}");
    // It stays so while nobody can measure it (well past the first heartbeats).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (st, b) = local_validate(&cluster, fast, &s.token).await?;
    assert_eq!(st, 503, "{b}");

    // The others back: measured, and off (should it win an election first, it hands over).
    for &o in &others {
        cluster.restart(o).await?;
    }
    let status = wait_skewed(&cluster, fast).await?;
    let started = tokio::time::Instant::now();
    while cluster.leader().await? == fast {
        assert!(
            started.elapsed() < NOTICE,
            "node {fast} kept the leadership"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(status.clock_offset_ms.unwrap_or(0) > 170_000, "{status:?}");
    let (st, b) = local_validate(&cluster, fast, &s.token).await?;
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (503, Some("clock_skew")),
        "{b}"
    );
    valid_everywhere(&cluster, &s.token).await?;
    Ok(())
}

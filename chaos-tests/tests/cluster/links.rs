//! Faults on the links between nodes, in a proxied cluster (every request between nodes passes
//! the proxy of its target): a leader cut off both ways is replaced by a leader the others
//! elect, cannot commit alone, and follows once healed; a one-way cut (leader → one follower)
//! makes that follower campaign, and writes still commit through the other follower; a node
//! added later is reached through its own proxy too (`add_learner(id, raft_url(id))`); a leader
//! cut off does not touch a session from its stale replica.

use std::time::{Duration, Instant};

use sessync_chaos_tests::{login, ClusterOptions, LinkFault, TestCluster, POLL_INTERVAL};
use sessync_proto::api::{Consistency, ValidateRequest};

/// How long the nodes may take to elect a leader among themselves.
const ELECTION: Duration = Duration::from_secs(20);
/// How long a write may be retried while an election settles.
const WRITE: Duration = Duration::from_secs(30);

/// A proxied three-node cluster whose nodes answer a write they cannot commit within 2 s.
async fn proxied_cluster() -> anyhow::Result<TestCluster> {
    let cluster = TestCluster::start(ClusterOptions {
        proxied: true,
        extra_toml: "[limits]\nrequest_timeout = \"2s\"".to_owned(),
        ..ClusterOptions::default()
    })
    .await?;
    // The members are known by their proxies' URLs: node-to-node traffic goes through them.
    let status = cluster.admin_client().cluster_status().await?;
    for m in &status.members {
        assert_eq!(m.url, cluster.raft_url(m.node_id));
        assert_ne!(m.url, cluster.url(m.node_id));
    }
    Ok(cluster)
}

/// Node `id`'s Raft term.
async fn term(cluster: &TestCluster, id: u64) -> anyhow::Result<u64> {
    let status = cluster
        .admin_client_for(id)
        .with_timeout(Duration::from_secs(2))
        .cluster_status()
        .await?;
    Ok(status.term)
}

/// The leader the nodes `ids` agree on: one of them says it leads and all of them name it.
/// (`TestCluster::leader` asks every live node, and a leader cut off from the others still
/// says it leads.)
async fn leader_among(cluster: &TestCluster, ids: &[u64]) -> anyhow::Result<u64> {
    let deadline = Instant::now() + ELECTION;
    loop {
        let mut seen = Vec::new();
        for &id in ids {
            let status = cluster
                .admin_client_for(id)
                .with_timeout(Duration::from_secs(2))
                .cluster_status()
                .await;
            seen.push((id, status.map(|s| (s.role, s.leader, s.term))));
        }
        let leader = seen.iter().find_map(|(id, s)| match s {
            Ok((role, _, _)) if role == "leader" => Some(*id),
            _ => None,
        });
        if let Some(l) = leader {
            if seen
                .iter()
                .all(|(_, s)| matches!(s, Ok((_, named, _)) if *named == Some(l)))
            {
                return Ok(l);
            }
        }
        if Instant::now() > deadline {
            anyhow::bail!("nodes {ids:?} agree on no leader after {ELECTION:?}: {seen:?}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Creates a session for `user` through `client`, retrying while an election settles;
/// returns its token.
async fn write(client: &sessync_client::Client, user: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + WRITE;
    loop {
        match client.create_session(&login(user)).await {
            Ok(created) => return Ok(created.token),
            Err(e) if e.is_unavailable() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(anyhow::anyhow!("write for {user}: {e}")),
        }
    }
}

/// Whether node `id`'s replica holds the session of `token` (a local read).
async fn holds(cluster: &TestCluster, id: u64, token: &str) -> anyhow::Result<bool> {
    let v = cluster
        .app_client_for(id)
        .validate(&ValidateRequest {
            token: token.to_owned(),
            touch: false,
            consistency: Consistency::Local,
        })
        .await?;
    Ok(v.valid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_both_ways_is_replaced_and_then_follows() -> anyhow::Result<()> {
    let cluster = proxied_cluster().await?;
    let old = cluster.leader().await?;
    let others: Vec<u64> = cluster
        .node_ids()
        .into_iter()
        .filter(|&n| n != old)
        .collect();
    let faults = cluster.faults();

    faults.isolate(old, &cluster.node_ids());
    println!("isolated node {old}: {}", faults.describe());
    let new = leader_among(&cluster, &others).await?;
    assert_ne!(new, old, "the isolated leader cannot lead the others");
    let on_others = cluster
        .client_with(
            others.iter().map(|&id| cluster.url(id)).collect(),
            cluster.app_key(),
        )
        .with_timeout(Duration::from_secs(10));
    let during = write(&on_others, "during-partition").await?;

    // Alone, the old leader commits nothing: its answer is a refusal, within the deadline.
    let alone = cluster
        .app_client_for(old)
        .with_timeout(Duration::from_secs(10))
        .create_session(&login("alone"))
        .await;
    assert!(
        matches!(&alone, Err(e) if e.is_unavailable()),
        "a write on the cut-off leader: {alone:?}"
    );
    assert!(
        !holds(&cluster, old, &during).await?,
        "the cut-off node cannot have the new leader's write"
    );

    faults.heal_all();
    let leader = cluster.leader().await?;
    assert_ne!(leader, old, "the old leader's log is behind: it follows");
    cluster.wait_converged(Duration::from_secs(20)).await?;
    cluster.assert_identical_state().await?;
    assert!(holds(&cluster, old, &during).await?);
    cluster.check_no_crashes()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_way_cut_makes_a_follower_campaign_and_writes_still_commit() -> anyhow::Result<()> {
    let cluster = proxied_cluster().await?;
    let leader = cluster.leader().await?;
    let followers: Vec<u64> = cluster
        .node_ids()
        .into_iter()
        .filter(|&n| n != leader)
        .collect();
    let (x, y) = (followers[0], followers[1]);
    let faults = cluster.faults();
    let before = term(&cluster, x).await?;

    // The leader's appends no longer reach x; x's own requests to the leader still do.
    faults.cut(leader, x);
    println!("{}", faults.describe());
    let through_y = cluster
        .client_with(vec![cluster.url(leader), cluster.url(y)], cluster.app_key())
        .with_timeout(Duration::from_secs(10));
    let mut tokens = Vec::new();
    for i in 0..5 {
        tokens.push(write(&through_y, &format!("one-way-{i}")).await?);
    }
    // Hearing no leader, x stands for election: its term rises.
    let deadline = Instant::now() + ELECTION;
    let mut after = term(&cluster, x).await?;
    while after <= before && Instant::now() < deadline {
        tokio::time::sleep(POLL_INTERVAL).await;
        after = term(&cluster, x).await?;
    }
    println!("node {x}'s term: {before} before the cut, {after} after");
    assert!(after > before, "node {x} never campaigned (term {after})");

    faults.heal_all();
    cluster.leader().await?;
    cluster.wait_converged(Duration::from_secs(20)).await?;
    cluster.assert_identical_state().await?;
    for t in &tokens {
        assert!(holds(&cluster, x, t).await?, "node {x} caught up");
    }
    cluster.check_no_crashes()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_added_to_a_proxied_cluster_is_reached_through_its_proxy() -> anyhow::Result<()> {
    let mut cluster = proxied_cluster().await?;
    let new = cluster.add_node().await?;
    let admin = cluster.admin_client().with_timeout(Duration::from_secs(15));
    admin.add_learner(new, cluster.raft_url(new)).await?;
    admin.change_membership(cluster.node_ids(), false).await?;
    cluster.wait_converged(Duration::from_secs(20)).await?;
    let status = cluster.admin_client().cluster_status().await?;
    let member = status.members.iter().find(|m| m.node_id == new);
    assert_eq!(member.map(|m| m.url.clone()), Some(cluster.raft_url(new)));

    // Cut off, the new node misses a write the other three commit; healed, it catches up.
    let faults = cluster.faults();
    faults.isolate(new, &cluster.node_ids());
    let token = write(&cluster.app_client(), "while-cut-off").await?;
    assert!(!holds(&cluster, new, &token).await?);
    faults.heal_all();
    cluster.wait_converged(Duration::from_secs(20)).await?;
    cluster.assert_identical_state().await?;
    assert!(holds(&cluster, new, &token).await?);
    cluster.check_no_crashes()?;
    Ok(())
}

/// The touch endpoint answered from the node's own replica: a leader cut off from the others
/// still believes it leads, and when the touch needs no replication (a recent one stands) it
/// answered 200 for a session the new leader had ended. It reads linearizably first, like
/// validate, and refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_touch_on_a_leader_cut_off_is_not_answered_from_its_stale_replica() -> anyhow::Result<()>
{
    let cluster = TestCluster::start(ClusterOptions {
        proxied: true,
        // A touch then needs no replication for a minute.
        policy_toml: "touch_interval = \"1m\"".to_owned(),
        extra_toml: "[limits]\nrequest_timeout = \"2s\"".to_owned(),
        ..ClusterOptions::default()
    })
    .await?;
    let old = cluster.leader().await?;
    let created = cluster
        .app_client_for(old)
        .create_session(&login("touched"))
        .await?;
    let id = created.session.session_id.clone();
    let others: Vec<u64> = cluster
        .node_ids()
        .into_iter()
        .filter(|&n| n != old)
        .collect();
    cluster.faults().isolate(old, &cluster.node_ids());
    let new = leader_among(&cluster, &others).await?;
    let ended = cluster
        .app_client_for(new)
        .with_timeout(Duration::from_secs(10))
        .end_session(&id)
        .await?;
    assert!(ended.ended_at.is_some());

    let (status, answer) = cluster
        .app_client_for(old)
        .with_timeout(Duration::from_secs(10))
        .request_raw(
            "POST".parse()?,
            &format!("/v1/sessions/{id}/touch"),
            None,
            &[],
        )
        .await?;
    cluster.faults().heal_all();
    assert_ne!(
        status,
        200,
        "the cut-off leader touched a session the new leader ended: {}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&answer));
    Ok(())
}

/// A link slower than the skew bound gave clock samples off by up to half its round trip:
/// the answering node stamped its clock after its handler ran, the caller took the midpoint,
/// and round trips up to 2 s counted, so a slow link or a slow handler could mark a healthy
/// node `clock_skew`. With NTP's four timestamps and samples discarded past the bound, a link
/// delayed 700 ms each way (500 ms bound), under traffic, makes no node report skew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_link_does_not_mark_a_healthy_node_skewed() -> anyhow::Result<()> {
    let cluster = TestCluster::start(ClusterOptions {
        proxied: true,
        policy_toml: "max_clock_skew = \"500ms\"".to_owned(),
        // Heartbeats over the slow link come every 1.4 s: no election over that.
        raft_toml: "election_timeout_min = \"4s\"\nelection_timeout_max = \"5s\"".to_owned(),
        ..ClusterOptions::default()
    })
    .await?;
    let leader = cluster.leader().await?;
    let slow = cluster
        .node_ids()
        .into_iter()
        .find(|&n| n != leader)
        .expect("three nodes");
    let faults = cluster.faults();
    let delay = LinkFault::Delay(Duration::from_millis(700));
    faults.set(leader, slow, delay);
    faults.set(slow, leader, delay);
    println!("{}", faults.describe());

    // 20 s of writes through the leader and linearizable reads through the slow node (its
    // read index crosses the slow link), checking every node's clock verdict as it goes.
    let through_slow = cluster
        .app_client_for(slow)
        .with_timeout(Duration::from_secs(10));
    let started = Instant::now();
    let mut i = 0;
    while started.elapsed() < Duration::from_secs(20) {
        let token = write(&cluster.app_client(), &format!("slow-link-{i}")).await?;
        let _ = through_slow
            .validate(&ValidateRequest {
                token,
                touch: true,
                consistency: Consistency::Linearizable,
            })
            .await;
        i += 1;
        for id in cluster.node_ids() {
            let status = cluster
                .admin_client_for(id)
                .with_timeout(Duration::from_secs(5))
                .cluster_status()
                .await?;
            assert!(
                !status.clock_skewed && !status.not_ready.iter().any(|r| r == "clock_skew"),
                "node {id} reports clock skew over a slow link ({}): {status:?}",
                faults.describe()
            );
        }
    }
    println!("{i} writes and reads over the slow link");
    faults.heal_all();
    cluster.wait_converged(Duration::from_secs(20)).await?;
    cluster.check_no_crashes()?;
    Ok(())
}

//! A cluster that forms itself (`[bootstrap] expect = 3` with the member list), on real
//! processes: started in a random order with random pauses, or two at the same moment, the
//! three nodes form one cluster with nobody calling init; restarts (one by one and all at once)
//! never initialise again; a fourth node with the same file never initialises and joins when
//! it is added.
//!
//! "One cluster" is checked by what the nodes show: exactly one `initialised the cluster` line
//! in all logs together, every node initialised with the same voters, the same membership log
//! index and the same leader, identical state, and a session written on one node valid on all.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sessync_chaos_tests::{login, ClusterOptions, TestCluster};
use sessync_proto::api::ClusterStatus;

/// The line a node logs when it initialised the cluster.
const INITIALISED: &str = "bootstrap: initialised the cluster";

fn options() -> ClusterOptions {
    ClusterOptions {
        bootstrap: true,
        spawn: false,
        ..Default::default()
    }
}

fn rng() -> rand::rngs::StdRng {
    let seed: u64 = rand::random();
    println!("seed {seed}");
    rand::rngs::StdRng::seed_from_u64(seed)
}

async fn status(cluster: &TestCluster, id: u64) -> anyhow::Result<ClusterStatus> {
    Ok(cluster.admin_client_for(id).cluster_status().await?)
}

/// How many times the nodes' logs (every start) say a cluster was initialised.
fn initialisations(cluster: &TestCluster) -> usize {
    cluster
        .node_ids()
        .iter()
        .map(|&id| cluster.log_count(id, INITIALISED))
        .sum()
}

/// One cluster of `voters`: it formed (an agreed leader), was initialised once, and every live
/// node shows the same voters and membership index and holds the same state. Returns the
/// membership index.
async fn assert_one_cluster(cluster: &TestCluster, voters: &[u64]) -> anyhow::Result<u64> {
    let leader = cluster.wait_formed().await?;
    assert_eq!(
        initialisations(cluster),
        1,
        "the cluster was initialised once"
    );
    let mut index = None;
    for id in cluster.live_node_ids() {
        let s = status(cluster, id).await?;
        assert!(s.initialized, "node {id}: {s:?}");
        assert_eq!(s.leader, Some(leader), "node {id}: {s:?}");
        assert_eq!(s.bootstrap, None, "node {id}: {s:?}");
        let seen: BTreeSet<u64> = s
            .members
            .iter()
            .filter(|m| m.voter)
            .map(|m| m.node_id)
            .collect();
        assert_eq!(seen, voters.iter().copied().collect(), "node {id}: {s:?}");
        let i = s
            .membership_index
            .expect("an initialised node has a membership");
        assert_eq!(*index.get_or_insert(i), i, "node {id}'s membership index");
    }
    cluster.assert_identical_state().await?;
    Ok(index.expect("a live node"))
}

/// A session created on `on` validates (linearizably) on every live node; its token.
async fn session_seen_everywhere(cluster: &TestCluster, on: u64) -> anyhow::Result<String> {
    let created = cluster
        .app_client_for(on)
        .create_session(&login(&format!("user-on-{on}")))
        .await?;
    assert_valid_everywhere(cluster, &created.token).await?;
    Ok(created.token)
}

async fn assert_valid_everywhere(cluster: &TestCluster, token: &str) -> anyhow::Result<()> {
    for (id, v) in cluster.validate_everywhere(token).await? {
        assert!(v.valid, "node {id}: {v:?}");
    }
    Ok(())
}

/// Waits (at most 10 s) until node `id` shows `state` for its bootstrap; its status then.
async fn wait_bootstrap_state(
    cluster: &TestCluster,
    id: u64,
    state: &str,
) -> anyhow::Result<ClusterStatus> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let s = status(cluster, id).await?;
        if s.bootstrap.as_ref().is_some_and(|b| b.state == state) || Instant::now() > until {
            return Ok(s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_started_in_random_order_form_one_cluster() -> anyhow::Result<()> {
    let mut rng = rng();
    let mut cluster = TestCluster::start(options()).await?;
    let mut order = cluster.node_ids();
    order.shuffle(&mut rng);
    println!("start order {order:?}");
    for (i, &id) in order.iter().enumerate() {
        cluster.start_nodes(&[id]).await?;
        if i == 0 {
            // Alone, it waits and says so.
            let s = wait_bootstrap_state(&cluster, id, "waiting").await?;
            assert!(!s.initialized, "{s:?}");
            let b = s
                .bootstrap
                .expect("a bootstrapping node shows its bootstrap");
            assert_eq!((b.expected, b.answered), (3, 1), "{b:?}");
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..1500))).await;
    }
    assert_one_cluster(&cluster, &[1, 2, 3]).await?;
    let on = *order.last().expect("three nodes");
    session_seen_everywhere(&cluster, on).await?;
    cluster.check_no_crashes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_never_initialise_again() -> anyhow::Result<()> {
    let mut rng = rng();
    let mut cluster = TestCluster::start(ClusterOptions {
        spawn: true,
        ..options()
    })
    .await?;
    let index = assert_one_cluster(&cluster, &[1, 2, 3]).await?;
    let token = session_seen_everywhere(&cluster, 1).await?;

    // One by one, in a random order.
    let mut order = cluster.node_ids();
    order.shuffle(&mut rng);
    for &id in &order {
        cluster.restart(id).await?;
        cluster.wait_formed().await?;
    }
    assert_eq!(assert_one_cluster(&cluster, &[1, 2, 3]).await?, index);
    assert_valid_everywhere(&cluster, &token).await?;

    // All at once.
    for id in cluster.node_ids() {
        cluster.kill(id);
    }
    let ids = cluster.node_ids();
    cluster.start_nodes(&ids).await?;
    assert_eq!(assert_one_cluster(&cluster, &[1, 2, 3]).await?, index);
    assert_valid_everywhere(&cluster, &token).await?;
    session_seen_everywhere(&cluster, 2).await?;
    cluster.check_no_crashes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_started_at_once_and_a_late_third_form_one_cluster() -> anyhow::Result<()> {
    let mut rng = rng();
    let mut cluster = TestCluster::start(options()).await?;
    let mut order = cluster.node_ids();
    order.shuffle(&mut rng);
    let (pair, late) = (&order[..2], order[2]);
    println!("started together {pair:?}, later {late}");
    cluster.start_nodes(pair).await?;
    for &id in pair {
        let s = wait_bootstrap_state(&cluster, id, "waiting").await?;
        assert!(!s.initialized, "node {id}: {s:?}");
    }
    // They keep waiting for the third.
    tokio::time::sleep(Duration::from_millis(rng.gen_range(1000..3000))).await;
    for &id in pair {
        let s = status(&cluster, id).await?;
        assert!(!s.initialized, "node {id} without the third: {s:?}");
        let b = s.bootstrap.expect("still bootstrapping");
        assert_eq!((b.answered, b.state.as_str()), (2, "waiting"), "node {id}");
    }
    assert_eq!(initialisations(&cluster), 0);
    cluster.start_nodes(&[late]).await?;
    assert_one_cluster(&cluster, &[1, 2, 3]).await?;
    session_seen_everywhere(&cluster, late).await?;
    cluster.check_no_crashes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_node_with_the_same_file_joins_only_when_added() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(ClusterOptions {
        spawn: true,
        ..options()
    })
    .await?;
    let leader = cluster.wait_formed().await?;
    let token = session_seen_everywhere(&cluster, leader).await?;

    let fourth = cluster.add_node().await?;
    assert_eq!(fourth, 4);
    let s = wait_bootstrap_state(&cluster, fourth, "joining").await?;
    let b = s
        .bootstrap
        .clone()
        .expect("a node outside the members shows it");
    assert_eq!(b.state, "joining", "{s:?}");
    // Rounds later, still on its own.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s = status(&cluster, fourth).await?;
    assert!(!s.initialized, "{s:?}");
    assert!(s.members.is_empty(), "{s:?}");
    assert_eq!(cluster.log_count(fourth, INITIALISED), 0);
    assert_eq!(initialisations(&cluster), 1);

    let admin = cluster.admin_client_for(leader);
    admin.add_learner(fourth, cluster.url(fourth)).await?;
    admin.change_membership(vec![1, 2, 3, 4], false).await?;
    cluster.wait_converged(Duration::from_secs(20)).await?;
    assert_one_cluster(&cluster, &[1, 2, 3, 4]).await?;
    assert_valid_everywhere(&cluster, &token).await?;
    session_seen_everywhere(&cluster, fourth).await?;
    cluster.check_no_crashes()
}

/// With `dns`, the node resolves the name and asks each address through a client that
/// connects there but checks the certificate against the name (here `localhost`, which the
/// harness's certificates are valid for): one member, over TLS, forms its cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_found_by_dns_over_tls_forms_the_cluster() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(ClusterOptions {
        nodes: 1,
        init: false,
        spawn: false,
        tls: Some(sessync_chaos_tests::TestCa::new("bootstrap test CA")?),
        ..Default::default()
    })
    .await?;
    let url = cluster.url(1);
    let port = url.rsplit(':').next().expect("a port");
    cluster.set_node_toml(
        1,
        &format!("[bootstrap]\nexpect = 1\ndns = \"localhost:{port}\""),
    )?;
    cluster.start_nodes(&[1]).await?;
    assert_one_cluster(&cluster, &[1]).await?;
    let s = status(&cluster, 1).await?;
    assert_eq!(s.members[0].url, url, "the member's advertise_url: {s:?}");
    session_seen_everywhere(&cluster, 1).await?;
    cluster.check_no_crashes()
}

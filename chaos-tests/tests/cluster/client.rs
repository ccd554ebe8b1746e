//! The client library against a real 3-node cluster: failover when the node it was using
//! dies (a follower, or the leader, which costs an election), and a create with an idempotency key that makes one session however often (and
//! through however many nodes) it is sent.

use anyhow::Context;
use sessync_chaos_tests::{ClusterOptions, TestCluster};
use sessync_client::Client;
use sessync_proto::api::{Consistency, CreateSessionRequest, ValidateRequest};
use sessync_proto::{Device, UserId};

fn create(user: &str, key: Option<&str>) -> CreateSessionRequest {
    CreateSessionRequest {
        user_id: UserId::parse_field(user, "user_id").unwrap(),
        device: Device::default(),
        origin: None,
        idempotency_key: key.map(str::to_owned),
    }
}

/// Makes a session through `client`, kills the node it used, and checks that the next calls
/// (create, list, validate, get) succeed through another node.
async fn kill_current_and_carry_on(
    cluster: &mut TestCluster,
    client: &Client,
) -> anyhow::Result<()> {
    let user = format!("fo-{}", client.endpoints().len());
    let first = client.create_session(&create(&user, None)).await?;
    let used = client.current_endpoint().to_owned();
    let victim = cluster
        .node_ids()
        .into_iter()
        .find(|id| cluster.url(*id) == used)
        .with_context(|| format!("no node at {used}"))?;
    cluster.kill(victim);

    let second = client.create_session(&create(&user, None)).await?;
    assert_ne!(client.current_endpoint(), used, "the client moved on");
    assert_ne!(first.session.session_id, second.session.session_id);
    let listed = client
        .list_sessions(&UserId::parse_field(&user, "user_id").unwrap(), false)
        .await?;
    let listed: Vec<_> = listed.iter().map(|s| &s.session_id).collect();
    assert!(listed.contains(&&first.session.session_id), "{listed:?}");
    assert!(listed.contains(&&second.session.session_id), "{listed:?}");
    for token in [first.token, second.token] {
        let v = client
            .validate(&ValidateRequest {
                token,
                touch: true,
                consistency: Consistency::Linearizable,
            })
            .await?;
        assert!(v.valid, "{v:?}");
    }
    let got = client.get_session(&first.session.session_id).await?;
    assert_eq!(got.session_id, first.session.session_id);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn fails_over_when_its_follower_dies() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(ClusterOptions::default()).await?;
    // A follower first in the list, so it is the node the client uses; default settings.
    let leader = cluster.leader().await?;
    let mut ids = cluster.node_ids();
    ids.sort_by_key(|id| *id == leader);
    let urls = ids.iter().map(|id| cluster.url(*id)).collect();
    let client = Client::new(urls, cluster.app_key())?;
    kill_current_and_carry_on(&mut cluster, &client).await
}

#[tokio::test(flavor = "multi_thread")]
async fn fails_over_when_its_leader_dies() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(ClusterOptions::default()).await?;
    // The leader first in the list. The survivors answer 503 until they elect a new leader;
    // the client's default retry budget and deadline outlast an election.
    let leader = cluster.leader().await?;
    let mut ids = cluster.node_ids();
    ids.sort_by_key(|id| *id != leader);
    let urls = ids.iter().map(|id| cluster.url(*id)).collect();
    let client = Client::new(urls, cluster.app_key())?;
    kill_current_and_carry_on(&mut cluster, &client).await
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_key_makes_one_session() -> anyhow::Result<()> {
    let cluster = TestCluster::start(ClusterOptions::default()).await?;
    let req = create("idem-bob", Some("login-7f3a"));

    // Twice through the failover client, then once through each node directly.
    let client = cluster.app_client();
    let a = client.create_session(&req).await?;
    let b = client.create_session(&req).await?;
    assert_eq!(a.session.session_id, b.session.session_id);
    // A replay hands out a fresh token; every token given keeps working.
    assert_ne!(a.token, b.token);
    let mut last = b.token;
    for id in cluster.node_ids() {
        let c = cluster.app_client_for(id).create_session(&req).await?;
        assert_eq!(c.session.session_id, a.session.session_id, "via node {id}");
        assert_ne!(c.token, last, "via node {id}");
        last = c.token;
    }
    let valid = |token: String| {
        let client = client.clone();
        async move {
            let req = ValidateRequest {
                token,
                touch: false,
                consistency: Consistency::Linearizable,
            };
            anyhow::Ok(client.validate(&req).await?.valid)
        }
    };
    assert!(valid(last).await?, "the token handed out last works");
    assert!(valid(a.token).await?, "and so does the first");

    let user = UserId::parse_field("idem-bob", "user_id").unwrap();
    let active = client.list_sessions(&user, false).await?;
    assert_eq!(active.len(), 1, "{active:?}");
    assert_eq!(active[0].session_id, a.session.session_id);
    let all = client.list_sessions(&user, true).await?;
    assert_eq!(all.len(), 1, "{all:?}");

    // Another key is another session.
    let other = client
        .create_session(&create("idem-bob", Some("login-9c1d")))
        .await?;
    assert_ne!(other.session.session_id, a.session.session_id);
    assert_eq!(client.list_sessions(&user, false).await?.len(), 2);
    Ok(())
}

//! The client's event stream against a real 3-node cluster: when the node it follows dies, it
//! reconnects to another with the id of its last event and gets what changed meanwhile, once.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use sessync_chaos_tests::{login, ClusterOptions, TestCluster};
use sessync_client::events::{Events, StreamEvent};
use sessync_proto::{SessionId, SessionState};

/// The next event, which must be a session's, within 30 s: its id and state.
async fn next_session(events: &mut Events) -> anyhow::Result<(SessionId, SessionState)> {
    match tokio::time::timeout(Duration::from_secs(30), events.next()).await {
        Ok(Some(Ok(StreamEvent::Session { event, .. }))) => {
            Ok((event.session.session_id.clone(), event.session.state))
        }
        other => Err(anyhow::anyhow!("expected a session event, got {other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_survives_the_death_of_its_node() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader().await?;
    let follower = *cluster
        .node_ids()
        .iter()
        .find(|&&n| n != leader)
        .context("a follower")?;
    // The stream starts on the follower; the others are its fallbacks.
    let mut urls = vec![cluster.url(follower)];
    urls.extend(
        cluster
            .node_ids()
            .into_iter()
            .filter(|&n| n != follower)
            .map(|n| cluster.url(n)),
    );
    let follow = cluster.client_with(urls, cluster.app_key());
    let writer = cluster.app_client();
    let mut events = follow.events(None, None).await?;

    let first = writer.create_session(&login("eve")).await?;
    let (id, state) = next_session(&mut events).await?;
    assert_eq!(
        (id, state),
        (first.session.session_id.clone(), SessionState::Active)
    );

    // The followed node dies; meanwhile eve's session ends and frank logs in.
    cluster.kill(follower);
    writer.end_session(&first.session.session_id).await?;
    let second = writer.create_session(&login("frank")).await?;

    let mut seen: BTreeMap<SessionId, Vec<SessionState>> = BTreeMap::new();
    while !seen.contains_key(&second.session.session_id)
        || !seen
            .get(&first.session.session_id)
            .is_some_and(|s| s.contains(&SessionState::Ended))
    {
        let (id, state) = next_session(&mut events).await?;
        seen.entry(id).or_default().push(state);
        assert!(seen.values().map(Vec::len).sum::<usize>() <= 4, "{seen:?}");
    }
    assert_eq!(
        seen[&first.session.session_id],
        vec![SessionState::Ended],
        "eve's login is not sent again, her logout once"
    );
    assert_eq!(seen[&second.session.session_id], vec![SessionState::Active]);
    assert!(events.last_event_id().is_some());
    Ok(())
}

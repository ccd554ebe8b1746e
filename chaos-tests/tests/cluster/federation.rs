//! Two real sites (3 nodes and 1 node): verify and invalidate with `targets` reach the peer;
//! a peer that is down gets what was queued for it once it is back, applied once, even after
//! the origin's leader was killed while the entries were queued.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::fed::{audit, live, login, poll, sessions, site, user};
use sessync_chaos_tests::{ClusterOptions, Sites, SitesOptions};
use sessync_proto::api::{FanoutStatus, InvalidateRequest, VerifyRequest};
use sessync_proto::EndReason;

fn two_sites(extra_toml: &str) -> SitesOptions {
    SitesOptions {
        a: ClusterOptions {
            nodes: 3,
            extra_toml: extra_toml.into(),
            ..Default::default()
        },
        b: ClusterOptions {
            nodes: 1,
            extra_toml: extra_toml.into(),
            ..Default::default()
        },
        slow_link: None,
        proxy_both_ways: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidate_and_verify_reach_the_peer_site() -> anyhow::Result<()> {
    let sites = Sites::start(two_sites("")).await?;
    let (a, b) = (sites.a.app_client(), sites.b.app_client());
    login(&a, "alice").await?;
    login(&b, "alice").await?;
    login(&b, "alice").await?;

    // Log out everywhere: A and B; an unconfigured site is reported, not sent to.
    let r = a
        .invalidate(
            &user("alice"),
            &InvalidateRequest {
                session_id: None,
                targets: vec![site("site-b"), site("site-x")],
            },
        )
        .await?;
    assert_eq!(r.ended, 1);
    assert_eq!(r.fanout[&site("site-x")], FanoutStatus::UnknownSite);
    assert_ne!(r.fanout[&site("site-b")], FanoutStatus::UnknownSite);
    poll(
        "alice's sessions at B to end",
        Duration::from_secs(20),
        || async { Ok((live(&b, "alice").await? == 0).then_some(())) },
    )
    .await?;
    for s in sessions(&b, "alice").await? {
        assert_eq!(s.end_reason, Some(EndReason::Invalidated));
    }

    // Verify at A: the chosen session stays, every other one ends, at A and at B.
    let keep = login(&a, "alice").await?.session.session_id;
    login(&a, "alice").await?;
    login(&b, "alice").await?;
    let v = a
        .verify(
            &user("alice"),
            &VerifyRequest {
                session_id: Some(keep.clone()),
                targets: vec![site("site-b")],
            },
        )
        .await?;
    assert_eq!((v.verified.clone(), v.ended), (keep, 1));
    poll(
        "alice's session at B to be superseded",
        Duration::from_secs(20),
        || async { Ok((live(&b, "alice").await? == 0).then_some(())) },
    )
    .await?;
    let superseded = sessions(&b, "alice")
        .await?
        .iter()
        .filter(|s| s.end_reason == Some(EndReason::Superseded))
        .count();
    assert_eq!(superseded, 1);
    assert_eq!(live(&a, "alice").await?, 1);

    // The trail at both ends, the status and the metrics.
    let admin_a = sites.a.admin_client();
    let admin_b = sites.b.admin_client();
    poll(
        "both deliveries in A's audit",
        Duration::from_secs(20),
        || async { Ok((audit(&admin_a, "fanout_delivered").await?.len() == 2).then_some(())) },
    )
    .await?;
    assert_eq!(audit(&admin_a, "fanout_queued").await?.len(), 2);
    let received = audit(&admin_b, "fanout_received").await?;
    assert_eq!(received.len(), 2, "{received:?}");
    let status = admin_a.federation_status().await?;
    let peer = &status.peers[0];
    assert_eq!((peer.site.as_str(), peer.queued), ("site-b", 0));
    assert_eq!(peer.reachable, Some(true));
    let metrics = admin_a.metrics().await?;
    assert!(metrics.contains("sessync_federation_outbox_depth{peer=\"site-b\"} 0"));
    assert!(metrics.contains("sessync_federation_delivery_seconds"));
    sites.a.check_no_crashes()?;
    sites.b.check_no_crashes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_was_down_gets_every_queued_operation_once() -> anyhow::Result<()> {
    let fast_retry = "[federation]\nretry_initial = \"100ms\"\nretry_max = \"1s\"\n";
    let mut sites = Sites::start(two_sites(fast_retry)).await?;
    let b = sites.b.app_client();
    login(&b, "alice").await?;
    login(&b, "alice").await?;
    login(&b, "bob").await?;
    sites.b.kill(1);

    let a = sites.a.app_client();
    let to_b = |u: &str| {
        let (a, u) = (a.clone(), user(u));
        async move {
            let req = InvalidateRequest {
                session_id: None,
                targets: vec![site("site-b")],
            };
            anyhow::Ok(a.invalidate(&u, &req).await?.fanout[&site("site-b")])
        }
    };
    assert_eq!(to_b("alice").await?, FanoutStatus::Queued);
    let admin_a = sites.a.admin_client();
    poll(
        "A to see B unreachable",
        Duration::from_secs(10),
        || async {
            let s = admin_a.federation_status().await?;
            let p = &s.peers[0];
            Ok((p.queued == 1 && p.reachable == Some(false)).then_some(()))
        },
    )
    .await?;

    // A's leader dies with the entry queued; the new leader takes over the delivery.
    let old_leader = sites.a.leader().await?;
    sites.a.kill(old_leader);
    let new_leader = sites.a.leader().await?;
    assert_ne!(new_leader, old_leader);
    assert_eq!(to_b("bob").await?, FanoutStatus::Queued);
    let queued = admin_a.federation_status().await?.peers[0].queued;
    assert_eq!(queued, 2);

    // B comes back: both operations arrive.
    sites.b.restart(1).await?;
    let back = Instant::now();
    poll(
        "the queued operations to reach B",
        Duration::from_secs(60),
        || async {
            Ok((live(&b, "alice").await? == 0 && live(&b, "bob").await? == 0).then_some(()))
        },
    )
    .await?;
    let applied_after = back.elapsed();
    poll("A's outbox to drain", Duration::from_secs(30), || async {
        Ok((admin_a.federation_status().await?.peers[0].queued == 0).then_some(()))
    })
    .await?;
    let delivered = audit(&admin_a, "fanout_delivered").await?;
    let commit_to_ack: Vec<u64> = delivered
        .iter()
        .filter_map(|e| e.detail["delay_ms"].as_u64())
        .collect();
    println!(
        "B back (healthy) -> both operations applied at B: {} ms; commit -> ack at A: {commit_to_ack:?} ms",
        applied_after.as_millis()
    );

    // Applied once each: one first application per operation at B, whatever the repeats.
    let mut firsts: BTreeMap<String, usize> = BTreeMap::new();
    for e in audit(&sites.b.admin_client(), "fanout_received").await? {
        if e.detail["duplicate"] == serde_json::json!(false) {
            *firsts.entry(e.detail["op_id"].to_string()).or_default() += 1;
        }
    }
    assert_eq!(firsts.len(), 2, "{firsts:?}");
    assert!(firsts.values().all(|n| *n == 1), "{firsts:?}");
    assert!(!audit(&admin_a, "fanout_retry").await?.is_empty());

    sites.a.restart(old_leader).await?;
    sites.a.wait_converged(Duration::from_secs(20)).await?;
    sites.a.assert_identical_state().await
}

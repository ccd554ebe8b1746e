//! Sites agree under delay: a fan-out acts as of its origin time, however late it arrives
//! (v1.2, docs/federation.md "Ordering"). On two real sites whose link the test cuts (proxies
//! in front of each site's nodes):
//! - a "log out everywhere" delivered late ends the sessions the peer had before it, never a
//!   login the user made there after it;
//! - two verifies of one user made at the two sites while they were cut off leave exactly one
//!   chosen session active, the one of the later verify, at both sites.

use std::time::Duration;

use crate::fed::{login, poll, site, user};
use sessync_chaos_tests::{ClusterOptions, SiteMode, Sites, SitesOptions};
use sessync_client::Client;
use sessync_proto::api::{FanoutStatus, InvalidateRequest, VerifyRequest};
use sessync_proto::{EndReason, SessionId, SessionState, SessionView};

/// Two one-node sites that retry fast, with proxies on the link (both ways if `both`).
fn cut_able(both: bool) -> SitesOptions {
    let fast_retry = "[federation]\nretry_initial = \"100ms\"\nretry_max = \"500ms\"\n";
    let one = || ClusterOptions {
        nodes: 1,
        extra_toml: fast_retry.into(),
        ..Default::default()
    };
    SitesOptions {
        a: one(),
        b: one(),
        slow_link: Some(Duration::ZERO),
        proxy_both_ways: both,
    }
}

async fn session(client: &Client, id: &SessionId) -> anyhow::Result<SessionView> {
    Ok(client.get_session(id).await?)
}

/// Waits until neither site has anything queued for the other.
async fn delivered(sites: &Sites) -> anyhow::Result<()> {
    let (a, b) = (sites.a.admin_client(), sites.b.admin_client());
    poll(
        "both outboxes to drain",
        Duration::from_secs(30),
        || async {
            let qa = a.federation_status().await?.peers[0].queued;
            let qb = b.federation_status().await?.peers[0].queued;
            Ok((qa == 0 && qb == 0).then_some(()))
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_logout_everywhere_spares_a_login_made_after_it() -> anyhow::Result<()> {
    let sites = Sites::start(cut_able(false)).await?;
    let (a, b) = (sites.a.app_client(), sites.b.app_client());
    let before = login(&b, "alice").await?.session.session_id;
    sites.set_link(SiteMode::Down);
    let r = a
        .invalidate(
            &user("alice"),
            &InvalidateRequest {
                session_id: None,
                targets: vec![site("site-b")],
            },
        )
        .await?;
    assert_eq!(r.fanout[&site("site-b")], FanoutStatus::Queued);
    // Well past max_clock_skew (500 ms) later, the user logs in again at B.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = login(&b, "alice").await?.session.session_id;
    sites.set_link(SiteMode::Pass);
    delivered(&sites).await?;
    let old = session(&b, &before).await?;
    assert_eq!(
        (old.state, old.end_reason),
        (SessionState::Ended, Some(EndReason::Invalidated)),
        "the login made before the logout ends"
    );
    let new = session(&b, &after).await?;
    assert_eq!(
        (new.state, new.end_reason),
        (SessionState::Active, None),
        "the login made after the logout must survive its late delivery"
    );
    sites.a.check_no_crashes()?;
    sites.b.check_no_crashes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_verifies_made_while_the_sites_were_cut_off_leave_exactly_one_session(
) -> anyhow::Result<()> {
    let sites = Sites::start(cut_able(true)).await?;
    let (a, b) = (sites.a.app_client(), sites.b.app_client());
    let at_a = login(&a, "alice").await?.session.session_id;
    let at_b = login(&b, "alice").await?.session.session_id;
    sites.set_link(SiteMode::Down);
    let verify = |client: &Client, id: &SessionId, to: &str| {
        let (client, id, to) = (client.clone(), id.clone(), site(to));
        async move {
            let req = VerifyRequest {
                session_id: Some(id),
                targets: vec![to.clone()],
            };
            anyhow::Ok(client.verify(&user("alice"), &req).await?.fanout[&to])
        }
    };
    // "Continue here" on two devices, at A first and at B a moment later.
    assert_eq!(verify(&a, &at_a, "site-b").await?, FanoutStatus::Queued);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(verify(&b, &at_b, "site-a").await?, FanoutStatus::Queued);
    sites.set_link(SiteMode::Pass);
    delivered(&sites).await?;
    let (sa, sb) = (session(&a, &at_a).await?, session(&b, &at_b).await?);
    assert_eq!(
        (sb.state, sb.end_reason),
        (SessionState::Active, None),
        "the later verify's session stays"
    );
    assert_eq!(
        (sa.state, sa.end_reason),
        (SessionState::Ended, Some(EndReason::Superseded)),
        "the earlier verify's session is superseded at its own site"
    );
    sites.a.check_no_crashes()?;
    sites.b.check_no_crashes()
}

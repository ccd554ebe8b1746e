//! Requests between sites that must change nothing: a forged signature, an altered body, the
//! wrong secret, a stale timestamp, an unknown site, and a replayed nonce (to the same node and
//! to the other nodes of the site). Each is answered 401 and shows in the site's audit log
//! (signature refusals in aggregate: one event per source and reason per interval).

use std::time::Duration;

use crate::fed::{audit, live, login, poll, PeerRequest};
use sessync_chaos_tests::{ClusterOptions, Sites, SitesOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_altered_stale_unknown_and_replayed_requests_change_nothing() -> anyhow::Result<()> {
    let sites = Sites::start(SitesOptions {
        a: ClusterOptions {
            nodes: 1,
            ..Default::default()
        },
        b: ClusterOptions {
            nodes: 3,
            extra_toml: "[limits]\nfailure_report_interval = \"1s\"".into(),
            ..Default::default()
        },
        slow_link: None,
        proxy_both_ways: false,
    })
    .await?;
    let b = sites.b.app_client();
    login(&b, "alice").await?;
    login(&b, "alice").await?;
    let secret = sites.a_to_b.clone();
    let urls = sites.b.urls();
    let good = || PeerRequest::invalidate(&secret, "op_forged_1", "alice");

    let forged = good().with_header("x-sessync-signature", &"0".repeat(64));
    let mut altered = good();
    altered.body = String::from_utf8(altered.body)?
        .replace("op_forged_1", "op_forged_2")
        .into_bytes();
    let wrong_secret = good().resign("not-the-secret-0123456789abcdef");
    let mut stale = good();
    stale.timestamp_ms -= 10 * 60 * 1000;
    let stale = stale.resign(&secret);
    let mut unknown = good();
    unknown.site = "site-x".into();
    let unknown = unknown.resign(&secret);
    let cases = [
        ("forged signature", forged, "bad_signature"),
        ("altered body", altered, "bad_content_hash"),
        ("wrong secret", wrong_secret, "bad_signature"),
        ("stale timestamp", stale, "stale_timestamp"),
        ("unknown site", unknown, "unknown_site"),
    ];
    for (i, (what, req, _)) in cases.iter().enumerate() {
        let url = &urls[i % urls.len()];
        let (status, body) = req.send(url).await?;
        assert_eq!(status, 401, "{what} to {url}: {body}");
        assert!(body.contains("unauthorized"), "{what}: {body}");
    }
    for id in sites.b.node_ids() {
        let n = live(&sites.b.app_client_for(id), "alice").await?;
        assert_eq!(n, 2, "node {id}: alice's sessions must be untouched");
    }

    // A genuine request is applied once; the same request again is a replay on every node.
    login(&b, "carol").await?;
    let genuine = PeerRequest::invalidate(&secret, "op_genuine_1", "carol");
    let (status, body) = genuine.send(&urls[0]).await?;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(
        (answer["applied"].as_bool(), answer["ended"].as_u64()),
        (Some(true), Some(1))
    );
    for url in &urls {
        let (status, body) = genuine.send(url).await?;
        assert_eq!(status, 401, "replay to {url}: {body}");
        assert!(body.contains("nonce"), "{body}");
    }
    // The same operation with a fresh nonce is a harmless repeat.
    let again = PeerRequest::invalidate(&secret, "op_genuine_1", "carol");
    let (status, body) = again.send(&urls[1]).await?;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"applied\":false"), "{body}");

    // Every refusal is in B's audit log with its reason; alice is untouched.
    let admin = sites.b.admin_client();
    let want = |reason: &str| {
        let n = cases.iter().filter(|c| c.2 == reason).count();
        if reason == "replayed_nonce" {
            urls.len()
        } else {
            n
        }
    };
    poll(
        "every refusal in B's audit",
        Duration::from_secs(20),
        || async {
            let events = audit(&admin, "fanout_rejected").await?;
            // Signature refusals are reported in aggregate (`count` per source and reason per
            // interval); a replayed nonce is one event per replay.
            let count = |r: &str| -> usize {
                events
                    .iter()
                    .filter(|e| e.detail["reason"] == r)
                    .map(|e| e.detail["count"].as_u64().unwrap_or(1) as usize)
                    .sum()
            };
            let ok = [
                "bad_signature",
                "bad_content_hash",
                "stale_timestamp",
                "unknown_site",
                "replayed_nonce",
            ]
            .iter()
            .all(|r| count(r) >= want(r));
            Ok(ok.then_some(()))
        },
    )
    .await?;
    assert_eq!(live(&b, "alice").await?, 2);
    assert_eq!(live(&b, "carol").await?, 0);
    // Each node counts what it refused: every reason is on some node.
    let mut metrics = String::new();
    for id in sites.b.node_ids() {
        metrics.push_str(&sites.b.admin_client_for(id).metrics().await?);
    }
    for reason in ["bad_signature", "bad_content_hash", "stale_timestamp"] {
        let series =
            format!("sessync_federation_rejections_total{{peer=\"site-a\",reason=\"{reason}\"}}");
        assert!(metrics.contains(&series), "no {series}");
    }
    sites.b.check_no_crashes()
}

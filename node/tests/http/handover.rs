//! HTTP tests of the hand-over endpoints on one node, and the version it reports: a transfer
//! names what is wrong with its target, a lone voter has nobody to hand over to, and a drained
//! node reports not ready (the multi-node hand-over is in chaos-tests' `upgrade`).

use crate::common::{assert_error, TestNode, ADMIN_KEY, APP_KEY};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_errors_drain_and_version() {
    let node = TestNode::start("").await;

    // The release and build, in the status and the metrics.
    let (s, st) = node
        .call(Method::GET, "/cluster/status", ADMIN_KEY, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(st["version"], env!("CARGO_PKG_VERSION"), "{st}");
    let build = st["build"].as_str().unwrap_or_default().to_owned();
    assert!(!build.is_empty(), "{st}");
    assert!(st.get("draining").is_none(), "{st}");
    let (_, m) = node.raw(Method::GET, "/metrics", ADMIN_KEY, None).await;
    let line = format!(
        "sessync_build_info{{version=\"{}\",build=\"{build}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(m.as_str().unwrap().contains(&line), "{m}");

    // An app key may not move leadership.
    let (s, b) = node
        .call(
            Method::POST,
            "/cluster/transfer-leader",
            APP_KEY,
            Some(json!({})),
        )
        .await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "forbidden", None);
    // A node that is not a member, and node 0, are named as the field's fault.
    for to in [7, 0] {
        let (s, b) = node
            .call(
                Method::POST,
                "/cluster/transfer-leader",
                ADMIN_KEY,
                Some(json!({ "to": to })),
            )
            .await;
        assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request", Some("to"));
    }
    // To itself: nothing to do.
    let (s, b) = node
        .call(
            Method::POST,
            "/cluster/transfer-leader",
            ADMIN_KEY,
            Some(json!({ "to": 1 })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["leader"], 1);
    // A lone voter has nobody to hand over to.
    let (s, b) = node
        .call(
            Method::POST,
            "/cluster/transfer-leader",
            ADMIN_KEY,
            Some(json!({})),
        )
        .await;
    assert_error(s, &b, StatusCode::SERVICE_UNAVAILABLE, "unavailable", None);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no other voter"),
        "{b}"
    );

    // Drained: not ready, and it says why; it still serves.
    let (s, _) = node.call(Method::GET, "/readyz", "", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = node
        .call(Method::POST, "/cluster/drain", ADMIN_KEY, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b, json!({"node_id": 1, "draining": true}));
    let (s, r) = node.call(Method::GET, "/readyz", "", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{r}");
    assert!(
        r["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("draining")),
        "{r}"
    );
    let (_, st) = node
        .call(Method::GET, "/cluster/status", ADMIN_KEY, None)
        .await;
    assert_eq!(st["draining"], true, "{st}");
    node.login("still-serves").await;
}

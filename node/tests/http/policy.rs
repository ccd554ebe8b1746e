//! The replicated policy changes only when an operator says so: PUT /v1/config/policy (partial,
//! checked, audited), never a restart with another file; concurrent changes of different keys
//! all take effect; an idle_timeout given alone takes touch_interval along.

use crate::common::{assert_error, TestNode, ADMIN_KEY, APP_KEY};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Each change was merged with the policy as the handler read it, and two changes of different
/// keys at once could each write back the other's old value. They are merged one at a time, as
/// the leader's queue takes them: every key changed ends up changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_policy_changes_of_different_keys_all_take_effect() {
    let node = std::sync::Arc::new(TestNode::start("").await);
    let changes = [
        json!({"idle_timeout": "31m"}),
        json!({"max_lifetime": "9h"}),
        json!({"max_concurrent_sessions": 7}),
        json!({"on_limit": "deny"}),
        json!({"max_clock_skew": "700ms"}),
        json!({"max_blocked_sessions": 9}),
    ];
    for round in 0..3 {
        let mut calls = Vec::new();
        for c in changes.clone() {
            let node = node.clone();
            calls.push(tokio::spawn(async move {
                node.call(Method::PUT, "/v1/config/policy", ADMIN_KEY, Some(c))
                    .await
            }));
        }
        for c in calls {
            let (s, b) = c.await.unwrap();
            assert_eq!(s, StatusCode::OK, "{b}");
        }
        let (_, b) = node.call(Method::GET, "/v1/config", ADMIN_KEY, None).await;
        let p = &b["policy"];
        for c in &changes {
            for (k, v) in c.as_object().unwrap() {
                assert_eq!(&p[k], v, "round {round}: {k} lost its change: {p}");
            }
        }
        // Back to the defaults, one call, for the next round.
        let (s, b) = node
            .call(
                Method::PUT,
                "/v1/config/policy",
                ADMIN_KEY,
                Some(json!({"idle_timeout": "15m", "max_lifetime": "8h",
                    "max_concurrent_sessions": 3, "on_limit": "block_new",
                    "max_clock_skew": "500ms", "max_blocked_sessions": 16})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_changes_only_when_an_operator_says_so() {
    let node = TestNode::start("idle_timeout = \"15m\"").await;
    // An admin changes one key; the others keep their values.
    let (s, b) = node
        .call(
            Method::PUT,
            "/v1/config/policy",
            ADMIN_KEY,
            Some(json!({"idle_timeout": "30m", "max_concurrent_sessions": 5})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["policy"]["idle_timeout"], "30m");
    assert_eq!(b["policy"]["max_concurrent_sessions"], 5);
    assert_eq!(b["policy"]["max_lifetime"], "8h");
    // Audited, with the key that asked.
    node.wait_until(|| async {
        let (_, a) = node
            .call(
                Method::GET,
                "/v1/audit?kind=policy_changed",
                ADMIN_KEY,
                None,
            )
            .await;
        a["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["detail"]["by"] == "admin"))
    })
    .await;
    // This node's file now differs: status and metric say so.
    let (_, st) = node
        .call(Method::GET, "/cluster/status", ADMIN_KEY, None)
        .await;
    assert_eq!(
        st["policy_file_differs"],
        json!(["idle_timeout", "max_concurrent_sessions"])
    );
    let (_, m) = node.call(Method::GET, "/metrics", ADMIN_KEY, None).await;
    assert!(m
        .as_str()
        .unwrap()
        .contains("sessync_policy_file_differs 2"));

    // Bad changes name the key and change nothing.
    for (body, field) in [
        (json!({"max_lifetime": "1m"}), "max_lifetime"),
        (json!({"idle_timeout": "soon"}), "idle_timeout"),
        (json!({"idle": "1m"}), "idle"),
        (json!({}), "body"),
    ] {
        let (s, b) = node
            .call(Method::PUT, "/v1/config/policy", ADMIN_KEY, Some(body))
            .await;
        assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request", Some(field));
    }
    let (s, b) = node
        .call(
            Method::PUT,
            "/v1/config/policy",
            APP_KEY,
            Some(json!({"idle_timeout": "1h"})),
        )
        .await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "forbidden", None);

    // The leader, restarted with its old file, does not write its file over the change.
    let dir = node.stop().await;
    let node = TestNode::restart(dir, "idle_timeout = \"15m\"").await;
    node.wait_until(|| async {
        let (s, _) = node.call(Method::GET, "/readyz", "", None).await;
        s == StatusCode::OK
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (_, c) = node.call(Method::GET, "/v1/config", ADMIN_KEY, None).await;
    assert_eq!(c["policy"]["idle_timeout"], "30m", "{c}");
}

/// `PUT /v1/config/policy` with a short `idle_timeout` alone is taken: `touch_interval`, left at
/// its default, follows it as the config file's default would (a tenth, at most 2 s); a
/// duration past the bound is refused, naming its key, and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_update_of_idle_timeout_alone_takes_touch_interval_along() {
    let node = TestNode::start("").await;
    let put = |body: serde_json::Value| {
        node.call(Method::PUT, "/v1/config/policy", ADMIN_KEY, Some(body))
    };
    let (s, b) = put(json!({"idle_timeout": "1s"})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["policy"]["idle_timeout"], "1s");
    assert_eq!(b["policy"]["touch_interval"], "100ms");
    let (s, b) = put(json!({"idle_timeout": "1h"})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["policy"]["touch_interval"], "2s");
    // Given with it, touch_interval is the operator's, and checked.
    let (s, b) = put(json!({"idle_timeout": "1s", "touch_interval": "1s"})).await;
    assert_error(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "bad_request",
        Some("touch_interval"),
    );

    for key in [
        "idle_timeout",
        "max_lifetime",
        "retention",
        "idempotency_window",
    ] {
        let (s, b) = put(json!({ key: "101years" })).await;
        assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request", Some(key));
        assert!(
            b["error"]["message"].as_str().unwrap().contains("at most"),
            "{b}"
        );
    }
    let (_, c) = node.call(Method::GET, "/v1/config", ADMIN_KEY, None).await;
    assert_eq!(c["policy"]["idle_timeout"], "1h", "{c}");
    assert_eq!(c["policy"]["retention"], "1day", "{c}");
}

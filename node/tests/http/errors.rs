//! HTTP tests of the error answers: bad JSON, missing, unknown and oversized fields, wrong key,
//! wrong role, unknown session, unknown endpoint. Every one is JSON naming what is wrong.

use crate::common::{assert_error, TestNode, ADMIN_KEY, APP_KEY};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_name_the_field() {
    let node = TestNode::start("").await;
    let post =
        |body: &'static [u8]| node.raw(Method::POST, "/v1/sessions", APP_KEY, Some(body.to_vec()));

    let (s, b) = post(b"{not json").await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request", Some("body"));
    let (s, b) = post(b"{}").await;
    assert_error(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "bad_request",
        Some("user_id"),
    );
    let (s, b) = post(br#"{"user_id": 42}"#).await;
    assert_error(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "bad_request",
        Some("user_id"),
    );
    let (s, b) = post(br#"{"user_id": ""}"#).await;
    assert_error(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "bad_request",
        Some("user_id"),
    );
    let (s, b) = post(br#"{"user_id": "a", "colour": "red"}"#).await;
    assert_error(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "bad_request",
        Some("colour"),
    );
    let (s, b) = post(br#"{"user_id": "a", "device": {"name": 1}}"#).await;
    assert_error(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "bad_request",
        Some("device.name"),
    );

    let long_user = json!({"user_id": "u".repeat(300)});
    let (s, b) = node
        .call(Method::POST, "/v1/sessions", APP_KEY, Some(long_user))
        .await;
    assert_error(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "bad_request",
        Some("user_id"),
    );
    let long_device = json!({"user_id": "a", "device": {"user_agent": "x".repeat(600)}});
    let (s, b) = node
        .call(Method::POST, "/v1/sessions", APP_KEY, Some(long_device))
        .await;
    assert_error(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "bad_request",
        Some("device.user_agent"),
    );
    let (s, b) = node
        .call(
            Method::POST,
            "/v1/sessions",
            APP_KEY,
            Some(json!({"user_id": "a\u{0007}b"})),
        )
        .await;
    assert_error(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "bad_request",
        Some("user_id"),
    );

    let huge = json!({"user_id": "a", "origin": "o".repeat(40_000)})
        .to_string()
        .into_bytes();
    let (s, b) = node
        .raw(Method::POST, "/v1/sessions", APP_KEY, Some(huge))
        .await;
    assert_error(
        s,
        &b,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        None,
    );

    let (s, b) = node
        .call(
            Method::POST,
            "/v1/sessions/validate",
            APP_KEY,
            Some(json!({"token": ""})),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request", Some("token"));
    let (s, b) = node
        .call(
            Method::POST,
            "/v1/sessions/validate",
            APP_KEY,
            Some(json!({"token": "t", "consistency": "eventual"})),
        )
        .await;
    assert_error(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "bad_request",
        Some("consistency"),
    );
    let (s, b) = node
        .call(
            Method::GET,
            "/v1/users/alice/sessions?state=sometimes",
            APP_KEY,
            None,
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request", Some("state"));
    let (s, b) = node
        .call(Method::GET, "/v1/audit?limit=0", ADMIN_KEY, None)
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request", Some("limit"));
    let (s, b) = node
        .call(Method::GET, "/v1/audit?since=yesterday", ADMIN_KEY, None)
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request", Some("since"));
    let targets: Vec<String> = (0..40).map(|i| format!("s{i}")).collect();
    let (s, b) = node
        .call(
            Method::POST,
            "/v1/users/alice/invalidate",
            APP_KEY,
            Some(json!({"targets": targets})),
        )
        .await;
    assert_error(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "bad_request",
        Some("targets"),
    );
    let (s, b) = node
        .call(Method::GET, "/v1/sessions/not%20an%20id", APP_KEY, None)
        .await;
    assert_error(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "bad_request",
        Some("session_id"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_roles() {
    // Refusals are reported each second, not each 10 s (the default), so the wait below is
    // for one report, not for the interval (the wait's 10 s once raced the default interval).
    let node = TestNode::start_with("", None, "[limits]\nfailure_report_interval = \"1s\"").await;
    let body = Some(json!({"user_id": "a"}));
    let (s, b) = node
        .call(Method::POST, "/v1/sessions", "", body.clone())
        .await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "unauthorized", None);
    let (s, b) = node
        .call(Method::POST, "/v1/sessions", "not-a-key", body.clone())
        .await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "unauthorized", None);
    for path in ["/v1/users/active", "/v1/audit", "/cluster/status"] {
        let (s, b) = node.call(Method::GET, path, APP_KEY, None).await;
        assert_error(s, &b, StatusCode::FORBIDDEN, "forbidden", None);
    }
    // Every keyed endpoint refuses a missing or unknown key.
    let sid = "s_00000000000000000000000000000000";
    let keyed = [
        (Method::POST, "/v1/sessions".to_owned()),
        (Method::POST, "/v1/sessions/validate".to_owned()),
        (Method::POST, format!("/v1/sessions/{sid}/touch")),
        (Method::GET, format!("/v1/sessions/{sid}")),
        (Method::DELETE, format!("/v1/sessions/{sid}")),
        (Method::GET, "/v1/users/a/sessions".to_owned()),
        (Method::POST, "/v1/users/a/verify".to_owned()),
        (Method::POST, "/v1/users/a/invalidate".to_owned()),
        (Method::GET, "/v1/config".to_owned()),
        (Method::GET, "/v1/users/active".to_owned()),
        (Method::GET, "/v1/audit".to_owned()),
        (Method::GET, "/metrics".to_owned()),
        (Method::POST, "/cluster/init".to_owned()),
        (Method::POST, "/cluster/learners".to_owned()),
        (Method::POST, "/cluster/membership".to_owned()),
        (Method::GET, "/cluster/status".to_owned()),
        (Method::POST, "/cluster/snapshot".to_owned()),
        (Method::GET, "/cluster/digest".to_owned()),
    ];
    for (m, p) in &keyed {
        for key in ["", "wrong-key"] {
            let (s, b) = node.call(m.clone(), p, key, Some(json!({}))).await;
            assert_error(s, &b, StatusCode::UNAUTHORIZED, "unauthorized", None);
        }
    }
    for (m, p) in keyed.iter().filter(|(_, p)| p.starts_with("/cluster")) {
        let (s, b) = node.call(m.clone(), p, APP_KEY, Some(json!({}))).await;
        assert_error(s, &b, StatusCode::FORBIDDEN, "forbidden", None);
    }
    // An admin key may use the session endpoints too.
    let (s, _) = node
        .call(Method::POST, "/v1/sessions", ADMIN_KEY, body)
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // Health needs no key.
    let (s, _) = node.call(Method::GET, "/healthz", "", None).await;
    assert_eq!(s, StatusCode::OK);
    // Auth failures reach the replicated audit log.
    node.wait_until(|| async {
        let (_, a) = node
            .call(Method::GET, "/v1/audit?kind=auth_failure", ADMIN_KEY, None)
            .await;
        a["events"].as_array().is_some_and(|e| e.len() >= 3)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_things_are_not_found() {
    let node = TestNode::start("").await;
    let ghost = "s_00000000000000000000000000000000";
    for (m, p) in [
        (Method::GET, format!("/v1/sessions/{ghost}")),
        (Method::DELETE, format!("/v1/sessions/{ghost}")),
        (Method::POST, format!("/v1/sessions/{ghost}/touch")),
        (Method::GET, "/v1/no-such-thing".to_owned()),
    ] {
        let (s, b) = node.call(m, &p, APP_KEY, None).await;
        assert_error(s, &b, StatusCode::NOT_FOUND, "not_found", None);
    }
    assert_eq!(
        node.validate("no-such-token").await,
        json!({"valid": false, "reason": "unknown"})
    );
    // Wrong method on a known path is a JSON error too.
    let (s, b) = node.call(Method::PUT, "/v1/sessions", APP_KEY, None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert!(b["error"]["code"].is_string(), "{b}");
}

#[tokio::test]
async fn limits_max_body_bytes_is_the_limit_the_node_applies() {
    let node = TestNode::start_with("", None, "[limits]\nmax_body_bytes = 1024").await;
    let body = |origin_len: usize| {
        json!({"user_id": "a", "origin": "o".repeat(origin_len)})
            .to_string()
            .into_bytes()
    };
    let (s, b) = node
        .raw(Method::POST, "/v1/sessions", APP_KEY, Some(body(400)))
        .await;
    assert_eq!(s, StatusCode::CREATED, "under the configured limit: {b}");
    // Under the built-in 16 KiB, over the configured 1 KiB.
    let (s, b) = node
        .raw(Method::POST, "/v1/sessions", APP_KEY, Some(body(2_000)))
        .await;
    assert_error(
        s,
        &b,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        None,
    );
    assert!(
        b["error"]["message"].as_str().unwrap().contains("1024"),
        "{b}"
    );
}

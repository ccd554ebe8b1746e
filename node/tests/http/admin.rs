//! HTTP tests of the admin endpoints: config, active users, audit, metrics, health, cluster.

use crate::common::{assert_error, TestNode, ADMIN_KEY, APP_KEY};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_views() {
    let node = TestNode::start("max_concurrent_sessions = 4\non_limit = \"deny\"").await;

    let (s, c) = node.call(Method::GET, "/v1/config", ADMIN_KEY, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(c["policy"]["max_concurrent_sessions"], 4);
    assert_eq!(c["policy"]["on_limit"], "deny");
    assert_eq!(c["policy"]["idle_timeout"], "15m");
    assert!(c["features"].as_array().unwrap().contains(&json!("verify")));
    assert!(c["site"].is_string(), "{c}");
    // An app key gets the policy alone, for front ends that show the idle warning.
    let (s, c) = node.call(Method::GET, "/v1/config", APP_KEY, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(c["policy"]["idle_timeout"], "15m");
    assert!(
        c.get("features").is_none() && c.get("site").is_none(),
        "{c}"
    );

    let (id, _) = node.login("hana").await;
    node.login("hana").await;
    node.login("ivan").await;
    let (s, a) = node
        .call(Method::GET, "/v1/users/active", ADMIN_KEY, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let users = a["users"].as_array().unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["user_id"], "hana");
    assert_eq!(users[0]["sessions"], 2);
    assert!(users[0]["idle"].as_str().unwrap().ends_with("sec"), "{a}");

    node.call(Method::DELETE, &format!("/v1/sessions/{id}"), APP_KEY, None)
        .await;
    let (s, au) = node
        .call(
            Method::GET,
            "/v1/audit?user_id=hana&limit=50",
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let kinds: Vec<_> = au["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("session_ended"),
        "newest first: {kinds:?}"
    );
    assert_eq!(kinds.iter().filter(|k| *k == "session_created").count(), 2);
    let (_, au) = node
        .call(
            Method::GET,
            "/v1/audit?kind=session_created&limit=1",
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(au["events"].as_array().unwrap().len(), 1);
    let (_, au) = node
        .call(
            Method::GET,
            "/v1/audit?since=2999-01-01T00:00:00Z",
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(au["events"], json!([]));

    // Metrics are closed by default: an admin key is needed.
    let (s, b) = node.raw(Method::GET, "/metrics", "", None).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "unauthorized", None);
    let (s, m) = node.raw(Method::GET, "/metrics", ADMIN_KEY, None).await;
    assert_eq!(s, StatusCode::OK);
    let text = m.as_str().unwrap();
    assert!(text.contains("sessync_http_requests_total"), "{text}");
    assert!(text.contains("sessync_raft_is_leader 1"), "{text}");
    assert!(
        text.contains("sessync_sessions{state=\"active\"} 2"),
        "{text}"
    );

    let (s, _) = node.call(Method::GET, "/readyz", "", None).await;
    assert_eq!(s, StatusCode::OK);

    let (s, st) = node
        .call(Method::GET, "/cluster/status", ADMIN_KEY, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(st["role"], "leader");
    assert_eq!(st["leader"], 1);
    assert_eq!(st["initialized"], true);
    assert_eq!(st["members"][0]["voter"], true);

    let (s, b) = node
        .call(
            Method::POST,
            "/cluster/init",
            ADMIN_KEY,
            Some(json!({"members": {"1": node.url}})),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, "already_initialized", None);
    let (s, b) = node
        .call(
            Method::POST,
            "/cluster/init",
            ADMIN_KEY,
            Some(json!({"members": {"zero": "http://x"}})),
        )
        .await;
    assert_error(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "bad_request",
        Some("members.zero"),
    );

    let (s, d) = node
        .call(Method::GET, "/cluster/digest", ADMIN_KEY, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(d["digest"].as_str().unwrap().len(), 64);
    let (s, _) = node
        .call(Method::POST, "/cluster/snapshot", ADMIN_KEY, None)
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_rpc_without_cluster_proof_is_refused() {
    let node = TestNode::start("").await;
    for path in [
        "/raft/append",
        "/raft/vote",
        "/raft/snapshot",
        "/raft/read-index",
        "/raft/audit",
    ] {
        let (s, _) = node.raw(Method::POST, path, "", Some(b"{}".to_vec())).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}");
        // A well-formed, fresh v3 proof for this node and this body, with a forged MAC, is
        // refused too, as bad_signature.
        let now = crate::recipes::now_ms();
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"{}"));
        let forged = reqwest::Client::new()
            .post(format!("{}{path}", node.url))
            .header(
                "x-sessync-cluster-auth",
                format!(
                    "v3 t={now},n={},to=1,inc={},len=2,sha={sha},sig={}",
                    "a".repeat(32),
                    "0".repeat(16),
                    "0".repeat(64)
                ),
            )
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), StatusCode::UNAUTHORIZED, "{path}");
        let text = forged.text().await.unwrap();
        assert!(text.contains("bad_signature"), "{path}: {text}");
        // An API key is no proof either.
        let (s, _) = node
            .raw(Method::POST, path, ADMIN_KEY, Some(b"{}".to_vec()))
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn metrics_labels_are_bounded_whatever_the_method_or_path() {
    let node = TestNode::start("").await;
    for i in 0..20 {
        let method = Method::from_bytes(format!("STRANGE{i}").as_bytes()).unwrap();
        node.raw(method, &format!("/no/such/path/{i}"), "", None)
            .await;
        node.raw(
            Method::GET,
            &format!("/v1/sessions/s_{i:032x}"),
            APP_KEY,
            None,
        )
        .await;
    }
    let (s, m) = node.raw(Method::GET, "/metrics", ADMIN_KEY, None).await;
    assert_eq!(s, StatusCode::OK);
    let text = m.as_str().unwrap();
    let requests: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("sessync_http_requests_total{"))
        .collect();
    assert!(!text.contains("STRANGE"), "a stranger's method is no label");
    assert!(!text.contains("/no/such"), "nor a stranger's path");
    assert!(!text.contains("s_0000"), "nor a session id");
    assert!(requests
        .iter()
        .any(|l| l.contains(r#"method="other""#) && l.contains(r#"route="unmatched""#)));
    assert!(requests
        .iter()
        .any(|l| l.contains(r#"route="/v1/sessions/{session_id}""#)));
    // 40 odd requests made a handful of label sets, not 40.
    assert!(requests.len() < 10, "{requests:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_come_in_pages_with_a_cursor() {
    let node = TestNode::start("max_concurrent_sessions = 0").await;
    for _ in 0..5 {
        node.login("pager").await;
    }
    for u in ["u-a", "u-b", "u-c"] {
        node.login(u).await;
    }
    // Every item once, in order, page by page.
    async fn walk(node: &TestNode, first: &str, items: &str, id: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut path = first.to_owned();
        for _ in 0..20 {
            let (s, b) = node.call(Method::GET, &path, ADMIN_KEY, None).await;
            assert_eq!(s, StatusCode::OK, "{path}: {b}");
            let page = b[items].as_array().unwrap();
            assert!(page.len() <= 2, "{b}");
            out.extend(page.iter().map(|x| x[id].as_str().unwrap().to_owned()));
            match b["next_cursor"].as_str() {
                Some(c) => {
                    let sep = if first.contains('?') { '&' } else { '?' };
                    path = format!("{first}{sep}cursor={c}");
                }
                None => return out,
            }
        }
        panic!("more than 20 pages")
    }
    let sessions = walk(
        &node,
        "/v1/users/pager/sessions?limit=2",
        "sessions",
        "session_id",
    )
    .await;
    assert_eq!(sessions.len(), 5, "{sessions:?}");
    let (_, all) = node
        .call(Method::GET, "/v1/users/pager/sessions", ADMIN_KEY, None)
        .await;
    let newest_first: Vec<String> = all["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["session_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sessions, newest_first);
    assert!(all.get("next_cursor").is_none());

    let users = walk(&node, "/v1/users/active?limit=2", "users", "user_id").await;
    assert_eq!(users, ["pager", "u-a", "u-b", "u-c"]);

    node.wait_until(|| async {
        let (_, a) = node
            .call(
                Method::GET,
                "/v1/audit?kind=session_created",
                ADMIN_KEY,
                None,
            )
            .await;
        a["events"].as_array().is_some_and(|e| e.len() == 8)
    })
    .await;
    let mut seqs = Vec::new();
    let mut path = "/v1/audit?kind=session_created&limit=3".to_owned();
    loop {
        let (_, b) = node.call(Method::GET, &path, ADMIN_KEY, None).await;
        seqs.extend(
            b["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_u64().unwrap()),
        );
        match b["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/audit?kind=session_created&limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seqs.len(), 8);
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );

    // A bad parameter is named exactly: a cursor that is not base64, one that is base64 of
    // something no node gives (no position of this list, or not UTF-8), and limits out of range.
    // A position of the active users is a user id: "not-a-number" is one, "bad\u{1}" is not.
    for (list, wrong) in [
        ("/v1/users/pager/sessions", "bm90LWEtbnVtYmVy"), // "not-a-number": no time:id
        ("/v1/users/active", "YmFkAQ"),                   // "bad\u{1}": not a user id
        ("/v1/audit", "bm90LWEtbnVtYmVy"),                // not a sequence number
    ] {
        for (query, field) in [
            ("cursor=%25%25".to_owned(), "cursor"),
            (format!("cursor={wrong}"), "cursor"),
            ("cursor=_w".to_owned(), "cursor"), // 0xff: not UTF-8
            ("limit=0".to_owned(), "limit"),
            ("limit=1001".to_owned(), "limit"),
            ("limit=x".to_owned(), "limit"),
            ("limit=2&cursor=%25%25".to_owned(), "cursor"),
        ] {
            let path = format!("{list}?{query}");
            let (s, b) = node.call(Method::GET, &path, ADMIN_KEY, None).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {b}");
            assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request", Some(field));
        }
        // A duplicated limit: our error shape too (not a plain-text rejection), naming it.
        let path = format!("{list}?limit=1&limit=2");
        let (s, b) = node.call(Method::GET, &path, ADMIN_KEY, None).await;
        assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request", None);
        let message = b["error"]["message"].as_str().unwrap();
        assert!(message.contains("`limit`"), "{path}: {b}");
    }
}

/// Users whose live sessions are all blocked (or past their deadline) hold no page place, so
/// a page of `GET /v1/users/active` walks a bounded number of users, not every user: it may
/// hold fewer than `limit` users, even none, and still carry `next_cursor`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_active_users_walks_a_bounded_number_of_users() {
    let node = TestNode::start("max_concurrent_sessions = 1\non_limit = \"block_new\"").await;
    node.login("a-on").await;
    // 45 users with a blocked session only: the active one ended, the blocked one stays.
    for n in 0..45 {
        let user = format!("b-{n:02}");
        let (first, _) = node.login(&user).await;
        node.login(&user).await;
        let (s, b) = node
            .call(
                Method::DELETE,
                &format!("/v1/sessions/{first}"),
                APP_KEY,
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    node.login("z-on").await;

    let mut users = Vec::new();
    let mut pages = Vec::new();
    let mut path = "/v1/users/active?limit=2".to_owned();
    for _ in 0..50 {
        let (s, b) = node.call(Method::GET, &path, ADMIN_KEY, None).await;
        assert_eq!(s, StatusCode::OK, "{path}: {b}");
        let page: Vec<String> = b["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["user_id"].as_str().unwrap().to_owned())
            .collect();
        users.extend(page.iter().cloned());
        let next = b["next_cursor"].as_str().map(str::to_owned);
        pages.push((page.len(), next.is_some()));
        match next {
            Some(c) => path = format!("/v1/users/active?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(users, ["a-on", "z-on"], "pages: {pages:?}");
    // 47 users at most 20 a page (10 per item asked for): three pages, the middle one empty.
    assert_eq!(pages, [(1, true), (0, true), (1, false)]);
}

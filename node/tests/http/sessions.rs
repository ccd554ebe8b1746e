//! HTTP tests of the session endpoints: each endpoint's success path and the session lifecycle.

use crate::common::{assert_error, TestNode, ADMIN_KEY, APP_KEY, CLUSTER_SECRET};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_lifecycle() {
    let node = TestNode::start("max_concurrent_sessions = 5").await;
    let (s, created) = node
        .call(
            Method::POST,
            "/v1/sessions",
            APP_KEY,
            Some(json!({"user_id": "alice", "device": {"name": "laptop", "ip": "10.0.0.1"}, "origin": "web"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap();
    assert_eq!(token.len(), 43);
    let session = &created["session"];
    let id = session["session_id"].as_str().unwrap();
    assert_eq!(session["user_id"], "alice");
    assert_eq!(session["state"], "active");
    assert_eq!(session["end_reason"], serde_json::Value::Null);
    assert_eq!(session["device"]["name"], "laptop");
    assert_eq!(session["origin"], "web");
    for f in [
        "created_at",
        "last_seen_at",
        "idle_expires_at",
        "expires_at",
    ] {
        let t = session[f].as_str().unwrap();
        assert!(
            t.ends_with('Z') && t.contains('.'),
            "{f} = {t} is RFC 3339 UTC with millis"
        );
    }

    // validate, linearizable and local
    let v = node.validate(token).await;
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["session"]["session_id"], id);
    let idle = v["seconds_until_idle_end"].as_u64().unwrap();
    let life = v["seconds_until_session_end"].as_u64().unwrap();
    assert!((14 * 60..=15 * 60 + 5).contains(&idle), "idle {idle}");
    assert!((7 * 3600..=8 * 3600).contains(&life), "life {life}");
    let (s, v) = node
        .call(
            Method::POST,
            "/v1/sessions/validate",
            APP_KEY,
            Some(json!({"token": token, "consistency": "local", "touch": false})),
        )
        .await;
    assert_eq!((s, v["valid"].clone()), (StatusCode::OK, json!(true)));

    // touch
    let (s, t) = node
        .call(
            Method::POST,
            &format!("/v1/sessions/{id}/touch"),
            APP_KEY,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["session"]["session_id"], id);
    assert!(t["seconds_until_idle_end"].as_u64().is_some());

    // get
    let (s, g) = node
        .call(Method::GET, &format!("/v1/sessions/{id}"), APP_KEY, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(g["session"]["session_id"], id);

    // list: a second device, newest first
    let (id2, _) = node.login("alice").await;
    let (s, l) = node
        .call(
            Method::GET,
            "/v1/users/alice/sessions?state=active",
            APP_KEY,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let ids: Vec<_> = l["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["session_id"].clone())
        .collect();
    assert_eq!(ids, vec![json!(id2), json!(id)]);

    // end (logout), idempotent
    let (s, e) = node
        .call(Method::DELETE, &format!("/v1/sessions/{id}"), APP_KEY, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(e["session"]["state"], "ended");
    assert_eq!(e["session"]["end_reason"], "logout");
    let ended_at = e["session"]["ended_at"].clone();
    let (s, e) = node
        .call(Method::DELETE, &format!("/v1/sessions/{id}"), APP_KEY, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(e["session"]["ended_at"], ended_at, "the first end stands");
    let v = node.validate(token).await;
    assert_eq!(v, json!({"valid": false, "reason": "logout"}));

    // lists: active has only the second, all has both
    let (_, l) = node
        .call(
            Method::GET,
            "/v1/users/alice/sessions?state=active",
            APP_KEY,
            None,
        )
        .await;
    assert_eq!(l["sessions"].as_array().unwrap().len(), 1);
    let (_, l) = node
        .call(
            Method::GET,
            "/v1/users/alice/sessions?state=all",
            APP_KEY,
            None,
        )
        .await;
    assert_eq!(l["sessions"].as_array().unwrap().len(), 2);

    // an admin's end is recorded as such
    let (s, e) = node
        .call(
            Method::DELETE,
            &format!("/v1/sessions/{id2}"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(e["session"]["end_reason"], "admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_invalidate() {
    let node = TestNode::start("max_concurrent_sessions = 2\non_limit = \"block_new\"").await;
    let (a, ta) = node.login("bob").await;
    let (_b, _) = node.login("bob").await;
    // Third login is over the limit: created blocked.
    let (s, c) = node
        .call(
            Method::POST,
            "/v1/sessions",
            APP_KEY,
            Some(json!({"user_id": "bob"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(c["session"]["state"], "blocked");
    let blocked_id = c["session"]["session_id"].as_str().unwrap().to_owned();
    let blocked_token = c["token"].as_str().unwrap().to_owned();
    assert_eq!(
        node.validate(&blocked_token).await,
        json!({"valid": false, "reason": "blocked"})
    );

    // Verify the blocked one: it becomes active, the two others end superseded.
    let (s, v) = node
        .call(
            Method::POST,
            "/v1/users/bob/verify",
            APP_KEY,
            Some(json!({"session_id": blocked_id, "targets": ["site-x"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["verified"], blocked_id);
    assert_eq!(v["ended"], 2);
    assert_eq!(v["fanout"], json!({"site-x": "unknown_site"}));
    assert_eq!(node.validate(&blocked_token).await["valid"], true);
    assert_eq!(
        node.validate(&ta).await,
        json!({"valid": false, "reason": "superseded"})
    );

    // Verify with no body: the newest live session.
    let (s, v) = node
        .call(Method::POST, "/v1/users/bob/verify", APP_KEY, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["verified"], blocked_id);
    assert_eq!(v["ended"], 0);

    // Invalidate one, then all.
    let (d, _) = node.login("bob").await;
    let (s, i) = node
        .call(
            Method::POST,
            "/v1/users/bob/invalidate",
            APP_KEY,
            Some(json!({"session_id": d})),
        )
        .await;
    assert_eq!((s, i["ended"].clone()), (StatusCode::OK, json!(1)));
    let (s, i) = node
        .call(
            Method::POST,
            "/v1/users/bob/invalidate",
            APP_KEY,
            Some(json!({})),
        )
        .await;
    assert_eq!((s, i["ended"].clone()), (StatusCode::OK, json!(1)));
    assert_eq!(
        node.validate(&blocked_token).await,
        json!({"valid": false, "reason": "invalidated"})
    );
    let (_, l) = node
        .call(
            Method::GET,
            "/v1/users/bob/sessions?state=active",
            APP_KEY,
            None,
        )
        .await;
    assert_eq!(l["sessions"], json!([]));

    // Errors: a session of another user, a user with nothing to verify.
    let (other, _) = node.login("carol").await;
    let (s, b) = node
        .call(
            Method::POST,
            "/v1/users/bob/invalidate",
            APP_KEY,
            Some(json!({"session_id": other})),
        )
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found", None);
    let (s, b) = node
        .call(Method::POST, "/v1/users/nobody/verify", APP_KEY, None)
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found", None);
    let _ = a;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_and_evict_over_http() {
    let node = TestNode::start("max_concurrent_sessions = 1\non_limit = \"deny\"").await;
    let (first, _) = node.login("dan").await;
    let (s, b) = node
        .call(
            Method::POST,
            "/v1/sessions",
            APP_KEY,
            Some(json!({"user_id": "dan"})),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, "limit_reached", None);
    let active = b["error"]["active_sessions"].as_array().unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["session_id"], first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evict_oldest_over_http() {
    let node = TestNode::start("max_concurrent_sessions = 1\non_limit = \"evict_oldest\"").await;
    let (_, t1) = node.login("erin").await;
    let (_, t2) = node.login("erin").await;
    assert_eq!(
        node.validate(&t1).await,
        json!({"valid": false, "reason": "evicted"})
    );
    assert_eq!(node.validate(&t2).await["valid"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_ends_a_session() {
    let node = TestNode::start("idle_timeout = \"1s\"\ntouch_interval = \"100ms\"").await;
    let (id, token) = node.login("fay").await;
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    assert_eq!(
        node.validate(&token).await,
        json!({"valid": false, "reason": "idle_timeout"})
    );
    let (_, g) = node
        .call(Method::GET, &format!("/v1/sessions/{id}"), APP_KEY, None)
        .await;
    assert_eq!(g["session"]["end_reason"], "idle_timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_create_returns_the_same_session() {
    let node = TestNode::start("").await;
    let body = json!({"user_id": "gus", "idempotency_key": "login-7"});
    let (s1, a) = node
        .call(Method::POST, "/v1/sessions", APP_KEY, Some(body.clone()))
        .await;
    let (s2, b) = node
        .call(Method::POST, "/v1/sessions", APP_KEY, Some(body))
        .await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(a["session"]["session_id"], b["session"]["session_id"]);
    assert_eq!(
        node.validate(b["token"].as_str().unwrap()).await["valid"],
        true
    );
    // Another API key with the same idempotency key gets neither the session nor a token.
    let (s3, c) = node
        .call(
            Method::POST,
            "/v1/sessions",
            ADMIN_KEY,
            Some(json!({"user_id": "gus", "idempotency_key": "login-7"})),
        )
        .await;
    assert_error(s3, &c, StatusCode::CONFLICT, "conflict", None);
    assert!(c.get("token").is_none() && c.to_string().find(b["token"].as_str().unwrap()).is_none());
}

/// A replay derived its token again from a key the cluster secret gave by default; it now
/// hands out a fresh random token, and the token an earlier answer carried keeps working (a
/// retried create's answers may arrive in any order). A node still configured with a token
/// secret of an earlier version starts and replays the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_hands_out_a_fresh_token_and_the_earlier_one_keeps_working() {
    let node = TestNode::start("").await;
    let body = json!({"user_id": "hal", "idempotency_key": "login-9"});
    let (s, first) = node
        .call(Method::POST, "/v1/sessions", APP_KEY, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let (s, replay) = node
        .call(Method::POST, "/v1/sessions", APP_KEY, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::OK, "{replay}");
    assert_eq!(
        replay["session"]["session_id"],
        first["session"]["session_id"]
    );
    let (old, new) = (
        first["token"].as_str().unwrap(),
        replay["token"].as_str().unwrap(),
    );
    assert_eq!(new.len(), 43);
    assert_ne!(old, new);
    assert_eq!(node.validate(new).await["valid"], true);
    assert_eq!(node.validate(old).await["valid"], true);

    let dir = node.stop().await;
    let node = TestNode::restart_with_env(
        dir,
        &[(
            "SESSYNC_TOKEN_SECRET",
            "a-token-secret-of-an-earlier-version-0123",
        )],
    )
    .await;
    node.wait_until(|| async {
        let (s, _) = node.call(Method::GET, "/readyz", "", None).await;
        s == StatusCode::OK
    })
    .await;
    let (s, again) = node
        .call(Method::POST, "/v1/sessions", APP_KEY, Some(body))
        .await;
    assert_eq!(s, StatusCode::OK, "{again}");
    let newest = again["token"].as_str().unwrap();
    assert_eq!(node.validate(newest).await["valid"], true);
    assert_eq!(node.validate(new).await["valid"], true);

    // An ended session replays as ended, with no token.
    let id = again["session"]["session_id"].as_str().unwrap();
    let (s, _) = node
        .call(Method::DELETE, &format!("/v1/sessions/{id}"), APP_KEY, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, ended) = node
        .call(
            Method::POST,
            "/v1/sessions",
            APP_KEY,
            Some(json!({"user_id": "hal", "idempotency_key": "login-9"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{ended}");
    assert_eq!(ended["session"]["state"], "ended");
    assert_eq!(ended["token"], "");
    assert_eq!(
        node.validate(newest).await,
        json!({"valid": false, "reason": "logout"})
    );
    node.stop().await;
}

/// Tokens of idempotent creates were HMAC(HMAC(cluster secret, "sessync-token-key-v1"),
/// "sessync-token-v2\0" + session id) unless a token secret was set: whoever held the cluster
/// secret could mint a working token for any session id seen on /v1/events. No token is derived
/// now: one made that way does not validate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_secret_alone_cannot_mint_a_session_token() {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;
    let node = TestNode::start("").await;
    let (s, created) = node
        .call(
            Method::POST,
            "/v1/sessions",
            APP_KEY,
            Some(json!({"user_id": "ida", "idempotency_key": "login-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["session"]["session_id"].as_str().unwrap();
    let mut key = Hmac::<Sha256>::new_from_slice(CLUSTER_SECRET.as_bytes()).unwrap();
    key.update(b"sessync-token-key-v1");
    let key = key.finalize().into_bytes();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(b"sessync-token-v2\0");
    mac.update(id.as_bytes());
    let minted =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    assert_eq!(
        node.validate(&minted).await,
        json!({"valid": false, "reason": "unknown"}),
        "a token minted from the cluster secret validated"
    );
    assert_eq!(
        node.validate(created["token"].as_str().unwrap()).await["valid"],
        true
    );
}

/// Ended is final: sessions touched right around their idle deadline, while other readers keep
/// asking. Once any linearizable read has called a session ended, no later read calls it valid
/// (a touch queued just before the deadline and committed just after it must not bring the
/// session back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_touch_committed_after_the_deadline_never_brings_a_session_back() {
    let node = std::sync::Arc::new(
        TestNode::start("idle_timeout = \"1s\"\ntouch_interval = \"100ms\"").await,
    );
    // The idle end is last_seen_at + idle_timeout + touch_interval = 1.1 s after the login.
    let mut tasks = Vec::new();
    for i in 0..40u64 {
        let node = node.clone();
        tasks.push(tokio::spawn(async move {
            let (_, token) = node.login(&format!("edge-{i}")).await;
            let start = tokio::time::Instant::now();
            // One toucher, at an offset that sweeps across the deadline.
            let toucher = {
                let (node, token) = (node.clone(), token.clone());
                tokio::spawn(async move {
                    tokio::time::sleep_until(start + Duration::from_millis(1_080 + i)).await;
                    node.validate(&token).await
                })
            };
            // A reader that never touches, polling from just before the deadline until well past it.
            tokio::time::sleep_until(start + Duration::from_millis(1_050)).await;
            let mut seen_ended = false;
            let mut revived = None;
            while start.elapsed() < Duration::from_millis(1_300) {
                let (_, b) = node
                    .call(
                        Method::POST,
                        "/v1/sessions/validate",
                        APP_KEY,
                        Some(json!({"token": token, "touch": false})),
                    )
                    .await;
                match b["valid"].as_bool() {
                    Some(false) => seen_ended = true,
                    Some(true) if seen_ended => revived = Some(start.elapsed()),
                    _ => {}
                }
            }
            let touched = toucher.await.unwrap();
            (i, revived, touched)
        }));
    }
    for t in tasks {
        let (i, revived, touched) = t.await.unwrap();
        assert!(
            revived.is_none(),
            "session {i} was called valid at {revived:?} after a read had called it ended \
             (the late toucher got {touched})"
        );
    }
}

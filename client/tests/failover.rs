//! The client against scripted fake nodes on loopback: failover on refused connections and
//! 503, stickiness, no resend of an uncertain POST, the deadline, and the raw escape hatch.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sessync_client::{Client, ClientError, Method};
use sessync_proto::ErrorCode;
use tokio::net::TcpListener;

mod fake_node;
use fake_node::{answer_json, read_request};

/// How a fake node treats each request.
#[derive(Clone)]
enum Behaviour {
    /// Answers with this status and JSON body.
    Answer(u16, String),
    /// Reads the request, then closes the connection without answering.
    Hangup,
    /// Reads the request and never answers.
    Silent,
}

/// A fake node: counts requests and keeps the last request's text.
struct Fake {
    url: String,
    hits: Arc<AtomicUsize>,
    last_request: Arc<Mutex<String>>,
}

async fn fake(behaviour: Behaviour) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let last_request = Arc::new(Mutex::new(String::new()));
    let (h, l) = (hits.clone(), last_request.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (h, l, behaviour) = (h.clone(), l.clone(), behaviour.clone());
            tokio::spawn(async move {
                let req = read_request(&mut sock).await;
                h.fetch_add(1, Ordering::SeqCst);
                *l.lock().unwrap() = req;
                match behaviour {
                    Behaviour::Answer(status, body) => answer_json(&mut sock, status, &body).await,
                    Behaviour::Hangup => drop(sock),
                    Behaviour::Silent => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                }
            });
        }
    });
    Fake {
        url,
        hits,
        last_request,
    }
}

fn unavailable() -> Behaviour {
    Behaviour::Answer(
        503,
        r#"{"error":{"code":"unavailable","message":"no quorum"}}"#.into(),
    )
}

fn change_ok() -> Behaviour {
    Behaviour::Answer(200, r#"{"ok":true,"log_index":7}"#.into())
}

/// A loopback URL nothing listens on.
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

#[tokio::test]
async fn fails_over_503_and_refused_then_sticks() {
    let a = fake(unavailable()).await;
    let b = fake(change_ok()).await;
    let c = Client::new(vec![dead_url(), a.url.clone(), b.url.clone()], "key").unwrap();
    let r = c.add_learner(4, "http://127.0.0.1:9").await.unwrap();
    assert_eq!(r.log_index, Some(7));
    assert_eq!(a.hits.load(Ordering::SeqCst), 1);
    assert_eq!(c.current_endpoint(), b.url);
    // The next call starts at the endpoint that answered.
    c.change_membership(vec![1, 2], false).await.unwrap();
    assert_eq!(a.hits.load(Ordering::SeqCst), 1);
    assert_eq!(b.hits.load(Ordering::SeqCst), 2);
    let req = b.last_request.lock().unwrap().clone();
    assert!(req.starts_with("POST /cluster/membership "), "{req}");
    assert!(req.contains("authorization: Bearer key"), "{req}");
    assert!(req.contains(r#"{"voters":[1,2],"retain":false}"#), "{req}");
}

#[tokio::test]
async fn gives_up_after_bounded_rounds() {
    let a = fake(unavailable()).await;
    let b = fake(unavailable()).await;
    let c = Client::builder(vec![a.url.clone(), b.url.clone()], "k")
        .rounds(2)
        .build()
        .unwrap();
    let e = c.cluster_status().await.unwrap_err();
    assert_eq!(
        e,
        ClientError::Unavailable {
            message: "no quorum".into()
        }
    );
    assert_eq!(a.hits.load(Ordering::SeqCst), 2);
    assert_eq!(b.hits.load(Ordering::SeqCst), 2);

    let c = Client::new(vec![dead_url(), dead_url()], "k").unwrap();
    let e = c.config().await.unwrap_err();
    assert!(matches!(e, ClientError::Transport(_)), "{e:?}");
}

#[tokio::test]
async fn pinned_makes_one_attempt() {
    let a = fake(unavailable()).await;
    let b = fake(change_ok()).await;
    let c = Client::new(vec![a.url.clone(), b.url.clone()], "k").unwrap();
    let e = c.pinned(0).add_learner(2, "http://x:1").await.unwrap_err();
    assert!(e.is_unavailable());
    assert_eq!(a.hits.load(Ordering::SeqCst), 1);
    assert_eq!(b.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn uncertain_post_is_not_resent_but_get_is() {
    let a = fake(Behaviour::Hangup).await;
    let b = fake(change_ok()).await;
    let c = Client::new(vec![a.url.clone(), b.url.clone()], "k").unwrap();
    let e = c.add_learner(2, "http://x:1").await.unwrap_err();
    assert!(matches!(e, ClientError::Transport(_)), "{e:?}");
    assert_eq!(b.hits.load(Ordering::SeqCst), 0);

    let b = fake(Behaviour::Answer(200, r#"{"users":[]}"#.into())).await;
    let c = Client::new(vec![a.url.clone(), b.url.clone()], "k").unwrap();
    assert!(c.active_users().await.unwrap().is_empty());
    assert_eq!(b.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn deadline_bounds_a_silent_node() {
    let a = fake(Behaviour::Silent).await;
    let c = Client::new(vec![a.url.clone()], "k")
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let e = c.cluster_status().await.unwrap_err();
    assert!(matches!(e, ClientError::Transport(_)), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn errors_are_mapped_and_raw_is_not_decoded() {
    let a = fake(Behaviour::Answer(
        409,
        r#"{"error":{"code":"already_initialized","message":"already"}}"#.into(),
    ))
    .await;
    let c = Client::new(vec![a.url.clone()], "k").unwrap();
    let e = c
        .cluster_init([(1, a.url.clone())].into_iter().collect())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::AlreadyInitialized));
    let req = a.last_request.lock().unwrap().clone();
    assert!(
        req.contains(&format!(r#"{{"members":{{"1":"{}"}}}}"#, a.url)),
        "{req}"
    );

    let (status, body) = c
        .request_raw(
            Method::POST,
            "/v1/sessions",
            Some(b"{not json".to_vec()),
            &[("authorization", "Bearer other"), ("x-extra", "1")],
        )
        .await
        .unwrap();
    assert_eq!(status, 409);
    assert!(body.starts_with(b"{\"error\""));
    let req = a.last_request.lock().unwrap().clone();
    assert!(req.contains("authorization: Bearer other"), "{req}");
    assert!(!req.contains("Bearer k"), "{req}");
    assert!(req.contains("x-extra: 1"), "{req}");
    assert!(req.ends_with("{not json"), "{req}");
}

#[tokio::test]
async fn probes_answer_without_a_key() {
    let a = fake(Behaviour::Answer(200, "ok".into())).await;
    let c = Client::new(vec![a.url.clone()], "k").unwrap();
    assert!(c.healthz().await.unwrap());
    let req = a.last_request.lock().unwrap().clone();
    assert!(req.starts_with("GET /healthz "), "{req}");
    assert!(!req.to_ascii_lowercase().contains("authorization"), "{req}");
    let b = fake(unavailable()).await;
    assert!(!Client::new(vec![b.url.clone()], "k")
        .unwrap()
        .readyz()
        .await
        .unwrap());
    assert!(Client::new(vec![dead_url()], "k")
        .unwrap()
        .healthz()
        .await
        .is_err());
}

#[tokio::test]
async fn decode_errors_name_the_path() {
    let a = fake(Behaviour::Answer(200, r#"{"unexpected":1}"#.into())).await;
    let c = Client::new(vec![a.url.clone()], "k").unwrap();
    match c.cluster_status().await.unwrap_err() {
        ClientError::Decode(m) => assert!(m.contains("/cluster/status"), "{m}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn every_create_carries_an_idempotency_key_and_is_resent() {
    use sessync_proto::api::CreateSessionRequest;
    use sessync_proto::UserId;

    let a = fake(Behaviour::Hangup).await;
    let b = fake(Behaviour::Answer(500, "{}".into())).await;
    let c = Client::new(vec![a.url.clone(), b.url.clone()], "k").unwrap();
    let mut req = CreateSessionRequest {
        user_id: UserId::parse_field("alice", "user_id").unwrap(),
        device: Default::default(),
        origin: None,
        idempotency_key: None,
    };
    // Without a key of the caller's, the client adds its own, so the resend is safe.
    let e = c.create_session(&req).await.unwrap_err();
    assert_eq!(e.status(), Some(500));
    assert_eq!(b.hits.load(Ordering::SeqCst), 1, "resent elsewhere");
    let sent = b.last_request.lock().unwrap().clone();
    assert!(sent.contains(r#""idempotency_key":"auto-"#), "{sent}");
    // The caller's own key is sent as it is.
    req.idempotency_key = Some("login-1".into());
    let e = c.create_session(&req).await.unwrap_err();
    assert_eq!(e.status(), Some(500));
    assert_eq!(
        b.hits.load(Ordering::SeqCst),
        2,
        "with a key: resent elsewhere"
    );
    let sent = b.last_request.lock().unwrap().clone();
    assert!(sent.contains(r#""idempotency_key":"login-1""#), "{sent}");
}

#[tokio::test]
async fn attempt_timeout_moves_past_a_hung_node() {
    let hung = fake(Behaviour::Silent).await;
    let ok = fake(Behaviour::Answer(200, r#"{"users":[]}"#.into())).await;
    let c = Client::builder(vec![hung.url.clone(), ok.url.clone()], "k")
        .timeout(Duration::from_secs(5))
        .attempt_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let started = Instant::now();
    assert!(c.active_users().await.unwrap().is_empty());
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(c.current_endpoint(), ok.url);
    // A POST that may have reached the hung node is not sent again.
    let c = Client::new(vec![hung.url.clone(), ok.url.clone()], "k")
        .unwrap()
        .with_attempt_timeout(Duration::from_millis(200));
    let e = c.add_learner(5, "http://x:1").await.unwrap_err();
    assert!(matches!(e, ClientError::Transport(_)), "{e:?}");
    assert_eq!(ok.hits.load(Ordering::SeqCst), 1);
}

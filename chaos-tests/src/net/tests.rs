//! The proxies against a tiny HTTP server on loopback that echoes each request; every wait is
//! bounded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::http::{self, Requests};
use super::{Faults, LinkFault, NodeProxy, SiteMode, SiteProxy};

/// The deadline of a request that should be answered.
const ANSWER: Duration = Duration::from_secs(5);
/// The deadline of a request on a link that should swallow it.
const SWALLOWED: Duration = Duration::from_secs(1);

/// An upstream that answers every request `200` with `<path> from=<x-sessync-from>
/// body=<body>`, keeping connections alive, and counts the requests it got.
struct Echo {
    port: u16,
    seen: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Echo {
    async fn start() -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(AtomicUsize::new(0));
        let count = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let count = count.clone();
                tokio::spawn(async move {
                    let mut requests = Requests::default();
                    let mut buf = vec![0u8; 4096];
                    while let Ok(n @ 1..) = s.read(&mut buf).await {
                        for r in requests.push(&buf[..n]) {
                            count.fetch_add(1, Ordering::SeqCst);
                            let head = http::head_len(&r).unwrap();
                            let body = format!(
                                "{} from={} body={}",
                                http::request_path(&r).unwrap_or("?"),
                                http::header(&r, "x-sessync-from").unwrap_or("-"),
                                String::from_utf8_lossy(&r[head..])
                            );
                            let answer = format!(
                                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                                body.len()
                            );
                            if s.write_all(answer.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        Echo { port, seen, task }
    }

    fn seen(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The bytes of a request to `path`, naming node `from` (none for 0), with `body`.
fn request(path: &str, from: u64, body: &str) -> Vec<u8> {
    let sender = if from == 0 {
        String::new()
    } else {
        format!("x-sessync-from: {from}\r\n")
    };
    format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\n{sender}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn connect(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port)).await.unwrap()
}

/// What a request on `s` got within `deadline`.
#[derive(Debug)]
enum Outcome {
    Answer(u16, String),
    /// The connection closed (or failed) without an answer.
    Closed,
    TimedOut,
}

async fn send(s: &mut TcpStream, bytes: &[u8], deadline: Duration) -> Outcome {
    let exchange = async {
        s.write_all(bytes).await?;
        http::read_response(s).await
    };
    match tokio::time::timeout(deadline, exchange).await {
        Ok(Ok((status, body))) => Outcome::Answer(status, String::from_utf8_lossy(&body).into()),
        Ok(Err(_)) => Outcome::Closed,
        Err(_) => Outcome::TimedOut,
    }
}

/// One request from node `from` on a fresh connection to `port`.
async fn call(port: u16, from: u64, deadline: Duration) -> Outcome {
    let mut s = connect(port).await;
    send(&mut s, &request("/raft/append", from, "{}"), deadline).await
}

fn is_answer(o: &Outcome, from: u64) -> bool {
    let sender = if from == 0 {
        "-".into()
    } else {
        from.to_string()
    };
    matches!(o, Outcome::Answer(200, body) if body == &format!("/raft/append from={sender} body={{}}"))
}

#[tokio::test]
async fn a_node_proxy_passes_requests_of_any_sender() {
    let echo = Echo::start().await;
    let proxy = NodeProxy::start(1, echo.port, Faults::new()).await.unwrap();
    assert_eq!(proxy.url(), format!("http://127.0.0.1:{}", proxy.port()));
    for from in [0, 2, 3] {
        let o = call(proxy.port(), from, ANSWER).await;
        assert!(is_answer(&o, from), "from {from}: {o:?}");
    }
    // Keep-alive: several requests on one connection.
    let mut s = connect(proxy.port()).await;
    for _ in 0..3 {
        let o = send(&mut s, &request("/raft/append", 2, "{}"), ANSWER).await;
        assert!(is_answer(&o, 2), "{o:?}");
    }
    assert_eq!(echo.seen(), 6);
}

#[tokio::test]
async fn a_cut_link_swallows_only_its_senders_requests_until_healed() {
    let echo = Echo::start().await;
    let faults = Faults::new();
    let proxy = NodeProxy::start(1, echo.port, faults.clone())
        .await
        .unwrap();
    faults.cut(3, 1);
    assert_eq!(faults.get(3, 1), Some(LinkFault::Cut));
    assert_eq!(faults.get(1, 3), None);

    let o = call(proxy.port(), 3, SWALLOWED).await;
    assert!(
        matches!(o, Outcome::TimedOut),
        "a partition times out: {o:?}"
    );
    assert!(is_answer(&call(proxy.port(), 2, ANSWER).await, 2));
    assert!(is_answer(&call(proxy.port(), 0, ANSWER).await, 0));
    // A forwarded request names its sender in the other header.
    let mut s = connect(proxy.port()).await;
    let fwd = b"GET /v1/x HTTP/1.1\r\nX-Sessync-Forwarded-By: 3\r\n\r\n";
    let o = send(&mut s, fwd, SWALLOWED).await;
    assert!(matches!(o, Outcome::TimedOut), "forwarded by 3: {o:?}");
    assert_eq!(echo.seen(), 2, "nothing from node 3 reached the node");

    faults.heal(3, 1);
    assert!(is_answer(&call(proxy.port(), 3, ANSWER).await, 3));
}

#[tokio::test]
async fn an_open_connection_is_black_holed_when_its_link_is_cut() {
    let echo = Echo::start().await;
    let faults = Faults::new();
    let proxy = NodeProxy::start(1, echo.port, faults.clone())
        .await
        .unwrap();
    let mut s = connect(proxy.port()).await;
    let o = send(&mut s, &request("/raft/append", 3, "{}"), ANSWER).await;
    assert!(is_answer(&o, 3), "{o:?}");

    faults.partition(&[vec![1], vec![2, 3]]);
    let o = send(&mut s, &request("/raft/append", 3, "{}"), SWALLOWED).await;
    assert!(matches!(o, Outcome::TimedOut), "{o:?}");

    // Healing closes the connection that lost bytes; a new one passes.
    faults.heal_all();
    let mut rest = Vec::new();
    let end = tokio::time::timeout(ANSWER, s.read_to_end(&mut rest)).await;
    assert!(end.is_ok(), "the black-holed connection is closed at heal");
    assert!(is_answer(&call(proxy.port(), 3, ANSWER).await, 3));
}

#[tokio::test]
async fn a_refused_link_closes_at_once() {
    let echo = Echo::start().await;
    let faults = Faults::new();
    let proxy = NodeProxy::start(1, echo.port, faults.clone())
        .await
        .unwrap();
    // An idle open connection is closed as soon as the link is refused.
    let mut idle = connect(proxy.port()).await;
    let o = send(&mut idle, &request("/raft/append", 2, "{}"), ANSWER).await;
    assert!(is_answer(&o, 2), "{o:?}");
    faults.set(2, 1, LinkFault::Refuse);
    let mut rest = Vec::new();
    let end = tokio::time::timeout(ANSWER, idle.read_to_end(&mut rest)).await;
    assert!(end.is_ok(), "the open connection is closed");

    let started = Instant::now();
    let o = call(proxy.port(), 2, ANSWER).await;
    assert!(matches!(o, Outcome::Closed), "{o:?}");
    assert!(started.elapsed() < SWALLOWED, "{:?}", started.elapsed());
    assert!(is_answer(&call(proxy.port(), 3, ANSWER).await, 3));
}

#[tokio::test]
async fn a_delayed_link_adds_the_delay_each_way() {
    let echo = Echo::start().await;
    let faults = Faults::new();
    let proxy = NodeProxy::start(1, echo.port, faults.clone())
        .await
        .unwrap();
    let delay = Duration::from_millis(300);
    faults.set(2, 1, LinkFault::Delay(delay));
    let started = Instant::now();
    let o = call(proxy.port(), 2, ANSWER).await;
    assert!(is_answer(&o, 2), "{o:?}");
    assert!(started.elapsed() >= 2 * delay, "{:?}", started.elapsed());
    let started = Instant::now();
    assert!(is_answer(&call(proxy.port(), 3, ANSWER).await, 3));
    assert!(started.elapsed() < delay, "other links are not delayed");
}

#[tokio::test]
async fn a_lossy_link_closes_connections_with_its_probability() {
    let echo = Echo::start().await;
    let faults = Faults::new();
    let proxy = NodeProxy::start(1, echo.port, faults.clone())
        .await
        .unwrap();
    faults.set(2, 1, LinkFault::Loss(1.0));
    let o = call(proxy.port(), 2, ANSWER).await;
    assert!(matches!(o, Outcome::Closed), "{o:?}");
    faults.set(2, 1, LinkFault::Loss(0.0));
    assert!(is_answer(&call(proxy.port(), 2, ANSWER).await, 2));
}

#[tokio::test]
async fn a_dropped_proxy_closes_its_connections() {
    let echo = Echo::start().await;
    let faults = Faults::new();
    let proxy = NodeProxy::start(1, echo.port, faults.clone())
        .await
        .unwrap();
    let (mut open, mut held) = (connect(proxy.port()).await, connect(proxy.port()).await);
    assert!(is_answer(
        &send(&mut open, &request("/raft/append", 2, "{}"), ANSWER).await,
        2
    ));
    faults.cut(3, 1);
    let o = send(&mut held, &request("/raft/append", 3, "{}"), SWALLOWED).await;
    assert!(matches!(o, Outcome::TimedOut), "{o:?}");
    let port = proxy.port();
    drop(proxy);
    for s in [&mut open, &mut held] {
        let mut rest = Vec::new();
        let end = tokio::time::timeout(ANSWER, s.read_to_end(&mut rest)).await;
        assert!(end.is_ok(), "a connection outlived its proxy");
    }
    let gone = tokio::time::timeout(ANSWER, async {
        loop {
            if TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the proxy still listens");
}

#[test]
fn the_fault_table_partitions_isolates_and_describes() {
    let f = Faults::new();
    assert_eq!(f.describe(), "no faults");
    f.partition(&[vec![1, 2], vec![3]]);
    let cut: Vec<(u64, u64)> = f.links().into_iter().map(|(l, _)| l).collect();
    assert_eq!(cut, vec![(1, 3), (2, 3), (3, 1), (3, 2)]);
    f.heal_all();
    f.isolate(2, &[1, 2, 3]);
    let cut: Vec<(u64, u64)> = f.links().into_iter().map(|(l, _)| l).collect();
    assert_eq!(cut, vec![(1, 2), (2, 1), (2, 3), (3, 2)]);
    f.heal(2, 1);
    f.set(1, 3, LinkFault::Delay(Duration::from_millis(200)));
    f.set(3, 1, LinkFault::Loss(0.25));
    assert_eq!(
        f.describe(),
        "1→2 cut, 1→3 delayed 200ms, 2→3 cut, 3→1 lossy 25%, 3→2 cut"
    );
    assert!(format!("{f:?}").contains("1→2 cut"));
}

#[tokio::test]
async fn a_site_proxy_answers_garbage_refuses_and_cuts() {
    let echo = Echo::start().await;
    let proxy = SiteProxy::start(echo.port).await.unwrap();
    assert_eq!(proxy.mode(), SiteMode::Pass);
    assert!(is_answer(&call(proxy.port(), 0, ANSWER).await, 0));

    proxy.set_mode(SiteMode::Garbage);
    let mut s = connect(proxy.port()).await;
    for _ in 0..2 {
        match send(&mut s, &request("/v1/federation/verify", 0, "{}"), ANSWER).await {
            Outcome::Answer(200, body) => {
                assert!(
                    serde_json::from_str::<serde_json::Value>(&body).is_err(),
                    "{body}"
                )
            }
            o => panic!("garbage mode answers 200: {o:?}"),
        }
    }
    assert_eq!(echo.seen(), 1, "garbage mode forwards nothing");

    proxy.set_mode(SiteMode::Down);
    let started = Instant::now();
    let o = call(proxy.port(), 0, ANSWER).await;
    assert!(matches!(o, Outcome::Closed), "{o:?}");
    assert!(started.elapsed() < SWALLOWED);

    proxy.set_mode(SiteMode::Cut);
    let o = call(proxy.port(), 0, SWALLOWED).await;
    assert!(matches!(o, Outcome::TimedOut), "{o:?}");

    proxy.set_mode(SiteMode::Slow(Duration::from_millis(200)));
    let started = Instant::now();
    assert!(is_answer(&call(proxy.port(), 0, ANSWER).await, 0));
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(echo.seen(), 2);
}

#[tokio::test]
async fn a_site_proxy_captures_federation_requests_for_replay() {
    let echo = Echo::start().await;
    let proxy = SiteProxy::start(echo.port).await.unwrap();
    let verify = request("/v1/federation/verify", 0, "{\"token\":\"t\"}");
    let mut s = connect(proxy.port()).await;
    for bytes in [
        verify.clone(),
        request("/v1/sessions", 0, "{}"),
        request("/v1/federation/invalidate", 0, "{\"user\":\"u\"}"),
    ] {
        let o = send(&mut s, &bytes, ANSWER).await;
        assert!(matches!(o, Outcome::Answer(200, _)), "{o:?}");
    }
    let captured = proxy.captured();
    assert_eq!(captured.len(), 2, "only federation requests are kept");
    assert_eq!(captured[0], verify);

    let (status, body) = proxy.replay(&captured[0]).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, "/v1/federation/verify from=- body={\"token\":\"t\"}");
    assert_eq!(echo.seen(), 4);
    // The replay went straight to the upstream, not through the proxy.
    assert_eq!(proxy.captured().len(), 2);

    // Only the newest 16 are kept.
    for i in 0..20 {
        let o = send(
            &mut s,
            &request("/v1/federation/verify", 0, &i.to_string()),
            ANSWER,
        )
        .await;
        assert!(matches!(o, Outcome::Answer(200, _)), "{o:?}");
    }
    let captured = proxy.captured();
    assert_eq!(captured.len(), 16);
    assert!(captured[15].ends_with(b"\r\n\r\n19"));
}

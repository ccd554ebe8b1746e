//! The client's list calls against a fake node that serves the audit log in pages: the page
//! size it asks for stays within the node's bound (1000) whatever the caller's limit, it stops
//! at the caller's limit, follows every cursor when there is none, and refuses a node whose
//! cursors do not advance instead of looping or cutting the list short.

use std::sync::{Arc, Mutex};

use sessync_client::{AuditQuery, Client, ClientError};
use tokio::net::TcpListener;

mod fake_node;
use fake_node::{answer_json, read_request};

/// How the fake node pages.
#[derive(Clone, Copy)]
enum Log {
    /// `n` events, newest (seq `n`) first; a cursor is the last seq given. Refuses a `limit`
    /// over 1000 as the node does.
    Events(u64),
    /// Every page holds one event and the same `next_cursor`.
    Stuck,
}

struct Fake {
    url: String,
    /// The request target of each request, in order.
    targets: Arc<Mutex<Vec<String>>>,
}

fn query_param<'a>(target: &'a str, name: &str) -> Option<&'a str> {
    let (_, query) = target.split_once('?')?;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

fn event(seq: u64) -> serde_json::Value {
    serde_json::json!({
        "seq": seq, "at": "2026-01-01T00:00:00Z", "kind": "session_created", "detail": {}
    })
}

/// The status and body the fake answers `target` with.
fn answer(log: Log, target: &str) -> (u16, serde_json::Value) {
    let limit: u64 = query_param(target, "limit").map_or(100, |l| l.parse().unwrap());
    match log {
        Log::Stuck => (
            200,
            serde_json::json!({"events": [event(1)], "next_cursor": "c1"}),
        ),
        Log::Events(_) if !(1..=1000).contains(&limit) => (
            400,
            serde_json::json!({"error": {"code": "bad_request", "field": "limit",
                "message": "field `limit` must be a whole number from 1 to 1000"}}),
        ),
        Log::Events(n) => {
            let below = query_param(target, "cursor").map_or(n + 1, |c| c.parse().unwrap());
            let seqs: Vec<u64> = (1..below).rev().take(limit as usize).collect();
            let more = seqs.last().is_some_and(|&last| last > 1);
            let mut body = serde_json::json!({
                "events": seqs.iter().map(|&s| event(s)).collect::<Vec<_>>()
            });
            if more {
                body["next_cursor"] = seqs.last().unwrap().to_string().into();
            }
            (200, body)
        }
    }
}

async fn fake(log: Log) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let targets = Arc::new(Mutex::new(Vec::new()));
    let seen = targets.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let request = read_request(&mut sock).await;
                let target = request.split(' ').nth(1).unwrap_or("").to_owned();
                seen.lock().unwrap().push(target.clone());
                let (status, body) = answer(log, &target);
                answer_json(&mut sock, status, &body.to_string()).await;
            });
        }
    });
    Fake { url, targets }
}

fn limits(fake: &Fake) -> Vec<String> {
    fake.targets
        .lock()
        .unwrap()
        .iter()
        .map(|t| query_param(t, "limit").unwrap_or("-").to_owned())
        .collect()
}

#[tokio::test]
async fn a_limit_over_1000_is_fetched_in_pages_the_node_accepts() {
    let node = fake(Log::Events(2500)).await;
    let client = Client::new(vec![node.url.clone()], "admin").unwrap();
    let q = AuditQuery {
        limit: Some(1500),
        ..AuditQuery::default()
    };
    let events = client.audit(&q).await.unwrap();
    assert_eq!(events.len(), 1500);
    assert_eq!(events.first().map(|e| e.seq), Some(2500));
    assert_eq!(events.last().map(|e| e.seq), Some(1001));
    // The last page asks only for what is still wanted.
    assert_eq!(limits(&node), ["1000", "500"]);
}

#[tokio::test]
async fn no_limit_follows_every_cursor() {
    let node = fake(Log::Events(2500)).await;
    let client = Client::new(vec![node.url.clone()], "admin").unwrap();
    let events = client.audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(events.len(), 2500);
    assert!(events.windows(2).all(|w| w[0].seq == w[1].seq + 1));
    assert_eq!(limits(&node), ["1000", "1000", "1000"]);
    // A limit of 0 asks for nothing.
    let none = client
        .audit(&AuditQuery {
            limit: Some(0),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(node.targets.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_cursor_given_twice_is_an_error_not_a_loop_or_a_short_list() {
    let node = fake(Log::Stuck).await;
    let client = Client::new(vec![node.url.clone()], "admin").unwrap();
    let e = client.audit(&AuditQuery::default()).await.unwrap_err();
    assert!(
        matches!(&e, ClientError::Decode(m) if m.contains("c1")),
        "{e:?}"
    );
    assert_eq!(
        node.targets.lock().unwrap().len(),
        2,
        "stopped at the repeat"
    );
}

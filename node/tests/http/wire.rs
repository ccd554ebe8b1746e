//! Raw-socket helpers for the tests that speak HTTP/1.1 by hand to see what a node does with
//! a slow, malformed or hostile client: connect (from a chosen loopback address), send a head,
//! read until the node answers or closes.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::TestNode;

/// The node's address (`127.0.0.1:port`).
pub(crate) fn addr(node: &TestNode) -> String {
    node.url.rsplit("//").next().unwrap().to_owned()
}

/// Reads from `s` until the server closes it or `within` passes; what was read, and whether it
/// closed.
pub(crate) async fn read_until_closed(s: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Like [`read_until_closed`], but returns as soon as a whole answer's headers are in.
pub(crate) async fn read_until_closed_or_answered(
    s: &mut TcpStream,
    within: Duration,
) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if got.windows(4).any(|w| w == b"\r\n\r\n") {
            // Give the (small) body a moment to follow.
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await
            {
                got.extend_from_slice(&buf[..n]);
            }
            return (String::from_utf8_lossy(&got).into_owned(), false);
        }
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// The status line's code of what `s` answers within `within`, or 0 if nothing came.
pub(crate) async fn status_within(s: &mut TcpStream, within: Duration) -> (u16, String) {
    let (answer, _) = read_until_closed_or_answered(s, within).await;
    let code = answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, answer)
}

/// Sends `head` (a request line and headers, ending in an empty line) and, if given, the start
/// of a body; the open connection.
pub(crate) async fn send_head(node: &TestNode, head: &str, body_start: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr(node)).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body_start).await.unwrap();
    s
}

/// Opens a connection to `node` from the loopback address `from` (any of 127.0.0.0/8).
pub(crate) async fn connect_from(node: &TestNode, from: [u8; 4]) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::from((from, 0))).unwrap();
    socket.connect(addr(node).parse().unwrap()).await.unwrap()
}

/// Sends a kept-alive `GET /healthz` on `s` and reads its answer's first bytes.
pub(crate) async fn healthz_on(s: &mut TcpStream) -> String {
    if s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .is_err()
    {
        return String::new();
    }
    let mut buf = [0u8; 512];
    match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
        Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        _ => String::new(),
    }
}

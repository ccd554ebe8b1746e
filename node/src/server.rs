//! The listener: accepts TCP connections (wrapped in TLS when `[tls]` is set) and serves the
//! HTTP router on each, so that no slow, idle or numerous client can tie the node up.
//!
//! - At most `max_connections` connections are open at once; the accept loop waits for one to
//!   close before it takes the next (the rest wait in the kernel's backlog). At most
//!   `max_connections_per_source` of them come from one source (an IPv4 address, an IPv6 /64):
//!   a connection past that is closed as it arrives, so one caller cannot hold them all.
//! - A TLS handshake and a request's headers must arrive within `header_timeout`; a kept-alive
//!   connection waiting for its next request is closed after the same time (hyper's header
//!   timer runs from the moment it starts reading a request).
//! - A connection on which nothing is read or written for `idle_timeout` is closed, whatever
//!   state it is in (a client that stops reading an answer, say).
//! - A request's headers are read into a buffer of at most [`MAX_HEADER_BYTES`]; longer
//!   headers are answered 431 and the connection closed.
//! - Body timeouts and the bounds on requests in flight are layers of the router
//!   (`api::router`), where the answer can be a JSON error.
//! - With TLS, whether the caller showed a verified client certificate is put in each of the
//!   connection's requests ([`ClientCert`]), for the routes that require one.
//!
//! On `stop`, the loop stops accepting, every connection is told to finish its request in
//! progress and close, and [`serve`] waits for them for at most [`crate::DRAIN`]; event streams
//! end on the same token. Every connection runs as a task of one `JoinSet`: those still open at
//! the deadline are aborted (their sockets closed, their requests dropped), so nothing of the
//! listener outlives [`serve`].

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use sessync_config::Limits;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::node::DRAIN;
use crate::tls::{Acceptor, ClientCert};

/// hyper's read buffer per connection, which bounds a request's headers (hyper's own default is
/// about 400 KiB). Headers are a few hundred bytes; longer ones are answered 431.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;

/// How often at most an accept error is logged (a stranger must not be able to write a log line
/// per connection).
const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(60);

/// What the listener bounds, from `[limits]`.
#[derive(Clone, Copy)]
pub(crate) struct ConnLimits {
    pub(crate) header_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) max_connections_per_source: usize,
}

impl From<&Limits> for ConnLimits {
    fn from(l: &Limits) -> Self {
        ConnLimits {
            header_timeout: l.header_timeout,
            idle_timeout: l.idle_timeout,
            max_connections: l.max_connections,
            max_connections_per_source: l.max_connections_per_source,
        }
    }
}

/// Serves `router` on `listener` until `stop`, then drains for at most [`DRAIN`] and aborts
/// the connections still open.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Acceptor>,
    limits: ConnLimits,
    stop: CancellationToken,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let sources = Sources::new(limits.max_connections_per_source);
    let graceful = GracefulShutdown::new();
    let mut conns = JoinSet::new();
    let mut accept_errors = AcceptErrors::default();
    loop {
        // Finished connections leave the set, so it holds only open ones.
        while conns.try_join_next().is_some() {}
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = stop.cancelled() => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_errors.failed(&e);
                    if !is_connection_error(&e) {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        // Past its share, a source's connection is closed at once (nothing read, nothing
        // logged).
        let Some(share) = sources.take(peer.ip()) else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        conns.spawn(async move {
            connection(tcp, peer, router, tls, limits, watcher).await;
            drop(share);
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!(open = conns.len(), "stopping: draining open connections");
    // Connections in a request finish it; those still in a handshake or between requests close.
    let drained = tokio::time::timeout(DRAIN, async {
        graceful.shutdown().await;
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            after = ?DRAIN,
            open = conns.len(),
            "connections still open after the drain; closing them"
        );
        conns.shutdown().await;
    }
    Ok(())
}

/// Open connections by source, each source at most its share. Holds an entry only per source
/// with a connection open, so it is bounded by `max_connections`.
#[derive(Clone)]
struct Sources {
    open: Arc<parking_lot::Mutex<HashMap<IpAddr, usize>>>,
    share: usize,
}

/// One connection's place in its source's share; given back when dropped.
struct Share {
    sources: Sources,
    source: IpAddr,
}

impl Sources {
    fn new(share: usize) -> Self {
        Sources {
            open: Arc::default(),
            share,
        }
    }

    /// A place for a connection from `ip`, if its source has one left.
    fn take(&self, ip: IpAddr) -> Option<Share> {
        let source = crate::source::source_of(ip);
        let mut open = self.open.lock();
        let n = open.entry(source).or_insert(0);
        if *n >= self.share {
            return None;
        }
        *n += 1;
        Some(Share {
            sources: self.clone(),
            source,
        })
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut open = self.sources.open.lock();
        if let Some(n) = open.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.source);
            }
        }
    }
}

/// Errors of one incoming connection (reset before it was accepted, say): nothing is wrong
/// with the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// Accept errors, logged at most once per [`ACCEPT_ERROR_LOG_EVERY`] with how many there were.
#[derive(Default)]
struct AcceptErrors {
    logged_at: Option<Instant>,
    since_logged: u64,
}

impl AcceptErrors {
    fn failed(&mut self, e: &io::Error) {
        self.since_logged += 1;
        if self
            .logged_at
            .is_some_and(|at| at.elapsed() < ACCEPT_ERROR_LOG_EVERY)
        {
            return;
        }
        tracing::warn!(error = %e, count = self.since_logged, "accept failed");
        self.logged_at = Some(Instant::now());
        self.since_logged = 0;
    }
}

/// One connection: the TLS handshake (bounded by `header_timeout`), then HTTP/1.1 until the
/// client closes, a timeout fires, or the node drains.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    tls: Option<Acceptor>,
    limits: ConnLimits,
    watcher: Watcher,
) {
    let activity = Activity::new();
    let io = Watched {
        inner: tcp,
        activity: activity.clone(),
    };
    match tls {
        None => {
            http(
                io,
                peer,
                ClientCert::NotAsked,
                router,
                limits,
                watcher,
                activity,
            )
            .await
        }
        Some(acceptor) => {
            // A failed or slow handshake is the caller's problem, not the node's: no log line
            // per attempt, the connection just closes.
            let handshake = tokio::time::timeout(limits.header_timeout, acceptor.inner.accept(io));
            if let Ok(Ok(stream)) = handshake.await {
                // rustls has verified a certificate that was shown, or failed the handshake.
                let cert = if !acceptor.asks_client_cert {
                    ClientCert::NotAsked
                } else if stream.get_ref().1.peer_certificates().is_some() {
                    ClientCert::Verified
                } else {
                    ClientCert::Missing
                };
                http(stream, peer, cert, router, limits, watcher, activity).await;
            }
        }
    }
}

async fn http<IO>(
    io: IO,
    peer: SocketAddr,
    cert: ClientCert,
    router: Router,
    limits: ConnLimits,
    watcher: Watcher,
    activity: Activity,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Handlers see the caller's address as axum's `ConnectInfo`, and what its certificate
    // proved as `ClientCert`.
    let service = service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(cert);
        router.clone().oneshot(req)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        .serve_connection(TokioIo::new(io), service);
    let conn = watcher.watch(conn);
    tokio::select! {
        _ = conn => {}
        () = activity.idle_for(limits.idle_timeout) => {}
    }
}

/// When a connection last read or wrote a byte, shared between its IO and its watchdog.
#[derive(Clone)]
struct Activity {
    since: Instant,
    /// Milliseconds after `since`.
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            since: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let ms = self.since.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.since + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    /// Completes once nothing has been read or written for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let due = self.last() + idle;
            if Instant::now() >= due {
                return;
            }
            tokio::time::sleep_until(due).await;
        }
    }
}

/// A stream that records its activity.
struct Watched<S> {
    inner: S,
    activity: Activity,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

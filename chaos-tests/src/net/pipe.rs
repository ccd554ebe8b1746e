//! The byte pump behind both proxies: one accepted connection piped to its upstream port under
//! a rule (pass, delay, blackhole, close, lossy) that is looked up again for every chunk, and
//! whenever the rule's owner signals a change, so open connections feel a new fault at once.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What a connection's rule says about its bytes right now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Verdict {
    /// Pass them on.
    Pass,
    /// Pass each chunk on after this long.
    Delay(Duration),
    /// Pass nothing and hold the connection open (a blackhole).
    Hole,
    /// Close the connection.
    Close,
    /// Close the connection with this probability, per connection and per chunk.
    Loss(f64),
}

/// The rule of one connection, asked per chunk.
pub(crate) type Rule = Arc<dyn Fn() -> Verdict + Send + Sync>;
/// Sees every chunk the client sent that was passed upstream.
pub(crate) type Tap = Box<dyn FnMut(&[u8]) + Send>;

/// How long a proxy waits for a client's first request head, or to reach its upstream.
pub(crate) const SETUP_TIMEOUT: Duration = Duration::from_secs(5);
const CHUNK: usize = 16 * 1024;

/// The connection must close (a fault, or a socket error).
struct Closed;

/// Spawns `fut` so that it ends, dropping its sockets, as soon as `stop` is cancelled.
pub(crate) fn spawn_until(
    stop: &CancellationToken,
    fut: impl Future<Output = ()> + Send + 'static,
) {
    let stop = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = stop.cancelled() => {}
            () = fut => {}
        }
    });
}

/// True with probability `p`.
fn coin(p: f64) -> bool {
    p > 0.0 && rand::random::<f64>() < p
}

/// Pipes `client`, whose first bytes `head` were already read, to `127.0.0.1:upstream` under
/// `rule`, until either side closes or the rule closes it. `changes` wakes it when the rule
/// may have changed; `tap` sees what passes upstream.
pub(crate) async fn pipe<T>(
    client: TcpStream,
    head: Vec<u8>,
    upstream: u16,
    rule: Rule,
    mut changes: watch::Receiver<T>,
    tap: Option<Tap>,
) {
    match rule() {
        Verdict::Close => return,
        Verdict::Loss(p) if coin(p) => return,
        // No need to reach the upstream: nothing would pass.
        Verdict::Hole => return hold(client, &rule, changes).await,
        _ => {}
    }
    let connect = TcpStream::connect(("127.0.0.1", upstream));
    let Ok(Ok(server)) = tokio::time::timeout(SETUP_TIMEOUT, connect).await else {
        return;
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    // Set once a chunk was swallowed: the stream lost bytes, so it is never resumed.
    let tainted = AtomicBool::new(false);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = pump(cr, sw, head, &rule, &tainted, tap);
    let down = pump(sr, cw, Vec::new(), &rule, &tainted, None);
    tokio::select! {
        _ = async { tokio::try_join!(up, down) } => {}
        () = watch_rule(&rule, &mut changes, &tainted) => {}
    }
}

/// Holds a black-holed connection open, swallowing what the client sends, until the client
/// closes it or the rule stops saying [`Verdict::Hole`] (then it is closed).
async fn hold<T>(client: TcpStream, rule: &Rule, mut changes: watch::Receiver<T>) {
    let (mut r, _w) = client.into_split();
    let mut buf = vec![0u8; CHUNK];
    loop {
        tokio::select! {
            read = r.read(&mut buf) => {
                if !matches!(read, Ok(n) if n > 0) {
                    return;
                }
            }
            changed = changes.changed() => {
                if changed.is_err() || rule() != Verdict::Hole {
                    return;
                }
            }
        }
    }
}

/// Returns when the connection must close because the rule changed: to [`Verdict::Close`],
/// or away from [`Verdict::Hole`] after bytes were swallowed.
async fn watch_rule<T>(rule: &Rule, changes: &mut watch::Receiver<T>, tainted: &AtomicBool) {
    loop {
        if changes.changed().await.is_err() {
            return;
        }
        match rule() {
            Verdict::Close => return,
            Verdict::Hole => {}
            _ if tainted.load(Ordering::SeqCst) => return,
            _ => {}
        }
    }
}

/// One direction: `head` first, then every chunk read from `from`, each judged by the rule.
/// At the end of `from`, shuts `to` down for writing (a half close) and returns.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    head: Vec<u8>,
    rule: &Rule,
    tainted: &AtomicBool,
    mut tap: Option<Tap>,
) -> Result<(), Closed> {
    if !head.is_empty() {
        pass(&head, &mut to, rule, tainted, &mut tap).await?;
    }
    let mut buf = vec![0u8; CHUNK];
    loop {
        match from.read(&mut buf).await {
            Ok(0) => {
                let _ = to.shutdown().await;
                return Ok(());
            }
            Ok(n) => pass(&buf[..n], &mut to, rule, tainted, &mut tap).await?,
            Err(_) => return Err(Closed),
        }
    }
}

/// Passes one chunk on, or delays, swallows or closes as the rule says.
async fn pass(
    chunk: &[u8],
    to: &mut OwnedWriteHalf,
    rule: &Rule,
    tainted: &AtomicBool,
    tap: &mut Option<Tap>,
) -> Result<(), Closed> {
    let mut verdict = rule();
    if let Verdict::Delay(d) = verdict {
        tokio::time::sleep(d).await;
        // The rule may have turned meanwhile.
        verdict = rule();
    }
    match verdict {
        Verdict::Pass | Verdict::Delay(_) => {}
        Verdict::Loss(p) if coin(p) => return Err(Closed),
        Verdict::Loss(_) => {}
        Verdict::Close => return Err(Closed),
        Verdict::Hole => {
            tainted.store(true, Ordering::SeqCst);
            return Ok(());
        }
    }
    if tainted.load(Ordering::SeqCst) {
        return Err(Closed);
    }
    if let Some(tap) = tap {
        tap(chunk);
    }
    to.write_all(chunk).await.map_err(|_| Closed)
}

//! [`SiteProxy`]: a loopback proxy in front of one node of a peer site, for federation faults:
//! the peer can be made down, cut off, slow, or answer garbage, at any time. It also keeps the
//! last federation requests that passed, so a test can replay one verbatim.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::http::{self, Requests};
use super::pipe::{pipe, spawn_until, Rule, Tap, Verdict};

/// How many captured requests are kept (the newest).
const CAPTURE_KEEP: usize = 16;
/// The path prefix of the requests captured.
const FEDERATION_PREFIX: &str = "/v1/federation/";
/// The deadline of a [`SiteProxy::replay`].
const REPLAY_TIMEOUT: Duration = Duration::from_secs(10);
/// The body of every answer in [`SiteMode::Garbage`].
const GARBAGE_BODY: &str = "<html>\u{1}this is {not json\"";

/// How the peer behind a [`SiteProxy`] looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SiteMode {
    /// Everything passes.
    Pass,
    /// Connections are closed at once (the peer is down).
    Down,
    /// Connections are accepted but nothing passes, either way (a blackhole): callers time
    /// out. Connections cut while open are closed when the mode changes again.
    Cut,
    /// Every chunk, both ways, is held this long.
    Slow(Duration),
    /// Every request is answered `200 OK` with a `Content-Type: application/json` body that is
    /// not JSON, and is never forwarded.
    Garbage,
}

/// A running proxy in front of one upstream port; stops, closing its connections, when
/// dropped. A mode change applies to open connections at once (a connection piped in another
/// mode closes when the mode becomes `Down` or `Garbage`).
pub struct SiteProxy {
    port: u16,
    upstream: u16,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

struct Shared {
    mode: watch::Sender<SiteMode>,
    captured: Mutex<VecDeque<Vec<u8>>>,
}

impl Shared {
    fn capture(&self, request: Vec<u8>) {
        let mut c = self.captured.lock().unwrap_or_else(|p| p.into_inner());
        if c.len() == CAPTURE_KEEP {
            c.pop_front();
        }
        c.push_back(request);
    }
}

impl SiteProxy {
    /// Listens on a free loopback port and forwards to `127.0.0.1:upstream_port`, in
    /// [`SiteMode::Pass`].
    pub async fn start(upstream_port: u16) -> anyhow::Result<SiteProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("the site proxy cannot bind a loopback port")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            mode: watch::Sender::new(SiteMode::Pass),
            captured: Mutex::new(VecDeque::new()),
        });
        let stop = CancellationToken::new();
        let (conns, sh) = (stop.clone(), shared.clone());
        spawn_until(&stop, async move {
            loop {
                match listener.accept().await {
                    Ok((client, _)) => {
                        spawn_until(&conns, serve(client, upstream_port, sh.clone()));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        Ok(SiteProxy {
            port,
            upstream: upstream_port,
            shared,
            stop,
        })
    }

    /// `http://127.0.0.1:<proxy port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The proxy's own port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Switches the mode; open connections feel it at once.
    pub fn set_mode(&self, mode: SiteMode) {
        self.shared.mode.send_replace(mode);
    }

    /// The current mode.
    pub fn mode(&self) -> SiteMode {
        *self.shared.mode.borrow()
    }

    /// The raw bytes (head and body) of the last 16 whole requests to `/v1/federation/...`
    /// that were passed upstream, oldest first.
    pub fn captured(&self) -> Vec<Vec<u8>> {
        let c = self
            .shared
            .captured
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        c.iter().cloned().collect()
    }

    /// Sends `request` (e.g. one of [`SiteProxy::captured`]) again, verbatim, straight to the
    /// upstream on a fresh connection, and returns the answer's status and body (10 s at most).
    pub async fn replay(&self, request: &[u8]) -> anyhow::Result<(u16, String)> {
        let upstream = self.upstream;
        let once = async move {
            let mut s = TcpStream::connect(("127.0.0.1", upstream))
                .await
                .with_context(|| format!("cannot reach 127.0.0.1:{upstream}"))?;
            s.write_all(request).await?;
            let (status, body) = http::read_response(&mut s).await?;
            anyhow::Ok((status, String::from_utf8_lossy(&body).into_owned()))
        };
        tokio::time::timeout(REPLAY_TIMEOUT, once)
            .await
            .with_context(|| format!("no answer to the replay within {REPLAY_TIMEOUT:?}"))?
    }
}

impl Drop for SiteProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// How a mode treats a piped connection's bytes.
fn verdict(mode: SiteMode) -> Verdict {
    match mode {
        SiteMode::Pass => Verdict::Pass,
        SiteMode::Slow(d) if d.is_zero() => Verdict::Pass,
        SiteMode::Slow(d) => Verdict::Delay(d),
        SiteMode::Cut => Verdict::Hole,
        // A piped connection cannot start answering garbage halfway: it closes.
        SiteMode::Down | SiteMode::Garbage => Verdict::Close,
    }
}

/// One connection: garbage answers, or piped upstream with its federation requests captured.
async fn serve(client: TcpStream, upstream: u16, shared: Arc<Shared>) {
    let changes = shared.mode.subscribe();
    if *changes.borrow() == SiteMode::Garbage {
        return garbage(client, changes).await;
    }
    let sh = shared.clone();
    let rule: Rule = Arc::new(move || verdict(*sh.mode.borrow()));
    let mut requests = Requests::default();
    let tap: Tap = Box::new(move |chunk| {
        for request in requests.push(chunk) {
            if http::request_path(&request).is_some_and(|p| p.starts_with(FEDERATION_PREFIX)) {
                shared.capture(request);
            }
        }
    });
    pipe(client, Vec::new(), upstream, rule, changes, Some(tap)).await;
}

/// Answers every whole request with garbage until the client leaves or the mode changes.
async fn garbage(mut client: TcpStream, mut changes: watch::Receiver<SiteMode>) {
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
        GARBAGE_BODY.len(),
        GARBAGE_BODY
    );
    let mut requests = Requests::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = client.read(&mut buf) => {
                let n = match read {
                    Ok(n) if n > 0 => n,
                    _ => return,
                };
                let whole = requests.push(&buf[..n]);
                if requests.lost() {
                    return;
                }
                for _ in whole {
                    if client.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            }
            changed = changes.changed() => {
                if changed.is_err() || *changes.borrow() != SiteMode::Garbage {
                    return;
                }
            }
        }
    }
}

//! [`NodeProxy`]: a loopback proxy in front of one node that applies the fault of each
//! connection's link (sending node → this node), as the shared [`Faults`] table says.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::faults::{Faults, LinkFault};
use super::http;
use super::pipe::{pipe, spawn_until, Rule, Verdict, SETUP_TIMEOUT};

/// A running proxy in front of node `id`; stops, closing its connections, when dropped.
///
/// Each connection's sender is read from its first request's head (`x-sessync-from`, else
/// `x-sessync-forwarded-by`; 0 when neither names a node), bounded to 64 KiB and 5 s. A
/// connection always comes from one process, so the first request names it for the rest.
pub struct NodeProxy {
    id: u64,
    port: u16,
    stop: CancellationToken,
}

impl NodeProxy {
    /// Listens on a free loopback port and forwards to node `id` at `127.0.0.1:upstream_port`,
    /// under the faults of `faults`.
    pub async fn start(id: u64, upstream_port: u16, faults: Faults) -> anyhow::Result<NodeProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("the node proxy cannot bind a loopback port")?;
        let port = listener.local_addr()?.port();
        let stop = CancellationToken::new();
        let conns = stop.clone();
        spawn_until(&stop, async move {
            loop {
                match listener.accept().await {
                    Ok((client, _)) => {
                        spawn_until(&conns, serve(client, id, upstream_port, faults.clone()));
                    }
                    // Out of file descriptors, say: try again shortly.
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        Ok(NodeProxy { id, port, stop })
    }

    /// The node this proxy stands in front of.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The proxy's own port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<proxy port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for NodeProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// How a link's fault treats a connection's bytes.
fn verdict(fault: Option<LinkFault>) -> Verdict {
    match fault {
        None => Verdict::Pass,
        Some(LinkFault::Cut) => Verdict::Hole,
        Some(LinkFault::Refuse) => Verdict::Close,
        Some(LinkFault::Delay(d)) => Verdict::Delay(d),
        Some(LinkFault::Loss(p)) => Verdict::Loss(p),
    }
}

/// One connection: finds its sender, then pipes it under its link's fault.
async fn serve(mut client: TcpStream, to: u64, upstream_port: u16, faults: Faults) {
    let head = match tokio::time::timeout(SETUP_TIMEOUT, http::read_head(&mut client)).await {
        Ok(Ok(head)) if !head.is_empty() => head,
        _ => return,
    };
    let from = http::sender(&head);
    // Subscribed before the rule is first asked, so no change is missed.
    let changes = faults.subscribe();
    let rule: Rule = Arc::new(move || verdict(faults.get(from, to)));
    pipe(client, head, upstream_port, rule, changes, None).await;
}

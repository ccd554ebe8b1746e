//! `sessyncctl cluster transfer-leader [--to N]` and `sessyncctl node drain [--node URL]`:
//! leadership hand-over for a rolling restart or upgrade, each printed as one line of text or
//! one JSON object.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use sessync_client::Client;
use sessync_proto::api::{DrainResponse, TransferLeaderResponse};

use super::membership::parse_url;
use super::output::{json_line, OutputFormat};

/// The least deadline of a hand-over: the node holds writes for up to two election timeouts
/// and may take five in all.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(30);

/// `sessyncctl node` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum NodeCommand {
    /// Before stopping a node: it hands leadership over if it leads, stops campaigning and
    /// answers /readyz 503 (load balancers move away) until it restarts.
    Drain {
        /// The node to drain (its base URL); the first of --endpoints if not given.
        #[arg(long, value_parser = parse_url)]
        node: Option<String>,
    },
}

/// `cluster transfer-leader`: the leader hands over to `to`, or to the best voter.
pub(super) async fn transfer_leader(
    client: &Client,
    to: Option<u64>,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let slow = client
        .clone()
        .with_timeout(client.timeout().max(HANDOVER_TIMEOUT));
    let t = slow
        .transfer_leader(to)
        .await
        .context("cluster transfer-leader")?;
    match format {
        OutputFormat::Json => json_line(out, &t)?,
        OutputFormat::Table => writeln!(out, "{}", transferred(&t))?,
    }
    Ok(())
}

fn transferred(t: &TransferLeaderResponse) -> String {
    if t.leader == t.previous_leader {
        format!("node {} leads already", t.leader)
    } else {
        format!(
            "leadership handed over from node {} to node {} in {} ms",
            t.previous_leader, t.leader, t.took_ms
        )
    }
}

impl NodeCommand {
    /// The node the command is for, when given (the client is then made for it alone).
    pub(super) fn node(&self) -> Option<&str> {
        match self {
            NodeCommand::Drain { node } => node.as_deref(),
        }
    }
}

/// Runs one node subcommand on the client's first endpoint, printing to `out`.
pub(super) async fn run(
    client: &Client,
    cmd: NodeCommand,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match cmd {
        NodeCommand::Drain { .. } => {
            // Only the one node: a drain is not forwarded, and must not fail over.
            let slow = client
                .pinned(0)
                .with_timeout(client.timeout().max(HANDOVER_TIMEOUT));
            let d = slow.drain().await.context("node drain")?;
            match format {
                OutputFormat::Json => json_line(out, &d)?,
                OutputFormat::Table => writeln!(out, "{}", drained(&d))?,
            }
        }
    }
    Ok(())
}

fn drained(d: &DrainResponse) -> String {
    let handed = match &d.transfer {
        Some(t) => format!("; {}", transferred(t)),
        None => "; it did not lead".to_owned(),
    };
    format!(
        "node {} is draining: /readyz answers 503 until it restarts{handed}",
        d.node_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renderings() {
        let t = TransferLeaderResponse {
            leader: 2,
            previous_leader: 1,
            took_ms: 31,
        };
        assert_eq!(
            transferred(&t),
            "leadership handed over from node 1 to node 2 in 31 ms"
        );
        let d = DrainResponse {
            node_id: 1,
            draining: true,
            transfer: Some(t),
        };
        assert_eq!(
            drained(&d),
            "node 1 is draining: /readyz answers 503 until it restarts; leadership handed over \
             from node 1 to node 2 in 31 ms"
        );
        let d = DrainResponse {
            node_id: 3,
            draining: true,
            transfer: None,
        };
        assert!(drained(&d).ends_with("it did not lead"));
    }
}

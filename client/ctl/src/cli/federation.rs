//! `sessyncctl federation status`: each peer site's queue of undelivered verify/invalidate
//! operations and whether the delivering leader reaches it (an admin key).

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;
use sessync_client::Client;
use sessync_proto::federation::FederationStatus;

use super::output::{json_line, opt_cell, OutputFormat, Table};

/// `sessyncctl federation` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum FederationCommand {
    /// Per peer: reachable, queued operations (and the limit), oldest queued, last delivery,
    /// failures in a row, next attempt, last error.
    Status,
}

/// Runs one federation subcommand, printing to `out`.
pub(super) async fn run(
    client: &Client,
    cmd: FederationCommand,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match cmd {
        FederationCommand::Status => {
            let status = client
                .federation_status()
                .await
                .context("federation status")?;
            if format == OutputFormat::Json {
                json_line(out, &status)?;
            } else {
                out.write_all(render_status(&status).as_bytes())?;
            }
        }
    }
    Ok(())
}

fn render_status(s: &FederationStatus) -> String {
    let mut t = Table::new([
        "PEER",
        "REACHABLE",
        "QUEUED",
        "OLDEST QUEUED",
        "LAST DELIVERED",
        "FAILURES",
        "NEXT TRY",
        "LAST ERROR",
    ]);
    for p in &s.peers {
        let reachable = match p.reachable {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        t.row([
            p.site.to_string(),
            reachable.to_owned(),
            format!("{}/{}", p.queued, p.outbox_limit),
            opt_cell(p.oldest_queued_at.map(|t| t.to_rfc3339())),
            opt_cell(p.last_delivered_at.map(|t| t.to_rfc3339())),
            p.consecutive_failures.to_string(),
            opt_cell(p.next_attempt_in_ms.map(|ms| format!("{ms} ms"))),
            opt_cell(p.last_error.clone()),
        ]);
    }
    let mut text = format!("site {} (as seen by node {})\n", s.site, s.node_id);
    if s.peers.is_empty() {
        text.push_str("no peer sites configured ([[federation.peers]])\n");
    } else {
        text.push_str(&t.render());
    }
    text
}

#[cfg(test)]
mod tests {
    use sessync_proto::federation::PeerStatus;
    use sessync_proto::{SiteName, Timestamp};

    use super::*;

    #[test]
    fn status_table() {
        let s = FederationStatus {
            site: SiteName::parse_field("site-a", "site").unwrap(),
            node_id: 2,
            peers: vec![PeerStatus {
                site: SiteName::parse_field("site-b", "site").unwrap(),
                urls: vec!["http://127.0.0.1:7201".into()],
                reachable: Some(false),
                queued: 3,
                outbox_limit: 10_000,
                oldest_queued_at: Some(Timestamp(1_700_000_000_000)),
                last_delivered_at: None,
                last_error: Some("http://127.0.0.1:7201: cannot connect".into()),
                consecutive_failures: 4,
                next_attempt_in_ms: Some(1200),
            }],
        };
        let text = render_status(&s);
        assert!(text.starts_with("site site-a (as seen by node 2)\nPEER    REACHABLE  QUEUED"));
        assert!(text.contains("site-b  no         3/10000  2023-11-14T22:13:20.000Z  -"));
        assert!(text.contains("1200 ms"));
    }
}

//! `sessyncctl audit list` and `audit tail [--follow]`: the replicated audit log, filtered by
//! user, kind and time (an admin key). `tail --follow` polls for new events until interrupted.

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;
use sessync_client::{AuditQuery, Client};
use sessync_proto::api::AuditEvent;
use sessync_proto::{Timestamp, UserId};

use super::output::{json_line, opt_cell, OutputFormat, Table};
use super::sessions::parse_user;

/// `sessyncctl audit` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Audit events, newest first.
    List {
        /// Only events about this user.
        #[arg(long, value_parser = parse_user)]
        user: Option<UserId>,
        /// Only events of this kind (`session_created`, `session_ended`, `verify`, ...).
        #[arg(long)]
        kind: Option<String>,
        /// Only events at or after this time (RFC 3339, e.g. `2026-01-02T03:04:05Z`).
        #[arg(long, value_parser = parse_since)]
        since: Option<Timestamp>,
        /// At most this many events (any number: they are fetched 1000 at a time).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// The latest events, oldest first; with --follow, then every new one as it is recorded.
    Tail {
        /// Only events about this user.
        #[arg(long, value_parser = parse_user)]
        user: Option<UserId>,
        /// Only events of this kind.
        #[arg(long)]
        kind: Option<String>,
        /// How many of the latest events to show first.
        #[arg(long, short = 'n', default_value_t = 10)]
        lines: u32,
        /// Keep polling for new events until interrupted.
        #[arg(long, short = 'f')]
        follow: bool,
        /// How often to poll with --follow.
        #[arg(long, default_value = "1s", value_parser = parse_interval)]
        interval: std::time::Duration,
    },
}

fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration: {e}"))?;
    if d < std::time::Duration::from_millis(100) {
        return Err("the interval must be at least 100ms".to_owned());
    }
    Ok(d)
}

fn parse_since(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(s).map_err(|e| format!("`{s}` is not an RFC 3339 time: {e}"))
}

/// Runs one audit subcommand, printing to `out`.
pub(super) async fn run(
    client: &Client,
    cmd: AuditCommand,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::List {
            user,
            kind,
            since,
            limit,
        } => {
            let query = AuditQuery {
                user_id: user,
                kind,
                since,
                limit,
            };
            let events = client.audit(&query).await.context("audit list")?;
            print_events(&events, format, true, out)?;
        }
        AuditCommand::Tail {
            user,
            kind,
            lines,
            follow,
            interval,
        } => {
            let mut query = AuditQuery {
                user_id: user,
                kind,
                since: None,
                limit: Some(lines.max(1)),
            };
            let mut events = client.audit(&query).await.context("audit tail")?;
            events.reverse();
            print_events(&events, format, true, out)?;
            let mut last = events.last().map(|e| (e.seq, e.at));
            if !follow {
                return Ok(());
            }
            loop {
                tokio::time::sleep(interval).await;
                // Every event since the last one shown, however many pages they take.
                query.since = last.map(|(_, at)| at);
                query.limit = None;
                let mut fresh = client.audit(&query).await.context("audit tail")?;
                fresh.retain(|e| last.is_none_or(|(seq, _)| e.seq > seq));
                fresh.reverse();
                if let Some(e) = fresh.last() {
                    last = Some((e.seq, e.at));
                }
                // Only the first batch carries the table header.
                print_events(&fresh, format, false, out)?;
            }
        }
    }
    Ok(())
}

/// Prints events as JSON lines or as table rows (with the header if `header`), then flushes.
fn print_events(
    events: &[AuditEvent],
    format: OutputFormat,
    header: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if format == OutputFormat::Json {
        for e in events {
            json_line(out, e)?;
        }
    } else if header || !events.is_empty() {
        let table = render_events(events);
        let body = if header {
            table.as_str()
        } else {
            table.split_once('\n').map_or("", |(_, rows)| rows)
        };
        out.write_all(body.as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

/// The audit table; DETAIL is the event's detail object as compact JSON.
fn render_events(events: &[AuditEvent]) -> String {
    let mut t = Table::new(["SEQ", "AT", "KIND", "USER", "SESSION", "DETAIL"]);
    for e in events {
        t.row([
            e.seq.to_string(),
            e.at.to_rfc3339(),
            e.kind.clone(),
            opt_cell(e.user_id.as_ref()),
            opt_cell(e.session_id.as_ref()),
            e.detail.to_string(),
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_parsing() {
        assert_eq!(
            parse_since("2023-11-14T22:13:20.123Z").unwrap(),
            Timestamp(1_700_000_000_123)
        );
        assert!(parse_since("yesterday").is_err());
    }

    #[test]
    fn events_table() {
        let events = vec![AuditEvent {
            seq: 7,
            at: Timestamp(1_700_000_000_000),
            kind: "verify".into(),
            user_id: Some(parse_user("bob").unwrap()),
            session_id: None,
            detail: serde_json::json!({"ended": 1}),
        }];
        assert_eq!(
            render_events(&events),
            "SEQ  AT                        KIND    USER  SESSION  DETAIL\n\
             7    2023-11-14T22:13:20.000Z  verify  bob   -        {\"ended\":1}\n"
        );
    }
}

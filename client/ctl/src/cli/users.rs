//! `sessyncctl users active`: users holding active sessions and how long each has been idle
//! (an admin key).

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;
use sessync_client::Client;
use sessync_proto::api::ActiveUser;

use super::output::{json_line, OutputFormat, Table};

/// `sessyncctl users` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum UsersCommand {
    /// Users with active sessions: how many, when last seen and how long idle.
    Active,
}

/// Runs one users subcommand, printing to `out`.
pub(super) async fn run(
    client: &Client,
    cmd: UsersCommand,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match cmd {
        UsersCommand::Active => {
            let users = client.active_users().await.context("users active")?;
            if format == OutputFormat::Json {
                for u in &users {
                    json_line(out, u)?;
                }
            } else {
                out.write_all(render_active(&users).as_bytes())?;
            }
        }
    }
    Ok(())
}

/// The `users active` table; IDLE is the server's own wording (`5 min 30 sec`).
fn render_active(users: &[ActiveUser]) -> String {
    let mut t = Table::new(["USER", "SESSIONS", "LAST SEEN", "IDLE"]);
    for u in users {
        t.row([
            u.user_id.to_string(),
            u.sessions.to_string(),
            u.last_seen_at.to_rfc3339(),
            u.idle.clone(),
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use sessync_proto::{Timestamp, UserId};

    use super::*;

    #[test]
    fn active_table() {
        let users = vec![ActiveUser {
            user_id: UserId::parse_field("alice", "user_id").unwrap(),
            sessions: 2,
            last_seen_at: Timestamp(1_700_000_000_000),
            idle_seconds: 330,
            idle: "5 min 30 sec".into(),
        }];
        assert_eq!(
            render_active(&users),
            "USER   SESSIONS  LAST SEEN                 IDLE\n\
             alice  2         2023-11-14T22:13:20.000Z  5 min 30 sec\n"
        );
    }
}

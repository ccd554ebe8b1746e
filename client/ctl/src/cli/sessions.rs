//! `sessyncctl sessions ...`: create, inspect, validate, touch, end, list, verify and
//! invalidate sessions (an app key for most; ending with an admin key records `admin`).

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use sessync_client::Client;
use sessync_proto::api::{
    Consistency, CreateSessionRequest, FanoutStatus, InvalidateRequest, ValidateRequest,
    VerifyRequest,
};
use sessync_proto::federation::PeerOpKind;
use sessync_proto::{Device, SessionId, SiteName, UserId};

use super::output::{json_line, session_table, wire_name, OutputFormat, Table};

/// `sessyncctl sessions` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum SessionsCommand {
    /// Log a user in: prints the new session and its token (shown only this once).
    Create {
        /// The user logging in.
        #[arg(long, value_parser = parse_user)]
        user: UserId,
        /// The device's name, e.g. `laptop`.
        #[arg(long)]
        device_name: Option<String>,
        /// The device's id.
        #[arg(long)]
        device_id: Option<String>,
        /// The device's user agent.
        #[arg(long)]
        user_agent: Option<String>,
        /// The device's IP address.
        #[arg(long)]
        ip: Option<String>,
        /// Where the login came from.
        #[arg(long)]
        origin: Option<String>,
        /// Makes the create safe to repeat: the same key answers the same session.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Show one session.
    Get {
        /// The session id (`s_...`).
        #[arg(value_parser = parse_session)]
        id: SessionId,
    },
    /// Check a token; exits 1 (after printing the answer) when it is not valid.
    Validate {
        /// The session token. Tokens may begin with `-` (base64url), so one is taken as the
        /// token even then.
        #[arg(allow_hyphen_values = true)]
        token: String,
        /// Do not mark the session used.
        #[arg(long)]
        no_touch: bool,
        /// Answer from the node's own replica instead of confirming with the leader.
        #[arg(long)]
        local: bool,
    },
    /// Mark a session used now.
    Touch {
        /// The session id (`s_...`).
        #[arg(value_parser = parse_session)]
        id: SessionId,
    },
    /// End a session (idempotent).
    End {
        /// The session id (`s_...`).
        #[arg(value_parser = parse_session)]
        id: SessionId,
    },
    /// List a user's sessions, newest first.
    List {
        /// The user.
        #[arg(long, value_parser = parse_user)]
        user: UserId,
        /// Include ended sessions.
        #[arg(long)]
        all: bool,
    },
    /// Make one session (default: the newest) the user's only one.
    Verify(UserOpArgs),
    /// End one session or (default) all of a user's.
    Invalidate(UserOpArgs),
}

/// The arguments of verify and invalidate.
#[derive(Debug, Args)]
pub(crate) struct UserOpArgs {
    /// The user.
    #[arg(long, value_parser = parse_user)]
    user: UserId,
    /// The session: the one to keep (verify; default the newest) or the one to end
    /// (invalidate; default all).
    #[arg(long, value_parser = parse_session)]
    session: Option<SessionId>,
    /// Peer sites to fan the operation out to, comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = parse_site)]
    targets: Vec<SiteName>,
}

/// Parses a user id as the API would.
pub(super) fn parse_user(s: &str) -> Result<UserId, String> {
    UserId::parse_field(s, "user").map_err(|e| e.to_string())
}

fn parse_session(s: &str) -> Result<SessionId, String> {
    SessionId::parse_field(s, "session id").map_err(|e| e.to_string())
}

fn parse_site(s: &str) -> Result<SiteName, String> {
    SiteName::parse_field(s.trim(), "target").map_err(|e| e.to_string())
}

/// Runs one sessions subcommand, printing to `out`.
pub(super) async fn run(
    client: &Client,
    cmd: SessionsCommand,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let json = format == OutputFormat::Json;
    match cmd {
        SessionsCommand::Create {
            user,
            device_name,
            device_id,
            user_agent,
            ip,
            origin,
            idempotency_key,
        } => {
            let req = CreateSessionRequest {
                user_id: user,
                device: Device {
                    name: device_name,
                    id: device_id,
                    user_agent,
                    ip,
                },
                origin,
                idempotency_key,
            };
            let created = client
                .create_session(&req)
                .await
                .context("sessions create")?;
            if json {
                return json_line(out, &created);
            }
            out.write_all(session_table([&created.session]).render().as_bytes())?;
            writeln!(out, "token: {}", created.token)?;
        }
        SessionsCommand::Get { id } => {
            let view = client.get_session(&id).await.context("sessions get")?;
            print_sessions(out, json, &[view])?;
        }
        SessionsCommand::End { id } => {
            let view = client.end_session(&id).await.context("sessions end")?;
            print_sessions(out, json, &[view])?;
        }
        SessionsCommand::List { user, all } => {
            let views = client
                .list_sessions(&user, all)
                .await
                .context("sessions list")?;
            print_sessions(out, json, &views)?;
        }
        SessionsCommand::Touch { id } => {
            let a = client.touch(&id).await.context("sessions touch")?;
            if json {
                return json_line(out, &a);
            }
            out.write_all(session_table([&a.session]).render().as_bytes())?;
            writeln!(
                out,
                "seconds until idle end: {}\nseconds until session end: {}",
                a.seconds_until_idle_end, a.seconds_until_session_end
            )?;
        }
        SessionsCommand::Validate {
            token,
            no_touch,
            local,
        } => validate(client, token, !no_touch, local, json, out).await?,
        SessionsCommand::Verify(args) => {
            user_op(client, PeerOpKind::Verify, args, json, out).await?
        }
        SessionsCommand::Invalidate(args) => {
            user_op(client, PeerOpKind::Invalidate, args, json, out).await?
        }
    }
    Ok(())
}

/// Validates `token`; an invalid one is an error (exit 1) after its reason is printed.
async fn validate(
    client: &Client,
    token: String,
    touch: bool,
    local: bool,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let req = ValidateRequest {
        token,
        touch,
        consistency: if local {
            Consistency::Local
        } else {
            Consistency::Linearizable
        },
    };
    let a = client.validate(&req).await.context("sessions validate")?;
    if json {
        json_line(out, &a)?;
    } else if a.valid {
        writeln!(out, "valid")?;
        if let Some(s) = &a.session {
            out.write_all(session_table([s]).render().as_bytes())?;
        }
        if let (Some(idle), Some(end)) = (a.seconds_until_idle_end, a.seconds_until_session_end) {
            writeln!(
                out,
                "seconds until idle end: {idle}\nseconds until session end: {end}"
            )?;
        }
    } else {
        writeln!(
            out,
            "not valid: {}",
            a.reason.as_deref().unwrap_or("unknown")
        )?;
    }
    if !a.valid {
        bail!(
            "the token is not valid ({})",
            a.reason.as_deref().unwrap_or("unknown")
        );
    }
    Ok(())
}

/// Verify or invalidate, and what it did: the answer as a JSON line, or a sentence and the
/// fan-out table.
async fn user_op(
    client: &Client,
    kind: PeerOpKind,
    a: UserOpArgs,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (text, fanout) = match kind {
        PeerOpKind::Verify => {
            let req = VerifyRequest {
                session_id: a.session,
                targets: a.targets,
            };
            let r = client
                .verify(&a.user, &req)
                .await
                .context("sessions verify")?;
            if json {
                return json_line(out, &r);
            }
            let text = format!(
                "verified {}; ended {} other session(s)",
                r.verified, r.ended
            );
            (text, r.fanout)
        }
        PeerOpKind::Invalidate => {
            let req = InvalidateRequest {
                session_id: a.session,
                targets: a.targets,
            };
            let r = client
                .invalidate(&a.user, &req)
                .await
                .context("sessions invalidate")?;
            if json {
                return json_line(out, &r);
            }
            (format!("ended {} session(s)", r.ended), r.fanout)
        }
    };
    writeln!(out, "{text}")?;
    out.write_all(fanout_text(&fanout).as_bytes())?;
    Ok(())
}

/// Sessions as a table, or one JSON object per session.
fn print_sessions(
    out: &mut impl Write,
    json: bool,
    views: &[sessync_proto::SessionView],
) -> anyhow::Result<()> {
    if json {
        for v in views {
            json_line(out, v)?;
        }
        return Ok(());
    }
    out.write_all(session_table(views).render().as_bytes())?;
    Ok(())
}

/// The fan-out outcome per target site as a table; nothing when no site was targeted.
fn fanout_text(fanout: &BTreeMap<SiteName, FanoutStatus>) -> String {
    if fanout.is_empty() {
        return String::new();
    }
    let mut t = Table::new(["TARGET", "FANOUT"]);
    for (site, status) in fanout {
        t.row([site.to_string(), wire_name(status)]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fanout_rendering() {
        assert_eq!(fanout_text(&BTreeMap::new()), "");
        let mut f = BTreeMap::new();
        f.insert(parse_site("eu").unwrap(), FanoutStatus::UnknownSite);
        assert_eq!(fanout_text(&f), "TARGET  FANOUT\neu      unknown_site\n");
    }

    #[test]
    fn argument_parsers() {
        assert!(parse_user("alice").is_ok());
        assert!(parse_user("").is_err());
        assert!(parse_session("s_0f0f").is_ok());
        assert!(parse_session("a/b").is_err());
    }
}

//! `sessyncctl policy show|set`: the replicated session policy, and the operator's way to
//! change it (`PUT /v1/config/policy`; an admin key). Only the keys given change; the node
//! checks the result like a config file's `[policy]` and audits the change.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use sessync_client::Client;
use sessync_proto::{OnLimit, Policy, PolicyUpdate};

use super::output::{json_line, OutputFormat, Table};
use super::parse_duration;

/// `sessyncctl policy` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// The replicated policy every node enforces.
    Show,
    /// Change keys of the replicated policy; the others keep their values.
    Set(SetArgs),
}

/// The keys `policy set` may change.
#[derive(Debug, clap::Args)]
pub(crate) struct SetArgs {
    #[arg(long, value_parser = parse_duration)]
    idle_timeout: Option<Duration>,
    #[arg(long, value_parser = parse_duration)]
    max_lifetime: Option<Duration>,
    #[arg(long)]
    max_concurrent_sessions: Option<u32>,
    #[arg(long, value_parser = parse_on_limit)]
    on_limit: Option<OnLimit>,
    #[arg(long, value_parser = parse_duration)]
    max_clock_skew: Option<Duration>,
    #[arg(long, value_parser = parse_duration)]
    touch_interval: Option<Duration>,
    #[arg(long, value_parser = parse_duration)]
    retention: Option<Duration>,
    #[arg(long, value_parser = parse_duration)]
    audit_retention: Option<Duration>,
    #[arg(long)]
    max_blocked_sessions: Option<u32>,
    #[arg(long)]
    audit_max_events: Option<u64>,
    #[arg(long)]
    audit_max_bytes: Option<u64>,
    #[arg(long, value_parser = parse_duration)]
    idempotency_window: Option<Duration>,
}

fn parse_on_limit(s: &str) -> Result<OnLimit, String> {
    [OnLimit::Deny, OnLimit::BlockNew, OnLimit::EvictOldest]
        .into_iter()
        .find(|o| o.as_str() == s)
        .ok_or_else(|| format!("`{s}` is not one of deny, block_new, evict_oldest"))
}

impl From<SetArgs> for PolicyUpdate {
    fn from(a: SetArgs) -> Self {
        PolicyUpdate {
            idle_timeout: a.idle_timeout,
            max_lifetime: a.max_lifetime,
            max_concurrent_sessions: a.max_concurrent_sessions,
            on_limit: a.on_limit,
            max_clock_skew: a.max_clock_skew,
            touch_interval: a.touch_interval,
            retention: a.retention,
            audit_retention: a.audit_retention,
            max_blocked_sessions: a.max_blocked_sessions,
            audit_max_events: a.audit_max_events,
            audit_max_bytes: a.audit_max_bytes,
            idempotency_window: a.idempotency_window,
        }
    }
}

/// Runs one policy subcommand, printing the policy in force afterwards to `out`.
pub(super) async fn run(
    client: &Client,
    cmd: PolicyCommand,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let config = match cmd {
        PolicyCommand::Show => client.config().await.context("policy show")?,
        PolicyCommand::Set(args) => {
            let update = PolicyUpdate::from(args);
            anyhow::ensure!(
                !update.is_empty(),
                "policy set: give at least one key to change (see --help)"
            );
            client.set_policy(&update).await.context("policy set")?
        }
    };
    let Some(policy) = config.policy else {
        anyhow::bail!("the cluster has no replicated policy yet (is it initialised?)");
    };
    if format == OutputFormat::Json {
        json_line(out, &policy)?;
    } else {
        out.write_all(render(&policy).as_bytes())?;
    }
    Ok(())
}

/// The policy as a KEY VALUE table, durations as people write them.
fn render(p: &Policy) -> String {
    let d = |d: Duration| humantime::format_duration(d).to_string();
    let mut t = Table::new(["KEY", "VALUE"]);
    for (k, v) in [
        ("idle_timeout", d(p.idle_timeout)),
        ("max_lifetime", d(p.max_lifetime)),
        (
            "max_concurrent_sessions",
            p.max_concurrent_sessions.to_string(),
        ),
        ("on_limit", p.on_limit.as_str().to_owned()),
        ("max_clock_skew", d(p.max_clock_skew)),
        ("touch_interval", d(p.touch_interval)),
        ("retention", d(p.retention)),
        ("audit_retention", d(p.audit_retention)),
        ("max_blocked_sessions", p.max_blocked_sessions.to_string()),
        ("audit_max_events", p.audit_max_events.to_string()),
        ("audit_max_bytes", p.audit_max_bytes.to_string()),
        ("idempotency_window", d(p.idempotency_window)),
    ] {
        t.row([k.to_owned(), v]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_table() {
        let text = render(&Policy::default());
        assert!(text.starts_with("KEY "), "{text}");
        assert!(text.contains("idle_timeout             15m\n"), "{text}");
        assert!(
            text.contains("on_limit                 block_new\n"),
            "{text}"
        );
    }
}

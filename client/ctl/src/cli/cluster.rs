//! `sessyncctl cluster ...`: initialise a cluster and show every node's view of it; the
//! membership changes and the snapshot trigger are run by `membership`.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::json;
use sessync_client::{Client, ClientError};
use sessync_proto::api::{ClusterChangeResponse, ClusterStatus};

use super::membership::{self, parse_node_id, parse_url};
use super::output::{opt_cell, OutputFormat, Table};

/// `sessyncctl cluster` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Start a new cluster whose voters are the given members (refused on an initialised one).
    Init {
        /// A voter as NODE_ID=URL, e.g. `1=http://127.0.0.1:7101`; repeat for each.
        #[arg(long = "member", required = true, value_parser = parse_member)]
        member: Vec<(u64, String)>,
    },
    /// Ask every endpoint for its view of the cluster: role, leader, term, log and members.
    Status,
    /// Add a node as a learner; returns once it has caught up (deadline at least 120s).
    AddLearner {
        /// The new node's id.
        #[arg(long, value_parser = parse_node_id)]
        node_id: u64,
        /// The URL the new node advertises, e.g. `http://127.0.0.1:7104`.
        #[arg(long, value_parser = parse_url)]
        url: String,
    },
    /// Make a learner a voter: the current voters plus this node.
    Promote {
        /// The learner to promote.
        #[arg(long, value_parser = parse_node_id)]
        node_id: u64,
    },
    /// Set the voters to exactly this list.
    ChangeMembership {
        /// The voters, comma-separated node ids, e.g. `1,2,3`.
        #[arg(long, required = true, value_delimiter = ',', value_parser = parse_node_id)]
        voters: Vec<u64>,
        /// Keep removed voters as learners instead of removing them.
        #[arg(long)]
        retain: bool,
    },
    /// Remove a voter from the cluster: the current voters without this node.
    RemoveNode {
        /// The voter to remove.
        #[arg(long, value_parser = parse_node_id)]
        node_id: u64,
    },
    /// Take a snapshot now on the node that answers (compacting its log).
    Snapshot,
    /// Hand leadership to another voter (writes are held meanwhile): before stopping or
    /// upgrading the leader.
    TransferLeader {
        /// The voter to hand over to; without it, the voter furthest along the log.
        #[arg(long, value_parser = parse_node_id)]
        to: Option<u64>,
    },
}

/// Parses `ID=URL`.
fn parse_member(s: &str) -> Result<(u64, String), String> {
    let (id, url) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not NODE_ID=URL"))?;
    let id: u64 = id
        .trim()
        .parse()
        .map_err(|_| format!("`{id}` is not a node id (a positive integer)"))?;
    if id == 0 {
        return Err("node ids start at 1".into());
    }
    let url = url.trim();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("`{url}` is not an http:// or https:// URL"));
    }
    Ok((id, url.to_owned()))
}

/// Runs one cluster subcommand, printing to `out`.
pub(super) async fn run(
    client: &Client,
    cmd: ClusterCommand,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Init { member } => {
            let mut members = BTreeMap::new();
            for (id, url) in member {
                if members.insert(id, url).is_some() {
                    bail!("node {id} is given twice");
                }
            }
            let answer = client.cluster_init(members).await.context("cluster init")?;
            out.write_all(render_init(&answer, format)?.as_bytes())?;
        }
        ClusterCommand::Status => {
            let views = gather_status(client).await;
            if views.iter().all(|(_, r)| r.is_err()) {
                if let Some((_, Err(first))) = views.first() {
                    return Err(anyhow::Error::from(first.clone()).context("no endpoint answered"));
                }
            }
            out.write_all(render_status(&views, format)?.as_bytes())?;
        }
        ClusterCommand::AddLearner { node_id, url } => {
            membership::add_learner(client, node_id, url, format, out).await?;
        }
        ClusterCommand::Promote { node_id } => {
            membership::promote(client, node_id, format, out).await?;
        }
        ClusterCommand::ChangeMembership { voters, retain } => {
            membership::change_membership(client, voters, retain, format, out).await?;
        }
        ClusterCommand::RemoveNode { node_id } => {
            membership::remove_node(client, node_id, format, out).await?;
        }
        ClusterCommand::Snapshot => membership::snapshot(client, format, out).await?,
        ClusterCommand::TransferLeader { to } => {
            super::handover::transfer_leader(client, to, format, out).await?;
        }
    }
    Ok(())
}

/// Each endpoint's answer to `GET /cluster/status`, asked concurrently, in endpoint order.
pub(super) async fn gather_status(
    client: &Client,
) -> Vec<(String, Result<ClusterStatus, ClientError>)> {
    let handles: Vec<_> = (0..client.endpoints().len())
        .map(|i| {
            let pinned = client.pinned(i);
            tokio::spawn(async move { pinned.cluster_status().await })
        })
        .collect();
    let mut views = Vec::with_capacity(handles.len());
    for (endpoint, handle) in client.endpoints().iter().zip(handles) {
        let result = match handle.await {
            Ok(r) => r,
            Err(e) => Err(ClientError::Transport(format!("task failed: {e}"))),
        };
        views.push((endpoint.clone(), result));
    }
    views
}

/// The output of `cluster init`.
fn render_init(answer: &ClusterChangeResponse, format: OutputFormat) -> anyhow::Result<String> {
    Ok(match format {
        OutputFormat::Json => format!("{}\n", serde_json::to_string(answer)?),
        OutputFormat::Table => format!(
            "cluster initialised (ok: {}, log index: {})\n",
            answer.ok,
            opt_cell(answer.log_index)
        ),
    })
}

/// The output of `cluster status`: one row per endpoint, then the members as the leader (or
/// else the first node that answered) sees them.
pub(super) fn render_status(
    views: &[(String, Result<ClusterStatus, ClientError>)],
    format: OutputFormat,
) -> anyhow::Result<String> {
    if format == OutputFormat::Json {
        // One line per endpoint, like every other command's JSON output.
        let mut out = String::new();
        for (endpoint, r) in views {
            let line = match r {
                Ok(s) => json!({"endpoint": endpoint, "status": s}),
                Err(e) => json!({"endpoint": endpoint, "error": e.to_string()}),
            };
            out.push_str(&serde_json::to_string(&line)?);
            out.push('\n');
        }
        return Ok(out);
    }
    let mut nodes = Table::new([
        "NODE", "ENDPOINT", "ROLE", "LEADER", "TERM", "LAST LOG", "APPLIED", "SNAPSHOT", "CLOCK",
        "HEALTH",
    ]);
    let mut errors = String::new();
    for (endpoint, r) in views {
        match r {
            Ok(s) => nodes.row([
                s.node_id.to_string(),
                endpoint.clone(),
                s.role.clone(),
                opt_cell(s.leader),
                s.term.to_string(),
                opt_cell(s.last_log_index),
                opt_cell(s.last_applied),
                opt_cell(s.snapshot_index),
                clock(s),
                health(s),
            ]),
            Err(e) => {
                let role = if e.is_unavailable() {
                    "unavailable"
                } else {
                    "error"
                };
                nodes.row(["-", endpoint, role, "-", "-", "-", "-", "-", "-", "down"]);
                errors.push_str(&format!("{endpoint}: {e}\n"));
            }
        }
    }
    let mut text = nodes.render();
    let answered: Vec<&ClusterStatus> = views.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
    text.push_str(&versions(&answered));
    let chosen = answered
        .iter()
        .find(|s| s.role == "leader")
        .or_else(|| answered.first());
    if let Some(view) = chosen {
        text.push_str(&format!(
            "\nmembers as node {} ({}) sees them:\n",
            view.node_id, view.role
        ));
        let mut members = Table::new(["NODE", "URL", "VOTER", "MATCHED", "LAG"]);
        for m in &view.members {
            // Entries the member is behind the leader's log (known only to the leader).
            let lag = match (view.last_log_index, m.matched_index) {
                (Some(last), Some(matched)) => last.saturating_sub(matched).to_string(),
                _ => "-".to_owned(),
            };
            members.row([
                m.node_id.to_string(),
                m.url.clone(),
                if m.voter { "yes" } else { "no" }.to_owned(),
                opt_cell(m.matched_index),
                lag,
            ]);
        }
        text.push_str(&members.render());
    }
    // Config files that disagree with the replicated policy (which applies).
    for s in &answered {
        if !s.policy_file_differs.is_empty() {
            text.push_str(&format!(
                "\nnode {}: its [policy] differs from the replicated policy in {} (the replicated \
                 values apply; change them with `sessyncctl policy set`)\n",
                s.node_id,
                s.policy_file_differs.join(", ")
            ));
        }
    }
    if !errors.is_empty() {
        text.push('\n');
        text.push_str(&errors);
    }
    Ok(text)
}

/// Which release and build each node runs, one line per distinct pair (two lines during a
/// rolling upgrade); nothing when no node reports one.
fn versions(answered: &[&ClusterStatus]) -> String {
    let mut runs: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
    for s in answered.iter().filter(|s| !s.version.is_empty()) {
        runs.entry((s.version.as_str(), s.build.as_str()))
            .or_default()
            .push(s.node_id.to_string());
    }
    let mut text = String::new();
    if !runs.is_empty() {
        text.push('\n');
    }
    for ((version, build), nodes) in runs {
        text.push_str(&format!(
            "version {version} (build {build}) on node {}\n",
            nodes.join(", ")
        ));
    }
    text
}

/// A node's health as its own status shows it: `ready`, or why `/readyz` says it is not
/// (`no_leader`, `leader_silent`, `lagging`, `clock_skew`).
fn health(s: &ClusterStatus) -> String {
    if s.not_ready.is_empty() {
        "ready".to_owned()
    } else {
        s.not_ready.join(",")
    }
}

/// A node's clock against the voters' median: `+12ms`, `-180000ms SKEWED`, or `-` before any
/// measurement.
fn clock(s: &ClusterStatus) -> String {
    match s.clock_offset_ms {
        None => "-".to_owned(),
        Some(d) if s.clock_skewed => format!("{d:+}ms SKEWED"),
        Some(d) => format!("{d:+}ms"),
    }
}

#[cfg(test)]
mod tests {
    use sessync_proto::api::MemberStatus;
    use sessync_proto::SiteName;

    use super::*;

    fn status(node_id: u64, role: &str) -> ClusterStatus {
        ClusterStatus {
            node_id,
            cluster_id: None,
            site: SiteName::parse_field("test", "site").unwrap(),
            role: role.into(),
            initialized: true,
            leader: Some(1),
            leader_url: Some("http://127.0.0.1:7101".into()),
            term: 3,
            last_log_index: Some(12),
            last_applied: Some(11),
            snapshot_index: None,
            members: vec![
                MemberStatus {
                    node_id: 1,
                    url: "http://127.0.0.1:7101".into(),
                    voter: true,
                    matched_index: (role == "leader").then_some(12),
                },
                MemberStatus {
                    node_id: 2,
                    url: "http://127.0.0.1:7102".into(),
                    voter: false,
                    matched_index: None,
                },
            ],
            policy_file_differs: Vec::new(),
            not_ready: Vec::new(),
            clock_offset_ms: Some(-3),
            clock_skewed: false,
            membership_index: None,
            bootstrap: None,
            version: String::new(),
            build: String::new(),
            draining: false,
        }
    }

    #[test]
    fn versions_are_listed_by_release_and_build() {
        let mut a = status(1, "leader");
        let mut b = status(2, "follower");
        let mut c = status(3, "follower");
        for (s, v) in [(&mut a, "0.2.0"), (&mut b, "0.1.0"), (&mut c, "0.2.0")] {
            s.version = v.into();
            s.build = format!("b{v}");
        }
        assert_eq!(
            versions(&[&a, &b, &c]),
            "\nversion 0.1.0 (build b0.1.0) on node 2\nversion 0.2.0 (build b0.2.0) on node 1, 3\n"
        );
        assert_eq!(versions(&[&status(1, "leader")]), "");
    }

    #[test]
    fn member_parsing() {
        assert_eq!(
            parse_member("3=http://127.0.0.1:7103").unwrap(),
            (3, "http://127.0.0.1:7103".to_owned())
        );
        assert!(parse_member("0=http://x").is_err());
        assert!(parse_member("a=http://x").is_err());
        assert!(parse_member("1:http://x").is_err());
        assert!(parse_member("1=127.0.0.1:7101").is_err());
    }

    #[test]
    fn status_table_prefers_the_leaders_member_view() {
        let mut skewed = status(2, "follower");
        skewed.clock_offset_ms = Some(180_012);
        skewed.clock_skewed = true;
        skewed.not_ready = vec!["clock_skew".into()];
        let views = vec![
            ("http://127.0.0.1:7102".to_owned(), Ok(skewed)),
            ("http://127.0.0.1:7101".to_owned(), Ok(status(1, "leader"))),
            (
                "http://127.0.0.1:7103".to_owned(),
                Err(ClientError::Transport("connection refused".into())),
            ),
        ];
        let text = render_status(&views, OutputFormat::Table).unwrap();
        let expected = "\
NODE  ENDPOINT               ROLE         LEADER  TERM  LAST LOG  APPLIED  SNAPSHOT  CLOCK             HEALTH
2     http://127.0.0.1:7102  follower     1       3     12        11       -         +180012ms SKEWED  clock_skew
1     http://127.0.0.1:7101  leader       1       3     12        11       -         -3ms              ready
-     http://127.0.0.1:7103  unavailable  -       -     -         -        -         -                 down

members as node 1 (leader) sees them:
NODE  URL                    VOTER  MATCHED  LAG
1     http://127.0.0.1:7101  yes    12       0
2     http://127.0.0.1:7102  no     -        -

http://127.0.0.1:7103: transport: connection refused
";
        assert_eq!(text, expected);
    }

    #[test]
    fn status_json_lists_answers_and_errors() {
        let views = vec![
            ("http://a:1".to_owned(), Ok(status(1, "leader"))),
            (
                "http://b:2".to_owned(),
                Err(ClientError::Unavailable {
                    message: "no quorum".into(),
                }),
            ),
        ];
        let text = render_status(&views, OutputFormat::Json).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["endpoint"], "http://a:1");
        assert_eq!(lines[0]["status"]["role"], "leader");
        assert_eq!(lines[1]["error"], "unavailable: no quorum");
    }

    #[test]
    fn init_rendering() {
        let a = ClusterChangeResponse {
            ok: true,
            log_index: Some(1),
        };
        assert_eq!(
            render_init(&a, OutputFormat::Table).unwrap(),
            "cluster initialised (ok: true, log index: 1)\n"
        );
        let v: serde_json::Value =
            serde_json::from_str(&render_init(&a, OutputFormat::Json).unwrap()).unwrap();
        assert_eq!(v["log_index"], 1);
    }
}

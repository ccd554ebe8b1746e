//! `sessyncctl cluster add-learner | promote | change-membership | remove-node | snapshot`:
//! the membership changes and the snapshot trigger, each printed as one line of text or one
//! JSON object.
//!
//! `promote` and `remove-node` read the current voters from `/cluster/status` (the leader's
//! view when an endpoint is the leader) and send the whole new voter set.

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::json;
use sessync_client::Client;
use sessync_proto::api::{ClusterChangeResponse, ClusterStatus};

use super::cluster::gather_status;
use super::output::{json_line, opt_cell, OutputFormat};
use super::progress::Progress;

/// The least deadline of `add-learner`: the node answers only once the learner caught up.
pub(super) const ADD_LEARNER_TIMEOUT: Duration = Duration::from_secs(120);

/// Parses a node id (a positive integer).
pub(super) fn parse_node_id(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(0) => Err("node ids start at 1".into()),
        Ok(id) => Ok(id),
        Err(_) => Err(format!("`{s}` is not a node id (a positive integer)")),
    }
}

/// Parses an http:// or https:// URL.
pub(super) fn parse_url(s: &str) -> Result<String, String> {
    let url = s.trim();
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() <= 8 {
        return Err(format!("`{url}` is not an http:// or https:// URL"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// `cluster add-learner`: waits (at least [`ADD_LEARNER_TIMEOUT`]) while the learner catches
/// up, showing progress on a terminal.
pub(super) async fn add_learner(
    client: &Client,
    node_id: u64,
    url: String,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let slow = client
        .clone()
        .with_timeout(client.timeout().max(ADD_LEARNER_TIMEOUT));
    let progress = Progress::start(client, node_id);
    let answer = slow.add_learner(node_id, url.clone()).await;
    progress.finish();
    let answer = answer.with_context(|| format!("cluster add-learner {node_id}"))?;
    let text = format!(
        "learner {node_id} ({url}) added and caught up (log index: {})",
        opt_cell(answer.log_index)
    );
    let value = json!({"command": "add-learner", "node_id": node_id, "url": url});
    emit(out, format, &text, value, &answer)
}

/// `cluster promote`: the current voters plus `node_id`, which must be a member already.
pub(super) async fn promote(
    client: &Client,
    node_id: u64,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let view = current_view(client).await?;
    if !view.members.iter().any(|m| m.node_id == node_id) {
        bail!("node {node_id} is not in the cluster: add it first with `cluster add-learner`");
    }
    let mut voters = voters_of(&view);
    voters.insert(node_id);
    let done = format!("node {node_id} is a voter");
    set_voters(client, "promote", node_id, voters, &done, format, out).await
}

/// `cluster remove-node`: the current voters without `node_id`; it leaves the cluster.
pub(super) async fn remove_node(
    client: &Client,
    node_id: u64,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let view = current_view(client).await?;
    let mut voters = voters_of(&view);
    if !voters.remove(&node_id) {
        bail!("node {node_id} is not a voter of the cluster");
    }
    if voters.is_empty() {
        bail!("node {node_id} is the only voter; it cannot be removed");
    }
    let done = format!("node {node_id} removed");
    set_voters(client, "remove-node", node_id, voters, &done, format, out).await
}

/// Commits `voters` as the new voter set for `command` on `node_id`, and reports
/// `"{done}; voters …"` (or the JSON line).
async fn set_voters(
    client: &Client,
    command: &str,
    node_id: u64,
    voters: BTreeSet<u64>,
    done: &str,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let voters: Vec<u64> = voters.into_iter().collect();
    let answer = client
        .change_membership(voters.clone(), false)
        .await
        .with_context(|| format!("cluster {command} {node_id}"))?;
    let text = format!(
        "{done}; voters {} (log index: {})",
        list(&voters),
        opt_cell(answer.log_index)
    );
    let value = json!({"command": command, "node_id": node_id, "voters": voters});
    emit(out, format, &text, value, &answer)
}

/// `cluster change-membership`: exactly these voters; removed ones stay learners if `retain`.
pub(super) async fn change_membership(
    client: &Client,
    voters: Vec<u64>,
    retain: bool,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let voters: Vec<u64> = voters
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let answer = client
        .change_membership(voters.clone(), retain)
        .await
        .context("cluster change-membership")?;
    let text = format!(
        "voters {} (retain: {retain}, log index: {})",
        list(&voters),
        opt_cell(answer.log_index)
    );
    let value = json!({"command": "change-membership", "voters": voters, "retain": retain});
    emit(out, format, &text, value, &answer)
}

/// `cluster snapshot`: a snapshot on the node that answers.
pub(super) async fn snapshot(
    client: &Client,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let answer = client
        .trigger_snapshot()
        .await
        .context("cluster snapshot")?;
    let endpoint = client.current_endpoint().to_owned();
    let text = format!(
        "snapshot taken on {endpoint} (log index: {})",
        opt_cell(answer.log_index)
    );
    let value = json!({"command": "snapshot", "endpoint": endpoint});
    emit(out, format, &text, value, &answer)
}

/// The leader's status if an endpoint is the leader, else the first answer.
async fn current_view(client: &Client) -> anyhow::Result<ClusterStatus> {
    let views = gather_status(client).await;
    let mut first_err = None;
    let mut answered = Vec::new();
    for (_, r) in views {
        match r {
            Ok(s) => answered.push(s),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if let Some(i) = answered.iter().position(|s| s.role == "leader") {
        return Ok(answered.swap_remove(i));
    }
    match (answered.into_iter().next(), first_err) {
        (Some(s), _) => Ok(s),
        (None, Some(e)) => {
            Err(anyhow::Error::from(e).context("cluster status: no endpoint answered"))
        }
        (None, None) => bail!("no endpoints"),
    }
}

fn voters_of(view: &ClusterStatus) -> BTreeSet<u64> {
    view.members
        .iter()
        .filter(|m| m.voter)
        .map(|m| m.node_id)
        .collect()
}

fn list(ids: &[u64]) -> String {
    ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

/// Prints `text` (table) or `value` with the answer's `ok` and `log_index` (json).
fn emit(
    out: &mut impl Write,
    format: OutputFormat,
    text: &str,
    mut value: serde_json::Value,
    answer: &ClusterChangeResponse,
) -> anyhow::Result<()> {
    match format {
        OutputFormat::Table => writeln!(out, "{text}")?,
        OutputFormat::Json => {
            value["ok"] = json!(answer.ok);
            value["log_index"] = json!(answer.log_index);
            json_line(out, &value)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_urls() {
        assert_eq!(parse_node_id("4").unwrap(), 4);
        assert!(parse_node_id("0").is_err());
        assert!(parse_node_id("x").is_err());
        assert_eq!(
            parse_url("http://127.0.0.1:7104/").unwrap(),
            "http://127.0.0.1:7104"
        );
        assert!(parse_url("127.0.0.1:7104").is_err());
        assert!(parse_url("http://").is_err());
    }

    #[test]
    fn json_is_one_object_per_line() {
        let mut out = Vec::new();
        let answer = ClusterChangeResponse {
            ok: true,
            log_index: Some(7),
        };
        let value = json!({"command": "promote", "node_id": 4, "voters": [1, 2, 3, 4]});
        emit(&mut out, OutputFormat::Json, "x", value, &answer).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["log_index"], 7);
        assert_eq!(v["ok"], true);
        let mut out = Vec::new();
        emit(
            &mut out,
            OutputFormat::Table,
            "voters 1,2",
            json!({}),
            &answer,
        )
        .unwrap();
        assert_eq!(out, b"voters 1,2\n");
        assert_eq!(list(&[1, 2, 3]), "1,2,3");
    }
}

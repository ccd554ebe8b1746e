//! The real `sessyncctl` binary growing and shrinking a real cluster: `cluster add-learner`,
//! `promote`, `remove-node`, `change-membership` and `snapshot` in both output modes, checked
//! against `/cluster/status`, and exit code 2 for bad usage.

use std::collections::BTreeSet;

use anyhow::Context;
use sessync_chaos_tests::{ClusterOptions, TestCluster};

use crate::ctl::{ctl, Run};

/// Runs `sessyncctl --output json|table ARGS` with the admin key over `endpoints`.
fn admin(cluster: &TestCluster, endpoints: &[String], json: bool, args: &[&str]) -> Run {
    let mut all = vec!["--timeout", "10s", "--output"];
    all.push(if json { "json" } else { "table" });
    all.extend_from_slice(args);
    let endpoints = endpoints.join(",");
    ctl(
        &[
            ("SESSYNC_ENDPOINTS", &endpoints),
            ("SESSYNC_API_KEY", cluster.admin_key()),
        ],
        &all,
    )
    .expect("sessyncctl runs")
}

/// The voters and all members in the leader's `/cluster/status`.
async fn membership(cluster: &TestCluster) -> anyhow::Result<(BTreeSet<u64>, BTreeSet<u64>)> {
    let leader = cluster.leader().await?;
    let status = cluster.admin_client_for(leader).cluster_status().await?;
    let voters = status
        .members
        .iter()
        .filter(|m| m.voter)
        .map(|m| m.node_id)
        .collect();
    let members = status.members.iter().map(|m| m.node_id).collect();
    Ok((voters, members))
}

fn ids(list: &[u64]) -> BTreeSet<u64> {
    list.iter().copied().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn grow_shrink_and_snapshot() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(ClusterOptions::default()).await?;
    // The CLI talks to the three members only (the new node is not initialised yet).
    let members = cluster.urls();
    // status, json: one line per endpoint, each with that node's view.
    let lines = admin(&cluster, &members, true, &["cluster", "status"]).json_lines()?;
    assert_eq!(lines.len(), 3, "{lines:?}");
    let leaders = lines
        .iter()
        .filter(|l| l["status"]["role"] == "leader")
        .count();
    assert_eq!(leaders, 1, "{lines:?}");

    let new = cluster.add_node().await?;
    let new_id = new.to_string();
    let new_url = cluster.url(new);

    // add-learner, json: one object, ok, with the learner's id.
    let r = admin(
        &cluster,
        &members,
        true,
        &[
            "cluster",
            "add-learner",
            "--node-id",
            &new_id,
            "--url",
            &new_url,
        ],
    )
    .expect(0)?;
    let v = r.json()?;
    assert_eq!(v["command"], "add-learner");
    assert_eq!(v["node_id"], new);
    assert_eq!(v["ok"], true);
    // Not a terminal: no progress line on stderr.
    assert!(r.err.is_empty(), "{}", r.err);
    let (voters, all) = membership(&cluster).await?;
    assert_eq!(voters, ids(&[1, 2, 3]));
    assert!(all.contains(&new), "{all:?}");

    // promote, table: now four voters.
    let r = admin(
        &cluster,
        &members,
        false,
        &["cluster", "promote", "--node-id", &new_id],
    )
    .expect(0)?;
    assert!(
        r.out
            .starts_with(&format!("node {new} is a voter; voters 1,2,3,{new} ")),
        "{}",
        r.out
    );
    assert_eq!(membership(&cluster).await?.0, ids(&[1, 2, 3, new]));

    // remove-node of an original follower, json: three voters, and it left the cluster.
    let leader = cluster.leader().await?;
    let gone = (1..=3).find(|id| *id != leader).context("a follower")?;
    let r = admin(
        &cluster,
        &members,
        true,
        &["cluster", "remove-node", "--node-id", &gone.to_string()],
    )
    .expect(0)?;
    let v = r.json()?;
    assert_eq!(v["command"], "remove-node");
    assert_eq!(v["ok"], true);
    let remaining: Vec<u64> = [1, 2, 3, new].into_iter().filter(|i| *i != gone).collect();
    assert_eq!(v["voters"], serde_json::json!(remaining));
    let (voters, all) = membership(&cluster).await?;
    assert_eq!(voters, ids(&remaining));
    assert!(!all.contains(&gone), "{all:?}");
    cluster.kill(gone);
    let live: Vec<String> = remaining.iter().map(|i| cluster.url(*i)).collect();

    // Removing it again is a failure (exit 1), not a usage error.
    let r = admin(
        &cluster,
        &live,
        false,
        &["cluster", "remove-node", "--node-id", &gone.to_string()],
    )
    .expect(1)?;
    assert!(r.err.contains("is not a voter"), "{}", r.err);
    // Promoting a node that is not a member fails too.
    admin(
        &cluster,
        &live,
        true,
        &["cluster", "promote", "--node-id", "99"],
    )
    .expect(1)?;

    // snapshot in both modes.
    let r = admin(&cluster, &live, true, &["cluster", "snapshot"]).expect(0)?;
    let v = r.json()?;
    assert_eq!(v["command"], "snapshot");
    assert_eq!(v["ok"], true);
    let r = admin(&cluster, &live, false, &["cluster", "snapshot"]).expect(0)?;
    assert!(r.out.starts_with("snapshot taken on http://"), "{}", r.out);

    // change-membership: the same voters (listed unsorted, with a repeat) in both modes.
    let list: Vec<String> = remaining.iter().rev().map(u64::to_string).collect();
    let arg = format!("{},{}", list.join(","), list[0]);
    let r = admin(
        &cluster,
        &live,
        true,
        &["cluster", "change-membership", "--voters", &arg],
    )
    .expect(0)?;
    let v = r.json()?;
    assert_eq!(v["voters"], serde_json::json!(remaining));
    assert_eq!(v["retain"], false);
    // Down to two voters, the third kept as a learner.
    let (keep, demoted) = (&remaining[..2], remaining[2]);
    let arg: Vec<String> = keep.iter().map(u64::to_string).collect();
    let r = admin(
        &cluster,
        &live,
        false,
        &[
            "cluster",
            "change-membership",
            "--voters",
            &arg.join(","),
            "--retain",
        ],
    )
    .expect(0)?;
    assert!(r.out.contains("(retain: true, log index: "), "{}", r.out);
    let (voters, all) = membership(&cluster).await?;
    assert_eq!(voters, ids(keep));
    assert!(all.contains(&demoted), "{all:?}");
    Ok(())
}

#[test]
fn bad_usage_exits_2() -> anyhow::Result<()> {
    for args in [
        vec!["cluster", "promote"],
        vec!["cluster", "remove-node", "--node-id", "0"],
        vec!["cluster", "add-learner", "--node-id", "4"],
        vec![
            "cluster",
            "add-learner",
            "--node-id",
            "4",
            "--url",
            "127.0.0.1:1",
        ],
        vec!["cluster", "change-membership"],
        vec!["cluster", "change-membership", "--voters", "1,x"],
        vec!["cluster", "snapshot", "--now"],
    ] {
        let r = ctl(&[], &args)?.expect(2)?;
        assert!(r.out.is_empty(), "{args:?}: {}", r.out);
        assert!(r.err.contains("error"), "{args:?}: {}", r.err);
    }
    Ok(())
}

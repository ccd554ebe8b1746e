//! What a test asks of a running [`TestCluster`]: the agreed leader, convergence, identical
//! replica state, crashes; and the node logs added to a failed wait's error.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{anyhow, bail};
use sessync_proto::api::{Consistency, ValidateRequest, ValidateResponse};

use crate::cluster::{TestCluster, LEADER_TIMEOUT, PROBE_TIMEOUT, TAIL_LINES};
use crate::process::tail;
use crate::views::{self, DigestCompare, View};
use crate::wait::{wait_for, Check};

impl TestCluster {
    /// Each live node's `GET /cluster/status`, asked concurrently.
    async fn views(&self) -> Vec<View> {
        let mut tasks = tokio::task::JoinSet::new();
        for id in self.live_node_ids() {
            let client = self.admin_client_for(id).with_timeout(PROBE_TIMEOUT);
            tasks.spawn(
                async move { (id, client.cluster_status().await.map_err(|e| e.to_string())) },
            );
        }
        let mut views = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            if let Ok(view) = joined {
                views.push(view);
            }
        }
        views.sort_by_key(|(id, _)| *id);
        views
    }

    /// A linearizable validate of `token` (no touch) through each live node: each answer.
    pub async fn validate_everywhere(
        &self,
        token: &str,
    ) -> anyhow::Result<Vec<(u64, ValidateResponse)>> {
        let mut answers = Vec::new();
        for id in self.live_node_ids() {
            let v = self
                .app_client_for(id)
                .validate(&ValidateRequest {
                    token: token.to_owned(),
                    touch: false,
                    consistency: Consistency::Linearizable,
                })
                .await?;
            answers.push((id, v));
        }
        Ok(answers)
    }

    /// The leader, once every live member of the cluster names the same one (at most
    /// [`LEADER_TIMEOUT`]).
    pub async fn leader(&self) -> anyhow::Result<u64> {
        wait_for(
            "the live nodes to agree on a leader",
            LEADER_TIMEOUT,
            || async {
                let views = self.views().await;
                match views::agreed_leader(&views) {
                    Ok(s) => Check::Done(s.node_id),
                    Err(why) => Check::NotYet(why),
                }
            },
        )
        .await
        .map_err(|e| self.with_logs(e))
    }

    /// Waits until every live member has applied the leader's whole log (last_applied of each
    /// at least the leader's last_log_index).
    pub async fn wait_converged(&self, timeout: Duration) -> anyhow::Result<()> {
        wait_for(
            "the live nodes to apply the leader's log",
            timeout,
            || async {
                match views::converged(&self.views().await) {
                    Ok(()) => Check::Done(()),
                    Err(why) => Check::NotYet(why),
                }
            },
        )
        .await
        .map_err(|e| self.with_logs(e))
    }

    /// Checks invariant 4: every live member of the cluster holds byte-identical state
    /// (`GET /cluster/digest`) at the same applied index. Waits (at most [`LEADER_TIMEOUT`])
    /// for them to reach the same index; fails at once if two at the same index differ.
    pub async fn assert_identical_state(&self) -> anyhow::Result<()> {
        let what = "the live members to hold identical state";
        wait_for(what, LEADER_TIMEOUT, || async {
            let views = self.views().await;
            let members: BTreeSet<u64> = match views::agreed_leader(&views) {
                Ok(l) => l.members.iter().map(|m| m.node_id).collect(),
                Err(why) => return Check::NotYet(why),
            };
            let mut tasks = tokio::task::JoinSet::new();
            for id in self
                .live_node_ids()
                .into_iter()
                .filter(|id| members.contains(id))
            {
                let client = self.admin_client_for(id).with_timeout(PROBE_TIMEOUT);
                tasks.spawn(async move { (id, client.state_digest().await) });
            }
            let mut digests = Vec::new();
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok((id, Ok(d))) => digests.push((id, d)),
                    Ok((id, Err(e))) => return Check::NotYet(format!("node {id}: {e}")),
                    Err(e) => return Check::NotYet(format!("a digest task failed: {e}")),
                }
            }
            digests.sort_by_key(|(id, _)| *id);
            match views::compare_digests(&digests) {
                DigestCompare::Identical => Check::Done(()),
                DigestCompare::NotSameIndex(why) => Check::NotYet(why),
                DigestCompare::Diverged(why) => Check::Fail(anyhow!(why)),
            }
        })
        .await
        .map_err(|e| self.with_logs(e))
    }

    /// Fails, naming them with their log tails, if any node exited without being killed by
    /// the harness (a crash); tests call it at the end to catch a node that died quietly.
    pub fn check_no_crashes(&self) -> anyhow::Result<()> {
        let crashed: Vec<String> = self
            .nodes
            .values()
            .filter_map(|n| n.exited().map(|s| (n, s)))
            .map(|(n, s)| {
                format!(
                    "node {} exited ({s}):\n{}",
                    n.id,
                    tail(&n.log_path(), TAIL_LINES)
                )
            })
            .collect();
        if crashed.is_empty() {
            Ok(())
        } else {
            bail!("{}", crashed.join("\n"))
        }
    }

    /// `err` (its chain on one line) followed by the tail of node `id`'s log.
    pub(crate) fn with_log_of(&self, id: u64, err: anyhow::Error) -> anyhow::Error {
        let n = self.node(id);
        anyhow!(
            "{err:#}\n\n--- node {id} log ({}), last {TAIL_LINES} lines:\n{}",
            n.log_path().display(),
            tail(&n.log_path(), TAIL_LINES)
        )
    }

    /// `err` (its chain on one line) followed by the tail of every node's log.
    pub(crate) fn with_logs(&self, err: anyhow::Error) -> anyhow::Error {
        let mut text = String::new();
        for n in self.nodes.values() {
            let state = match (n.is_live(), n.exited()) {
                (true, _) => "live".to_owned(),
                (false, Some(s)) => format!("exited: {s}"),
                (false, None) if n.is_running() => "paused".to_owned(),
                (false, None) => "stopped".to_owned(),
            };
            text.push_str(&format!(
                "\n--- node {} ({state}) {}, last {TAIL_LINES} lines:\n{}\n",
                n.id,
                n.log_path().display(),
                tail(&n.log_path(), TAIL_LINES)
            ));
        }
        anyhow!("{err:#}\n{text}")
    }
}

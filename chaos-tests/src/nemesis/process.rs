//! Faults of the node processes: kill -9 (one node, the leader, a majority) and restart on
//! the same data; SIGSTOP past the election timeout and SIGCONT; a restart under a skewed wall
//! clock; and the membership change of a wiped node (removed, wiped, re-added by snapshot,
//! promoted).

use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;

use super::{retry, FaultKind, Nemesis, CHANGE_TIMEOUT, SKEW_BEYOND, SKEW_WITHIN};
use crate::history::{Phase, WIPE};

impl Nemesis {
    /// kill -9 of one node, the leader or a majority, or a pause; held, then restarted or resumed.
    pub(super) async fn process_fault(
        &mut self,
        kind: FaultKind,
    ) -> anyhow::Result<(Vec<u64>, String)> {
        let ids = self.target.cluster.node_ids();
        Ok(match kind {
            FaultKind::Kill => {
                let id = *ids.choose(&mut self.rng).expect("nodes");
                self.crash(kind, &[id], "kill -9").await?;
                (vec![id], "kill -9 and restart".to_owned())
            }
            FaultKind::KillLeader => {
                let id = self.target.cluster.leader().await?;
                self.crash(kind, &[id], "kill -9 of the leader").await?;
                (vec![id], "kill -9 of the leader and restart".to_owned())
            }
            FaultKind::KillMajority => {
                let mut v = ids.clone();
                v.shuffle(&mut self.rng);
                v.truncate(ids.len() / 2 + 1);
                v.sort_unstable();
                self.crash(kind, &v, "kill -9 of a majority").await?;
                (v, "kill -9 of a majority, then restart".to_owned())
            }
            FaultKind::Pause => {
                let id = if self.rng.gen_bool(0.5) {
                    self.target.cluster.leader().await?
                } else {
                    *ids.choose(&mut self.rng).expect("nodes")
                };
                self.event(kind, Phase::Start, &[id], "SIGSTOP", None);
                self.target.cluster.pause(id)?;
                self.hold().await;
                self.target.cluster.resume(id)?;
                self.event(kind, Phase::Stop, &[id], "SIGCONT", None);
                (
                    vec![id],
                    "SIGSTOP past the election timeout, SIGCONT".to_owned(),
                )
            }
            _ => unreachable!("{kind:?} is not a process fault"),
        })
    }

    /// Kills `nodes`, holds, restarts them on their data.
    async fn crash(&mut self, kind: FaultKind, nodes: &[u64], detail: &str) -> anyhow::Result<()> {
        self.event(kind, Phase::Start, nodes, detail, None);
        for &id in nodes {
            self.target.cluster.kill(id);
        }
        self.hold().await;
        for &id in nodes {
            self.target.cluster.restart(id).await?;
        }
        self.event(kind, Phase::Stop, nodes, "restarted on the same data", None);
        Ok(())
    }

    /// One node restarted with its wall clock moved; held, then restarted on true time.
    pub(super) async fn clock_fault(
        &mut self,
        kind: FaultKind,
    ) -> anyhow::Result<(Vec<u64>, String)> {
        let ids = self.target.cluster.node_ids();
        Ok(match kind {
            FaultKind::SkewWithin | FaultKind::SkewBeyond => {
                let id = *ids.choose(&mut self.rng).expect("nodes");
                let offset = if kind == FaultKind::SkewWithin {
                    SKEW_WITHIN
                } else {
                    SKEW_BEYOND
                };
                let detail = format!("node {id} clock {offset} s");
                self.event(kind, Phase::Start, &[id], &detail, None);
                self.target.cluster.set_clock_offset(id, Some(offset));
                self.target.cluster.restart(id).await?;
                self.hold().await;
                self.target.cluster.set_clock_offset(id, None);
                self.target.cluster.restart(id).await?;
                self.event(kind, Phase::Stop, &[id], "clock true again", None);
                (vec![id], detail)
            }
            _ => unreachable!("{kind:?} is not a clock fault"),
        })
    }

    /// Removes a voter (the leader half the time), wipes its disk, starts it empty, adds it
    /// back as a learner, waits until it caught up (by snapshot: the others compacted their
    /// logs) and promotes it again.
    pub(super) async fn replace(&mut self) -> anyhow::Result<u64> {
        let kind = FaultKind::Replace;
        let ids = self.target.cluster.node_ids();
        let id = if self.rng.gen_bool(0.5) {
            self.target.cluster.leader().await?
        } else {
            *ids.choose(&mut self.rng).expect("nodes")
        };
        let admin = self
            .target
            .cluster
            .admin_client()
            .with_timeout(Duration::from_secs(10));
        let rest: Vec<u64> = ids.iter().copied().filter(|&i| i != id).collect();
        self.event(kind, Phase::Start, &[id], "removed from the voters", None);
        retry("remove the voter", || {
            admin.change_membership(rest.clone(), false)
        })
        .await?;
        self.record(WIPE, Phase::Start, &[id], "killed, data dir deleted", None);
        self.target.cluster.wipe(id);
        self.event(kind, Phase::Start, &[id], "disk wiped", None);
        // The others compact their logs, so the empty node must take a snapshot.
        for &other in &rest {
            let _ = self
                .target
                .cluster
                .admin_client_for(other)
                .with_timeout(Duration::from_secs(10))
                .trigger_snapshot()
                .await;
        }
        self.target.cluster.restart(id).await?;
        self.record(WIPE, Phase::Stop, &[id], "started empty", None);
        let url = self.target.cluster.raft_url(id);
        retry("add the learner", || admin.add_learner(id, url.clone())).await?;
        self.target.cluster.wait_converged(CHANGE_TIMEOUT).await?;
        retry("promote the learner", || {
            admin.change_membership(ids.clone(), false)
        })
        .await?;
        self.event(kind, Phase::Stop, &[id], "back as a voter", None);
        Ok(id)
    }
}

//! Faults of the Raft links between a site's nodes, through the proxies of a proxied cluster:
//! partitions of every shape, a one-way cut, delay and loss.

use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;

use super::{FaultKind, Nemesis};
use crate::history::Phase;
use crate::net::LinkFault;

impl Nemesis {
    /// A partition, a one-way cut, delay or loss on the Raft links; held, then healed.
    pub(super) async fn link_fault(
        &mut self,
        kind: FaultKind,
    ) -> anyhow::Result<(Vec<u64>, String)> {
        let ids = self.target.cluster.node_ids();
        Ok(match kind {
            FaultKind::IsolateLeader => {
                let leader = self.target.cluster.leader().await?;
                let rest: Vec<u64> = ids.iter().copied().filter(|&i| i != leader).collect();
                self.partition(kind, vec![vec![leader], rest]).await
            }
            FaultKind::Halves => {
                let mut v = ids.clone();
                v.shuffle(&mut self.rng);
                let minority = v.split_off(ids.len() / 2 + 1);
                self.partition(kind, vec![v, minority]).await
            }
            FaultKind::Ring => {
                let mut v = ids.clone();
                v.shuffle(&mut self.rng);
                let faults = self.target.cluster.faults();
                let n = v.len();
                for (i, &a) in v.iter().enumerate() {
                    for (j, &b) in v.iter().enumerate() {
                        let d = (i + n - j) % n;
                        if a != b && d != 1 && d != n - 1 {
                            faults.cut(a, b);
                        }
                    }
                }
                let detail = format!("ring {v:?}: each node hears only its two neighbours");
                self.held(kind, &v, &detail).await;
                (v, detail)
            }
            FaultKind::Bridge => {
                let mut v = ids.clone();
                v.shuffle(&mut self.rng);
                let (left, rest) = v.split_at(2);
                let (bridge, right) = rest.split_first().expect("5 nodes");
                let faults = self.target.cluster.faults();
                for &a in left {
                    for &b in right {
                        faults.cut(a, b);
                        faults.cut(b, a);
                    }
                }
                let detail = format!("{left:?} | {right:?}, bridged by {bridge}");
                self.held(kind, &v, &detail).await;
                (v, detail)
            }
            FaultKind::OneWay => {
                let leader = self.target.cluster.leader().await?;
                let other = *ids
                    .iter()
                    .filter(|&&i| i != leader)
                    .collect::<Vec<_>>()
                    .choose(&mut self.rng)
                    .expect("followers");
                let (from, to) = if self.rng.gen_bool(0.5) {
                    (leader, *other)
                } else {
                    (*other, leader)
                };
                self.target.cluster.faults().cut(from, to);
                let detail = format!("{from} -> {to} cut, {to} -> {from} open");
                self.held(kind, &[from, to], &detail).await;
                (vec![from, to], detail)
            }
            FaultKind::SlowLinks | FaultKind::LossyLinks => {
                let faults = self.target.cluster.faults();
                let mut links = Vec::new();
                for &a in &ids {
                    for &b in &ids {
                        if a != b && self.rng.gen_bool(0.5) {
                            let f = if kind == FaultKind::SlowLinks {
                                LinkFault::Delay(Duration::from_millis(
                                    self.rng.gen_range(20..=200),
                                ))
                            } else {
                                LinkFault::Loss(0.3)
                            };
                            faults.set(a, b, f);
                            links.push(format!("{a}->{b}"));
                        }
                    }
                }
                let detail = format!(
                    "{} on {}",
                    if kind == FaultKind::SlowLinks {
                        "delay"
                    } else {
                        "30% loss"
                    },
                    links.join(" ")
                );
                self.held(kind, &ids, &detail).await;
                (ids.clone(), detail)
            }
            _ => unreachable!("{kind:?} is not a link fault"),
        })
    }

    /// Cuts every link between different groups, holds, heals.
    async fn partition(&mut self, kind: FaultKind, groups: Vec<Vec<u64>>) -> (Vec<u64>, String) {
        let detail = groups
            .iter()
            .map(|g| format!("{g:?}"))
            .collect::<Vec<_>>()
            .join(" | ");
        self.target.cluster.faults().partition(&groups);
        let nodes: Vec<u64> = groups.concat();
        self.held(kind, &nodes, &detail).await;
        (nodes, detail)
    }

    /// Records a link fault already set, holds it, and heals every link.
    async fn held(&mut self, kind: FaultKind, nodes: &[u64], detail: &str) {
        self.event(kind, Phase::Start, nodes, detail, None);
        self.hold().await;
        self.target.cluster.faults().heal_all();
        self.event(kind, Phase::Stop, nodes, "links healed", None);
    }
}

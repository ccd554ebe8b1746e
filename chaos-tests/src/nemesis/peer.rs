//! Faults of the federation: the peer site behind its proxy down, cut off, slow, answering
//! garbage or restarted, and the origin's leader killed while fan-outs are queued for it.

use std::time::Duration;

use rand::seq::SliceRandom;

use super::{FaultKind, Nemesis};
use crate::history::Phase;
use crate::net::SiteMode;

impl Nemesis {
    /// The peer site down, cut off, slow, answering garbage or restarted, or the origin's
    /// leader killed while the peer is down; held, then healed.
    pub(super) async fn peer_fault(
        &mut self,
        kind: FaultKind,
    ) -> anyhow::Result<(Vec<u64>, String)> {
        Ok(match kind {
            FaultKind::PeerDown
            | FaultKind::PeerCut
            | FaultKind::PeerSlow
            | FaultKind::PeerGarbage => {
                let mode = match kind {
                    FaultKind::PeerDown => SiteMode::Down,
                    FaultKind::PeerCut => SiteMode::Cut,
                    FaultKind::PeerSlow => SiteMode::Slow(Duration::from_millis(700)),
                    _ => SiteMode::Garbage,
                };
                let (name, _, proxy) = self.target.peer.as_ref().expect("federated");
                let detail = format!("{name} {mode:?}");
                proxy.set_mode(mode);
                self.event(kind, Phase::Start, &[], &detail, None);
                self.hold().await;
                let (_, _, proxy) = self.target.peer.as_ref().expect("federated");
                proxy.set_mode(SiteMode::Pass);
                self.event(kind, Phase::Stop, &[], "peer reachable", None);
                (vec![], detail)
            }
            FaultKind::PeerRestart => {
                let (_, peer, _) = self.target.peer.as_mut().expect("federated");
                let id = *peer.node_ids().choose(&mut self.rng).expect("peer nodes");
                self.event(
                    kind,
                    Phase::Start,
                    &[],
                    &format!("peer node {id} killed"),
                    None,
                );
                let (_, peer, _) = self.target.peer.as_mut().expect("federated");
                peer.kill(id);
                self.hold().await;
                let (_, peer, _) = self.target.peer.as_mut().expect("federated");
                peer.restart(id).await?;
                self.event(kind, Phase::Stop, &[], "peer restarted", None);
                (vec![], format!("peer node {id} killed and restarted"))
            }
            FaultKind::OriginLeaderWithPeerDown => {
                let (_, _, proxy) = self.target.peer.as_ref().expect("federated");
                proxy.set_mode(SiteMode::Down);
                self.event(kind, Phase::Start, &[], "peer down", None);
                self.hold().await;
                let leader = self.target.cluster.leader().await?;
                self.target.cluster.kill(leader);
                self.event(
                    kind,
                    Phase::Start,
                    &[leader],
                    "origin leader killed with fan-outs queued",
                    None,
                );
                self.hold().await;
                self.target.cluster.restart(leader).await?;
                let (_, _, proxy) = self.target.peer.as_ref().expect("federated");
                proxy.set_mode(SiteMode::Pass);
                self.event(
                    kind,
                    Phase::Stop,
                    &[leader],
                    "leader restarted, peer up",
                    None,
                );
                (
                    vec![leader],
                    "origin leader killed while the peer was down".to_owned(),
                )
            }
            _ => unreachable!("{kind:?} is not a federation fault"),
        })
    }
}

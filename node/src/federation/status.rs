//! `GET /v1/federation/status`: each peer's queue, from the replicated outbox, and its
//! reachability as the delivering leader sees it (the HTTP layer asks the leader when this node
//! does not lead).

use sessync_proto::federation::{FederationStatus, PeerStatus};

use super::Federation;
use crate::runtime::Runtime;

/// The status as this node knows it (reachability only if it leads).
pub(crate) fn local(rt: &Runtime, fed: &Federation) -> FederationStatus {
    let leads = rt.is_leader();
    let now = std::time::Instant::now();
    let mut peers: Vec<PeerStatus> = fed
        .config()
        .peers
        .iter()
        .map(|p| {
            let (queued, oldest) = rt.state().read(|s| {
                let l = s.ledger();
                (
                    l.queued(&p.name) as u64,
                    l.queue(&p.name).map(|e| e.queued_at).min(),
                )
            });
            let h = if leads {
                fed.health(&p.name)
            } else {
                Default::default()
            };
            PeerStatus {
                site: p.name.clone(),
                urls: p.urls.clone(),
                reachable: h.reachable,
                queued,
                outbox_limit: fed.config().outbox_limit,
                oldest_queued_at: oldest,
                last_delivered_at: h.last_delivered_at,
                last_error: h.last_error,
                consecutive_failures: h.consecutive_failures,
                next_attempt_in_ms: h
                    .next_attempt
                    .filter(|t| *t > now)
                    .map(|t| t.duration_since(now).as_millis() as u64),
            }
        })
        .collect();
    // Entries queued for a site that is no longer configured stay in the outbox (and count
    // nowhere else): show them, so an operator sees them.
    let orphans: Vec<(
        sessync_proto::SiteName,
        u64,
        Option<sessync_proto::Timestamp>,
    )> = rt.state().read(|s| {
        let mut v: Vec<_> = Vec::new();
        for e in s.ledger().outbox() {
            if fed.peer(&e.site).is_some() {
                continue;
            }
            match v.last_mut() {
                Some((site, n, _)) if *site == e.site => *n += 1,
                _ => v.push((e.site.clone(), 1, Some(e.queued_at))),
            }
        }
        v
    });
    for (site, queued, oldest) in orphans {
        peers.push(PeerStatus {
            site,
            urls: Vec::new(),
            reachable: None,
            queued,
            outbox_limit: fed.config().outbox_limit,
            oldest_queued_at: oldest,
            last_delivered_at: None,
            last_error: Some(
                "not in [[federation.peers]]: these entries are not delivered".to_owned(),
            ),
            consecutive_failures: 0,
            next_attempt_in_ms: None,
        });
    }
    FederationStatus {
        site: fed.site().clone(),
        node_id: rt.node_id(),
        peers,
    }
}

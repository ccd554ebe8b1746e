//! `GET /v1/federation/status` (role admin): each peer's queue, from the replicated outbox, and
//! its reachability as the delivering leader sees it. A follower asks the leader.

use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sessync_proto::federation::{FederationStatus, PeerStatus};

use crate::api::auth::AdminCaller;
use crate::api::forward;
use crate::api::App;

/// Where the status is served.
pub const STATUS_PATH: &str = "/v1/federation/status";

pub fn routes() -> Router<App> {
    Router::new().route(STATUS_PATH, get(status))
}

async fn status(State(app): State<App>, _admin: AdminCaller, headers: HeaderMap) -> Response {
    if !app.is_leader() {
        let r = forward::relay(&app, Method::GET, STATUS_PATH, &headers, Vec::new()).await;
        if r.status().is_success() {
            return r;
        }
    }
    // No leader to ask: what this replica knows (the queues, no reachability).
    Json(local(&app)).into_response()
}

/// The status as this node knows it (reachability only if it leads).
pub fn local(app: &App) -> FederationStatus {
    let fed = app.federation();
    let leads = app.is_leader();
    let now = std::time::Instant::now();
    let mut peers: Vec<PeerStatus> = fed
        .config()
        .peers
        .iter()
        .map(|p| {
            let (queued, oldest) = app.state().read(|s| {
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
    )> = app.state().read(|s| {
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
        node_id: app.node_id(),
        peers,
    }
}

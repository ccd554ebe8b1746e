//! The end of a chaos run: every fault healed, the nodes converged and the outboxes drained,
//! then the final reads the checker judges the run by, appended to the history.

use std::time::Duration;

use anyhow::Context;
use sessync_client::{AuditQuery, ClientError};
use sessync_proto::api::{Consistency, ValidateRequest};
use tokio::time::Instant;

use super::{users, CONVERGE_TIMEOUT};
use crate::cluster::TestCluster;
use crate::history::{Entry, Final, HistoryWriter, Seen};
use crate::nemesis::Target;
use crate::net::{SiteMode, SiteProxy};
use crate::sites::{now_ms, PeerSigning, SITE_A, SITE_B};
use crate::workload::{seen_state, seen_validate, Workload};

/// Heals every fault, waits for convergence and the outboxes to drain, then reads back every
/// session (linearizably, and locally on every node), each user's active sessions, each
/// node's digest, and the fan-out records; sends forged and replayed peer requests.
pub(super) async fn heal_and_read(
    t: &mut Target,
    w: &Workload,
    h: &HistoryWriter,
) -> anyhow::Result<()> {
    t.cluster.faults().heal_all();
    for id in t.cluster.node_ids() {
        if !t.cluster.is_live(id) {
            let _ = t.cluster.resume(id);
            if !t.cluster.is_live(id) {
                t.cluster.restart(id).await?;
            }
        }
    }
    if let Some((_, peer, proxy)) = &mut t.peer {
        proxy.set_mode(SiteMode::Pass);
        for id in peer.node_ids() {
            if !peer.is_live(id) {
                peer.restart(id).await?;
            }
        }
    }
    t.cluster.wait_converged(CONVERGE_TIMEOUT).await?;
    let mut clusters: Vec<(String, &TestCluster)> = vec![(t.name.clone(), &t.cluster)];
    if let Some((name, peer, _)) = &t.peer {
        peer.wait_converged(CONVERGE_TIMEOUT).await?;
        wait_outbox_empty(&t.cluster, name).await?;
        peer.wait_converged(CONVERGE_TIMEOUT).await?;
        clusters.push((name.clone(), peer));
    }
    let held = w.created_sessions();
    for (i, (site, c)) in clusters.iter().enumerate() {
        let admin = c.admin_client().with_timeout(Duration::from_secs(10));
        for (_, id, token) in held.iter().filter(|(si, ..)| *si == i) {
            let state = match admin.get_session(id).await {
                Ok(v) => seen_state(&v),
                Err(ClientError::NotFound { .. }) => Seen::Absent,
                Err(e) => return Err(anyhow::anyhow!("final read of {id}: {e}")),
            };
            h.write(&Entry::Final(Final::Session {
                site: site.clone(),
                session: id.clone(),
                state,
            }))?;
            for node in c.node_ids() {
                let req = ValidateRequest {
                    token: token.clone(),
                    touch: false,
                    consistency: Consistency::Local,
                };
                let v = c
                    .app_client_for(node)
                    .with_timeout(Duration::from_secs(5))
                    .validate(&req)
                    .await
                    .with_context(|| format!("final local validate on node {node}"))?;
                let state = seen_validate(&v);
                h.write(&Entry::Final(Final::Local {
                    site: site.clone(),
                    node,
                    session: id.clone(),
                    state,
                }))?;
            }
        }
        for user in users() {
            let active = admin
                .list_sessions(&user, false)
                .await?
                .into_iter()
                .filter(|s| s.state == sessync_proto::SessionState::Active)
                .map(|s| s.session_id)
                .collect();
            h.write(&Entry::Final(Final::Active {
                site: site.clone(),
                user,
                active,
            }))?;
        }
        for node in c.node_ids() {
            let d = c
                .admin_client_for(node)
                .with_timeout(Duration::from_secs(10))
                .state_digest()
                .await?;
            h.write(&Entry::Final(Final::Digest {
                site: site.clone(),
                node,
                applied: d.applied.unwrap_or(0),
                digest: d.digest,
            }))?;
        }
    }
    if let Some((name, peer, proxy)) = &t.peer {
        // Replays first, so the records read after them would show an operation applied twice.
        forge_and_replay(name, peer, proxy, h).await?;
        fanout_records(&t.name, &t.cluster, name, peer, h).await?;
    }
    Ok(())
}

async fn wait_outbox_empty(origin: &TestCluster, target: &str) -> anyhow::Result<()> {
    let admin = origin.admin_client().with_timeout(Duration::from_secs(5));
    let t0 = Instant::now();
    loop {
        let queued = match admin.federation_status().await {
            Ok(s) => s
                .peers
                .iter()
                .filter(|p| p.site.as_str() == target)
                .map(|p| p.queued)
                .sum::<u64>(),
            Err(_) => u64::MAX,
        };
        if queued == 0 || t0.elapsed() > CONVERGE_TIMEOUT {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The origin's queued fan-outs and outbox, and what the target applied, from their audit logs.
async fn fanout_records(
    origin: &str,
    a: &TestCluster,
    target: &str,
    b: &TestCluster,
    h: &HistoryWriter,
) -> anyhow::Result<()> {
    let admin_a = a.admin_client().with_timeout(Duration::from_secs(10));
    let queued = admin_a
        .audit(&AuditQuery {
            kind: Some("fanout_queued".into()),
            ..Default::default()
        })
        .await?;
    for e in queued {
        if e.detail["site"].as_str() == Some(target) {
            h.write(&Entry::Final(Final::FanoutQueued {
                origin: origin.into(),
                target: target.into(),
                op_id: e.detail["op_id"].as_str().unwrap_or_default().into(),
            }))?;
        }
    }
    let pending = admin_a
        .federation_status()
        .await?
        .peers
        .iter()
        .filter(|p| p.site.as_str() == target)
        .map(|p| p.queued)
        .sum();
    h.write(&Entry::Final(Final::Outbox {
        origin: origin.into(),
        target: target.into(),
        pending,
    }))?;
    let received = b
        .admin_client()
        .with_timeout(Duration::from_secs(10))
        .audit(&AuditQuery {
            kind: Some("fanout_received".into()),
            ..Default::default()
        })
        .await?;
    for e in received {
        h.write(&Entry::Final(Final::FanoutReceived {
            site: target.into(),
            origin: e.detail["origin"].as_str().unwrap_or_default().into(),
            op_id: e.detail["op_id"].as_str().unwrap_or_default().into(),
            duplicate: e.detail["duplicate"].as_bool().unwrap_or(false),
        }))?;
    }
    Ok(())
}

/// Sends the peer site a forged request (signed with a wrong secret, a fresh op id) and the
/// origin's captured requests again, verbatim, and records what it answered.
async fn forge_and_replay(
    site: &str,
    b: &TestCluster,
    proxy: &SiteProxy,
    h: &HistoryWriter,
) -> anyhow::Result<()> {
    let op_id = format!("forged-{}", now_ms());
    let body = serde_json::json!({
        "op_id": op_id,
        "origin_site": SITE_A,
        "user_id": "user-0",
        "origin_time": sessync_proto::Timestamp(now_ms()),
    })
    .to_string();
    let path = "/v1/federation/invalidate";
    let nonce = hex::encode(rand::random::<[u8; 16]>());
    let signing = PeerSigning {
        path,
        origin: SITE_A,
        target: SITE_B,
        timestamp_ms: now_ms(),
        nonce: &nonce,
        body: body.as_bytes(),
    };
    let mut rb = reqwest::Client::new().post(format!("{}{path}", b.url(b.node_ids()[0])));
    for (k, v) in signing.headers("not-the-secret") {
        rb = rb.header(k, v);
    }
    let resp = rb
        .header("content-type", "application/json")
        .timeout(Duration::from_secs(5))
        .body(body)
        .send()
        .await?;
    h.write(&Entry::Final(Final::Forged {
        site: site.into(),
        op_id,
        replay: false,
        status: resp.status().as_u16(),
        applied: None,
    }))?;
    for req in proxy.captured().into_iter().take(3) {
        let (status, body) = proxy.replay(&req).await?;
        let applied = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["applied"].as_bool());
        let op_id = String::from_utf8_lossy(&req)
            .split("\"op_id\":\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default()
            .to_owned();
        h.write(&Entry::Final(Final::Forged {
            site: site.into(),
            op_id,
            replay: true,
            status,
            applied,
        }))?;
    }
    Ok(())
}

//! The client and `sessyncctl` follow the list endpoints' cursors against a real cluster: a
//! list longer than the largest page (1000) comes whole, and a limit over 1000 is a limit on
//! what the caller gets, not a page size the node refuses.

use std::collections::BTreeSet;

use anyhow::ensure;
use futures::stream::{self, StreamExt, TryStreamExt};
use sessync_chaos_tests::{ClusterOptions, TestCluster};
use sessync_client::AuditQuery;
use sessync_proto::api::CreateSessionRequest;
use sessync_proto::UserId;

use crate::ctl::ctl;

/// More than one full page of users, sessions and audit events.
const USERS: usize = 1100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_longer_than_a_page_and_limits_over_1000_come_whole() -> anyhow::Result<()> {
    // Three nodes: the client's reads take turns over them, so each page comes from another
    // node than the one that gave its cursor.
    let cluster = TestCluster::start(ClusterOptions {
        policy_toml: "max_concurrent_sessions = 0".to_owned(),
        ..ClusterOptions::default()
    })
    .await?;
    let app = cluster.app_client();
    stream::iter(0..USERS)
        .map(|n| {
            let app = app.clone();
            async move {
                app.create_session(&CreateSessionRequest {
                    user_id: UserId::parse_field(&format!("pu-{n:04}"), "user_id").unwrap(),
                    device: Default::default(),
                    origin: None,
                    idempotency_key: None,
                })
                .await
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    let admin = cluster.admin_client();

    // Every active user once, in order, across pages of at most 1000.
    let users = admin.active_users().await?;
    let ids: Vec<String> = users.iter().map(|u| u.user_id.to_string()).collect();
    let want: Vec<String> = (0..USERS).map(|n| format!("pu-{n:04}")).collect();
    ensure!(
        ids == want,
        "{} users listed, not the {USERS} made",
        ids.len()
    );

    // A limit over the largest page: exactly that many events, newest first, none twice.
    let query = AuditQuery {
        kind: Some("session_created".to_owned()),
        limit: Some(1050),
        ..AuditQuery::default()
    };
    let events = admin.audit(&query).await?;
    ensure!(events.len() == 1050, "{} events", events.len());
    ensure!(
        events.windows(2).all(|w| w[0].seq > w[1].seq),
        "not newest first without repeats"
    );
    // No limit: every one, over two pages.
    let all = admin
        .audit(&AuditQuery {
            limit: None,
            ..query.clone()
        })
        .await?;
    ensure!(all.len() == USERS, "{} events of {USERS}", all.len());
    ensure!(
        all[..1050] == events[..],
        "the limited list is the newest of the whole"
    );
    let users_seen: BTreeSet<_> = all.iter().filter_map(|e| e.user_id.clone()).collect();
    ensure!(users_seen.len() == USERS);

    // The CLI the same way.
    let endpoints = cluster.urls().join(",");
    let run = ctl(
        &[],
        &[
            "--endpoints",
            &endpoints,
            "--api-key",
            cluster.admin_key(),
            "--output",
            "json",
            "audit",
            "list",
            "--kind",
            "session_created",
            "--limit",
            "1050",
        ],
    )?
    .expect(0)?;
    let lines = run.json_lines()?;
    ensure!(lines.len() == 1050, "sessyncctl listed {}", lines.len());
    ensure!(lines[1049]["seq"] == serde_json::json!(events[1049].seq));
    Ok(())
}

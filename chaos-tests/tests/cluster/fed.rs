//! What the federation tests share: names, a login, counting a user's live sessions, reading
//! audit events, bounded polling, and sending a hand-signed request to a node of a site.

#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use sessync_client::{AuditQuery, Client};
use sessync_proto::api::{AuditEvent, CreateSessionRequest, CreateSessionResponse};
use sessync_proto::{SessionState, SessionView, SiteName, UserId};

pub(crate) fn user(u: &str) -> UserId {
    UserId::parse_field(u, "user_id").unwrap()
}

pub(crate) fn site(s: &str) -> SiteName {
    SiteName::parse_field(s, "site").unwrap()
}

pub(crate) async fn login(client: &Client, u: &str) -> anyhow::Result<CreateSessionResponse> {
    Ok(client
        .create_session(&CreateSessionRequest {
            user_id: user(u),
            device: Default::default(),
            origin: None,
            idempotency_key: None,
        })
        .await?)
}

/// The user's sessions (all states), linearizably.
pub(crate) async fn sessions(client: &Client, u: &str) -> anyhow::Result<Vec<SessionView>> {
    Ok(client.list_sessions(&user(u), true).await?)
}

/// How many of the user's sessions are not ended.
pub(crate) async fn live(client: &Client, u: &str) -> anyhow::Result<usize> {
    Ok(sessions(client, u)
        .await?
        .iter()
        .filter(|s| s.state != SessionState::Ended)
        .count())
}

/// Up to 1000 newest audit events of `kind`.
pub(crate) async fn audit(admin: &Client, kind: &str) -> anyhow::Result<Vec<AuditEvent>> {
    Ok(admin
        .audit(&AuditQuery {
            kind: Some(kind.to_owned()),
            limit: Some(1000),
            ..Default::default()
        })
        .await?)
}

/// Polls `f` every 100 ms until it gives `Some`, for at most `timeout`.
pub(crate) async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => "not yet".to_owned(),
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() >= deadline {
            anyhow::bail!("gave up waiting for {what} after {timeout:?} (last: {last})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A request as a peer site sends it: the four signed headers and the body.
#[derive(Clone, Debug)]
pub(crate) struct PeerRequest {
    pub path: String,
    pub site: String,
    pub timestamp_ms: u64,
    pub nonce: String,
    pub signature: String,
    pub body: Vec<u8>,
}

impl PeerRequest {
    /// A correctly signed invalidate (all of `u`'s sessions) from `site-a`.
    pub(crate) fn invalidate(secret: &str, op_id: &str, u: &str) -> PeerRequest {
        let body = serde_json::to_vec(&serde_json::json!({
            "op_id": op_id, "origin_site": "site-a", "user_id": u, "session_id": null
        }))
        .unwrap();
        let path = "/v1/federation/invalidate".to_owned();
        let timestamp_ms = sessync_chaos_tests::now_ms();
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let signature =
            sessync_chaos_tests::sign_peer_request(secret, &path, &body, timestamp_ms, &nonce);
        PeerRequest {
            path,
            site: "site-a".into(),
            timestamp_ms,
            nonce,
            signature,
            body,
        }
    }

    /// Signs the request again with `secret` (after a change to its parts).
    pub(crate) fn resign(mut self, secret: &str) -> PeerRequest {
        self.signature = sessync_chaos_tests::sign_peer_request(
            secret,
            &self.path,
            &self.body,
            self.timestamp_ms,
            &self.nonce,
        );
        self
    }

    /// Sends it to `base_url`; gives the status and the body's text.
    pub(crate) async fn send(&self, base_url: &str) -> anyhow::Result<(u16, String)> {
        let resp = reqwest::Client::new()
            .post(format!("{base_url}{}", self.path))
            .timeout(Duration::from_secs(10))
            .header("content-type", "application/json")
            .header("x-sessync-site", &self.site)
            .header("x-sessync-timestamp", self.timestamp_ms.to_string())
            .header("x-sessync-nonce", &self.nonce)
            .header("x-sessync-signature", &self.signature)
            .body(self.body.clone())
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await?))
    }
}

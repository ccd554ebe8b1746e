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

/// A request as a peer site sends it: the signed headers and the body.
#[derive(Clone, Debug)]
pub(crate) struct PeerRequest {
    pub path: String,
    pub site: String,
    pub target: String,
    pub timestamp_ms: u64,
    pub nonce: String,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

impl PeerRequest {
    /// A correctly signed invalidate (all of `u`'s sessions) from `site-a` to `site-b`, made
    /// now.
    pub(crate) fn invalidate(secret: &str, op_id: &str, u: &str) -> PeerRequest {
        let now = sessync_chaos_tests::now_ms();
        Self::invalidate_as_of(secret, op_id, u, now)
    }

    /// [`Self::invalidate`] of an operation whose origin time is `origin_ms`.
    pub(crate) fn invalidate_as_of(
        secret: &str,
        op_id: &str,
        u: &str,
        origin_ms: u64,
    ) -> PeerRequest {
        let body = serde_json::to_vec(&serde_json::json!({
            "op_id": op_id, "origin_site": "site-a", "user_id": u, "session_id": null,
            "origin_time": sessync_proto::Timestamp(origin_ms),
        }))
        .unwrap();
        PeerRequest {
            path: "/v1/federation/invalidate".to_owned(),
            site: "site-a".into(),
            target: "site-b".into(),
            timestamp_ms: sessync_chaos_tests::now_ms(),
            nonce: hex::encode(rand::random::<[u8; 16]>()),
            body,
            headers: Vec::new(),
        }
        .resign(secret)
    }

    /// Signs the request again with `secret` (after a change to its parts).
    pub(crate) fn resign(mut self, secret: &str) -> PeerRequest {
        self.headers = sessync_chaos_tests::PeerSigning {
            path: &self.path,
            origin: &self.site,
            target: &self.target,
            timestamp_ms: self.timestamp_ms,
            nonce: &self.nonce,
            body: &self.body,
        }
        .headers(secret);
        self
    }

    /// Replaces one signed header's value as sent (the signature is not made again).
    pub(crate) fn with_header(mut self, name: &str, value: &str) -> PeerRequest {
        for (k, v) in &mut self.headers {
            if *k == name {
                *v = value.to_owned();
            }
        }
        self
    }

    /// Sends it to `base_url`; gives the status, the body's text and the answer signature.
    pub(crate) async fn send_answer(
        &self,
        base_url: &str,
    ) -> anyhow::Result<(u16, String, Option<String>)> {
        let mut rb = reqwest::Client::new()
            .post(format!("{base_url}{}", self.path))
            .timeout(Duration::from_secs(10))
            .header("content-type", "application/json")
            .body(self.body.clone());
        for (k, v) in &self.headers {
            rb = rb.header(*k, v);
        }
        let resp = rb.send().await?;
        let status = resp.status().as_u16();
        let sig = resp
            .headers()
            .get("x-sessync-answer-signature")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok((status, resp.text().await?, sig))
    }

    /// Sends it to `base_url`; gives the status and the body's text.
    pub(crate) async fn send(&self, base_url: &str) -> anyhow::Result<(u16, String)> {
        let (status, body, _) = self.send_answer(base_url).await?;
        Ok((status, body))
    }
}

//! The admin endpoints (role `admin`): config, active users, audit, metrics, federation
//! status; and the open liveness and readiness probes.

use reqwest::Method;
use sessync_proto::api::{
    ActiveUser, ActiveUsersResponse, AuditEvent, AuditResponse, ConfigResponse,
};
use sessync_proto::federation::FederationStatus;
use sessync_proto::{PolicyUpdate, Timestamp, UserId};

use crate::client::Client;
use crate::error::ClientError;
use crate::paths::encode_component;

/// The filters of `GET /v1/audit`; every one is optional.
///
/// # Example
///
/// ```no_run
/// # async fn demo() -> Result<(), sessync_client::ClientError> {
/// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
/// let q = sessync_client::AuditQuery {
///     user_id: Some(sessync_proto::UserId::parse_field("alice", "user_id").unwrap()),
///     limit: Some(50),
///     ..Default::default()
/// };
/// let events = client.with_api_key("admin-key").audit(&q).await?;
/// println!("{} events", events.len());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only events about this user.
    pub user_id: Option<UserId>,
    /// Only events of this kind (`session_created`, `session_ended`, `verify`, ...).
    pub kind: Option<String>,
    /// Only events at or after this cluster time.
    pub since: Option<Timestamp>,
    /// At most this many events, newest first (default: every matching one). Any number: the
    /// events come a page of at most 1000 at a time.
    pub limit: Option<u32>,
}

impl AuditQuery {
    /// The path with its filters as the query string, values percent-encoded; `limit` is not
    /// one of them (the pages are asked for at most 1000 at a time, see `Client::all_pages`).
    pub(crate) fn path(&self) -> String {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(u) = &self.user_id {
            params.push(("user_id", u.as_str().to_owned()));
        }
        if let Some(k) = &self.kind {
            params.push(("kind", k.clone()));
        }
        if let Some(s) = self.since {
            params.push(("since", s.to_rfc3339()));
        }
        let mut path = String::from("/v1/audit");
        for (i, (k, v)) in params.iter().enumerate() {
            path.push(if i == 0 { '?' } else { '&' });
            path.push_str(k);
            path.push('=');
            path.push_str(&encode_component(v));
        }
        path
    }
}

impl Client {
    /// `GET /v1/config`: the replicated policy, the build's features and the site name.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// let cfg = client.config().await?;
    /// println!("policy: {:?}", cfg.policy);
    /// # Ok(()) }
    /// ```
    pub async fn config(&self) -> Result<ConfigResponse, ClientError> {
        self.call::<(), _>(Method::GET, "/v1/config", None).await
    }

    /// `PUT /v1/config/policy` (an admin key): the keys `update` gives replace the replicated
    /// policy's, the others keep theirs; answers the new config. Audited as `policy_changed`.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "admin-key")?;
    /// let update = sessync_proto::PolicyUpdate {
    ///     idle_timeout: Some(std::time::Duration::from_secs(30 * 60)),
    ///     ..Default::default()
    /// };
    /// let cfg = client.set_policy(&update).await?;
    /// println!("policy now: {:?}", cfg.policy);
    /// # Ok(()) }
    /// ```
    pub async fn set_policy(&self, update: &PolicyUpdate) -> Result<ConfigResponse, ClientError> {
        self.call(Method::PUT, "/v1/config/policy", Some(update))
            .await
    }

    /// `GET /v1/users/active`: users with active sessions and how long they have been idle.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// for u in client.active_users().await? {
    ///     println!("{} has {} sessions, idle {}", u.user_id, u.sessions, u.idle);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn active_users(&self) -> Result<Vec<ActiveUser>, ClientError> {
        self.all_pages("/v1/users/active", None, |r: ActiveUsersResponse| {
            (r.users, r.next_cursor)
        })
        .await
    }

    /// `GET /v1/audit`: replicated audit events matching `query`.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// let q = sessync_client::AuditQuery {
    ///     kind: Some("session_ended".into()),
    ///     limit: Some(20),
    ///     ..Default::default()
    /// };
    /// for e in client.audit(&q).await? {
    ///     println!("{} {} {}", e.seq, e.at, e.kind);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, ClientError> {
        let want = query.limit.map(|l| l as usize);
        self.all_pages(&query.path(), want, |r: AuditResponse| {
            (r.events, r.next_cursor)
        })
        .await
    }

    /// `GET /v1/federation/status`: each peer site's queue of undelivered operations and
    /// whether the leader reaches it.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "admin-key")?;
    /// for p in client.federation_status().await?.peers {
    ///     println!("{}: {} queued, reachable {:?}", p.site, p.queued, p.reachable);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn federation_status(&self) -> Result<FederationStatus, ClientError> {
        self.call::<(), _>(Method::GET, "/v1/federation/status", None)
            .await
    }

    /// `GET /metrics`: the Prometheus text exposition.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// let text = client.metrics().await?;
    /// println!("{} lines", text.lines().count());
    /// # Ok(()) }
    /// ```
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let a = self.send(Method::GET, "/metrics", None, true).await?;
        if !(200..300).contains(&a.status) {
            return Err(ClientError::from_response(a.status, &a.body));
        }
        String::from_utf8(a.body).map_err(|e| ClientError::Decode(format!("/metrics: {e}")))
    }

    /// `GET /healthz` on the current endpoint only (no failover): whether that node is live.
    ///
    /// `Ok(false)` for any non-2xx answer; [`ClientError::Transport`] if it does not answer.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// if client.healthz().await? {
    ///     println!("the node is up");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn healthz(&self) -> Result<bool, ClientError> {
        self.probe("/healthz").await
    }

    /// `GET /readyz` on the current endpoint only (no failover): whether that node has a
    /// leader and has caught up.
    ///
    /// `Ok(false)` for any non-2xx answer; [`ClientError::Transport`] if it does not answer.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// if client.readyz().await? {
    ///     println!("the node has a leader and has caught up");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn readyz(&self) -> Result<bool, ClientError> {
        self.probe("/readyz").await
    }

    async fn probe(&self, path: &str) -> Result<bool, ClientError> {
        let (status, _) = self
            .with_api_key("")
            .request_raw(Method::GET, path, None, &[])
            .await?;
        Ok((200..300).contains(&status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_query_string() {
        assert_eq!(AuditQuery::default().path(), "/v1/audit");
        let q = AuditQuery {
            user_id: Some(UserId::parse_field("al ice", "user_id").unwrap()),
            kind: Some("session_ended".into()),
            since: Some(Timestamp(1_700_000_000_123)),
            limit: Some(50),
        };
        // The limit is the caller's, not a page size: the pages carry their own.
        assert_eq!(
            q.path(),
            "/v1/audit?user_id=al%20ice&kind=session_ended\
             &since=2023-11-14T22%3A13%3A20.123Z"
        );
    }
}

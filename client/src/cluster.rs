//! The Raft cluster management endpoints (role `admin`): init, status, learners, membership,
//! leadership hand-over and draining, and the node's snapshot trigger and state digest.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use sessync_proto::api::{
    AddLearnerRequest, ChangeMembershipRequest, ClusterChangeResponse, ClusterStatus,
    DrainResponse, InitRequest, TransferLeaderRequest, TransferLeaderResponse,
};

use crate::client::Client;
use crate::error::ClientError;

/// Answer of `GET /cluster/digest`: a SHA-256 over the node's whole replicated state at the
/// log index it has applied. Replicas at the same index must have the same digest.
///
/// # Example
///
/// ```no_run
/// # async fn demo() -> Result<(), sessync_client::ClientError> {
/// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
/// let d: sessync_client::StateDigest = client.with_api_key("admin-key").state_digest().await?;
/// println!("{:?} {}", d.applied, d.digest);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDigest {
    /// The log index the state reflects (None before anything was applied).
    pub applied: Option<u64>,
    /// Lowercase hex SHA-256 of every state record.
    pub digest: String,
}

/// The body of `POST /cluster/init` for `members` (node id to advertised URL).
pub(crate) fn init_request(members: &BTreeMap<u64, String>) -> InitRequest {
    InitRequest {
        members: members
            .iter()
            .map(|(id, url)| (id.to_string(), url.clone()))
            .collect(),
    }
}

impl Client {
    /// `POST /cluster/init`: starts a new cluster whose voters are `members` (node id to the
    /// URL it advertises). On an initialised cluster: [`ClientError::Conflict`] with code
    /// `already_initialized`.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// let members = std::collections::BTreeMap::from([
    ///     (1, "http://127.0.0.1:7101".to_string()),
    ///     (2, "http://127.0.0.1:7102".to_string()),
    ///     (3, "http://127.0.0.1:7103".to_string()),
    /// ]);
    /// client.with_api_key("admin-key").cluster_init(members).await?;
    /// # Ok(()) }
    /// ```
    pub async fn cluster_init(
        &self,
        members: BTreeMap<u64, String>,
    ) -> Result<ClusterChangeResponse, ClientError> {
        let body = init_request(&members);
        self.call(Method::POST, "/cluster/init", Some(&body)).await
    }

    /// `GET /cluster/status`: the answering node's view of the Raft cluster. Pin the client
    /// ([`Client::pinned`]) to ask one particular node.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// let st = client.with_api_key("admin-key").cluster_status().await?;
    /// println!("node {} is {}, leader {:?}, term {}", st.node_id, st.role, st.leader, st.term);
    /// # Ok(()) }
    /// ```
    pub async fn cluster_status(&self) -> Result<ClusterStatus, ClientError> {
        self.call::<(), _>(Method::GET, "/cluster/status", None)
            .await
    }

    /// `POST /cluster/learners`: adds node `node_id`, reachable at `url`, as a learner that
    /// receives the log but does not vote.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// let admin = client.with_api_key("admin-key");
    /// admin.add_learner(4, "http://127.0.0.1:7104").await?;
    /// # Ok(()) }
    /// ```
    pub async fn add_learner(
        &self,
        node_id: u64,
        url: impl Into<String>,
    ) -> Result<ClusterChangeResponse, ClientError> {
        let body = AddLearnerRequest {
            node_id,
            url: url.into(),
        };
        self.call(Method::POST, "/cluster/learners", Some(&body))
            .await
    }

    /// `POST /cluster/membership`: makes `voters` the set of voters; removed voters stay as
    /// learners if `retain`, else they leave the cluster.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// let admin = client.with_api_key("admin-key");
    /// admin.change_membership(vec![1, 2, 4], false).await?;
    /// # Ok(()) }
    /// ```
    pub async fn change_membership(
        &self,
        voters: Vec<u64>,
        retain: bool,
    ) -> Result<ClusterChangeResponse, ClientError> {
        let body = ChangeMembershipRequest { voters, retain };
        self.call(Method::POST, "/cluster/membership", Some(&body))
            .await
    }

    /// `POST /cluster/transfer-leader`: the leader hands leadership to voter `to`, or (`None`)
    /// to the voter furthest along its log, holding writes meanwhile; the answer names the
    /// new leader, the old one and how long it took. Any node takes it (followers forward it).
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// let t = client.with_api_key("admin-key").transfer_leader(Some(2)).await?;
    /// println!("node {} leads now (was {}), {} ms", t.leader, t.previous_leader, t.took_ms);
    /// # Ok(()) }
    /// ```
    pub async fn transfer_leader(
        &self,
        to: Option<u64>,
    ) -> Result<TransferLeaderResponse, ClientError> {
        let body = TransferLeaderRequest { to };
        self.call(Method::POST, "/cluster/transfer-leader", Some(&body))
            .await
    }

    /// `POST /cluster/drain`: the answering node hands over leadership if it leads, stops
    /// campaigning and answers `/readyz` 503 until it restarts. Pin the client
    /// ([`Client::pinned`]) to drain one particular node.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// let d = client.with_api_key("admin-key").pinned(0).drain().await?;
    /// println!("node {} drains; handed over: {:?}", d.node_id, d.transfer);
    /// # Ok(()) }
    /// ```
    pub async fn drain(&self) -> Result<DrainResponse, ClientError> {
        self.call::<(), _>(Method::POST, "/cluster/drain", None)
            .await
    }

    /// `POST /cluster/snapshot`: asks the answering node to take a snapshot of its state now
    /// (and so compact its log).
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// client.with_api_key("admin-key").trigger_snapshot().await?;
    /// # Ok(()) }
    /// ```
    pub async fn trigger_snapshot(&self) -> Result<ClusterChangeResponse, ClientError> {
        self.call::<(), _>(Method::POST, "/cluster/snapshot", None)
            .await
    }

    /// `GET /cluster/digest`: the answering node's applied index and state digest. Pin the
    /// client to compare replicas.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// let d = client.with_api_key("admin-key").state_digest().await?;
    /// println!("at index {:?}: {}", d.applied, d.digest);
    /// # Ok(()) }
    /// ```
    pub async fn state_digest(&self) -> Result<StateDigest, ClientError> {
        self.call::<(), _>(Method::GET, "/cluster/digest", None)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_body_uses_string_keys() {
        let members: BTreeMap<u64, String> =
            [(1, "http://a:1".to_string()), (2, "http://b:2".into())]
                .into_iter()
                .collect();
        let v = serde_json::to_value(init_request(&members)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"members": {"1": "http://a:1", "2": "http://b:2"}})
        );
    }
}

//! The state every handler shares: the Raft handle, the replica reader, keys, and helpers for
//! proposing commands and making reads linearizable.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use sessync_config::NodeConfig;
use sessync_proto::{Policy, Role, SiteName, Timestamp};

use super::error::ApiError;
use crate::audit::AuditReporter;
use crate::federation::Federation;
use crate::metrics::Metrics;
use crate::raft_types::{NodeId, Raft};
use crate::session::{Command, Outcome};
use crate::store::StateReader;
use crate::touch::TouchBatcher;

/// What a node is made of, for building an [`App`].
pub struct AppParts {
    pub config: NodeConfig,
    pub raft: Raft,
    pub state: StateReader,
    pub metrics: Metrics,
}

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct App(Arc<Inner>);

struct Inner {
    node_id: NodeId,
    site: SiteName,
    raft: Raft,
    state: StateReader,
    keys: HashMap<[u8; 32], (String, Role)>,
    cluster_secret: Vec<u8>,
    http: reqwest::Client,
    metrics: Metrics,
    touches: TouchBatcher,
    audit: AuditReporter,
    federation: Federation,
    request_timeout: Duration,
    metrics_open: bool,
    file_policy: Policy,
}

impl App {
    pub fn new(parts: AppParts) -> Self {
        let AppParts {
            config,
            raft,
            state,
            metrics,
        } = parts;
        let keys = config
            .api_keys
            .iter()
            .map(|k| (k.sha256, (k.name.clone(), k.role)))
            .collect();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(500))
            .build()
            .expect("reqwest client with static settings builds");
        let touches = TouchBatcher::spawn(
            raft.clone(),
            state.clone(),
            metrics.clone(),
            config.limits.request_timeout,
        );
        let audit = AuditReporter::spawn(
            raft.clone(),
            config.node_id,
            config.cluster_secret.expose().to_vec(),
            http.clone(),
            metrics.clone(),
        );
        App(Arc::new(Inner {
            node_id: config.node_id,
            site: config.site.clone(),
            raft,
            state,
            keys,
            cluster_secret: config.cluster_secret.expose().to_vec(),
            http,
            metrics,
            touches,
            audit,
            federation: Federation::new(config.site.clone(), config.federation.clone()),
            request_timeout: config.limits.request_timeout,
            metrics_open: config.metrics.open,
            file_policy: config.policy.clone(),
        }))
    }

    pub fn node_id(&self) -> NodeId {
        self.0.node_id
    }
    pub fn site(&self) -> &SiteName {
        &self.0.site
    }
    pub fn raft(&self) -> &Raft {
        &self.0.raft
    }
    pub fn state(&self) -> &StateReader {
        &self.0.state
    }
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }
    pub fn http(&self) -> &reqwest::Client {
        &self.0.http
    }
    pub fn cluster_secret(&self) -> &[u8] {
        &self.0.cluster_secret
    }
    pub fn touches(&self) -> &TouchBatcher {
        &self.0.touches
    }
    pub fn audit(&self) -> &AuditReporter {
        &self.0.audit
    }
    pub fn federation(&self) -> &Federation {
        &self.0.federation
    }
    pub fn request_timeout(&self) -> Duration {
        self.0.request_timeout
    }
    pub fn metrics_open(&self) -> bool {
        self.0.metrics_open
    }
    pub fn file_policy(&self) -> &Policy {
        &self.0.file_policy
    }

    /// The key's name and role, if `sha256` is a configured key's hash.
    pub fn key(&self, sha256: &[u8; 32]) -> Option<&(String, Role)> {
        self.0.keys.get(sha256)
    }

    /// Cluster time as this node (when leader) stamps it: its clock, never behind the last
    /// applied stamp, so cluster time does not run backwards across leaders.
    pub fn cluster_now(&self) -> Timestamp {
        Timestamp::now().max(self.0.state.read(|s| s.clock()))
    }

    /// Whether this node is the leader as far as it knows.
    pub fn is_leader(&self) -> bool {
        self.0.raft.metrics().borrow().current_leader == Some(self.0.node_id)
    }

    /// The leader's id and advertised URL, if one is known.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let m = self.0.raft.metrics().borrow().clone();
        let id = m.current_leader?;
        let url = m
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone())?;
        Some((id, url))
    }

    /// Proposes `cmd` and waits for it to be applied, within the request deadline.
    ///
    /// Until a policy is in the replicated state (right after init), the leader first writes its
    /// own, so no session is ever judged by the built-in default instead of the configured policy.
    pub async fn propose(&self, cmd: Command) -> Result<Outcome, ApiError> {
        let needs_policy = !matches!(cmd, Command::SetPolicy { .. })
            && self.0.state.read(|s| s.replicated_policy().is_none());
        if needs_policy {
            self.write(Command::SetPolicy {
                at: self.cluster_now(),
                policy: self.0.file_policy.clone(),
            })
            .await?;
        }
        self.write(cmd).await
    }

    async fn write(&self, cmd: Command) -> Result<Outcome, ApiError> {
        let t = self.0.request_timeout;
        match tokio::time::timeout(t, self.0.raft.client_write(cmd)).await {
            Err(_) => Err(ApiError::unavailable(format!(
                "no quorum: the change was not committed within {}",
                humantime::format_duration(t)
            ))),
            Ok(Ok(resp)) => Ok(resp.data),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(ApiError::unavailable(match f.leader_id {
                    Some(id) => format!("leadership moved to node {id} during the request; retry"),
                    None => "no leader is elected right now; retry".to_owned(),
                }))
            }
            Ok(Err(e)) => Err(ApiError::unavailable(format!(
                "the cluster cannot take writes: {e}"
            ))),
        }
    }

    /// Makes this node's replica reflect every change acknowledged before this call, and returns
    /// the leader's cluster time at that point.
    pub async fn linearize(&self) -> Result<Timestamp, ApiError> {
        let t = self.0.request_timeout;
        let fut = crate::readindex::linearize(self);
        match tokio::time::timeout(t, fut).await {
            Err(_) => Err(ApiError::unavailable(format!(
                "no quorum: could not confirm the read with the leader within {}",
                humantime::format_duration(t)
            ))),
            Ok(r) => r,
        }
    }
}

//! The node's runtime: the Raft handle and everything the layers above do with it.
//!
//! [`Runtime`] owns the one way to change state ([`Runtime::propose`], bounded by the request
//! deadline), linearizable reads on any node ([`Runtime::linearize`], see [`readindex`]), the
//! leader lookup and cluster time, initialising a cluster ([`init`]), and what the node knows of its own health ([`health`]: the
//! clock guard's verdict, contact with the leader, readiness). Its errors are
//! [`RuntimeError`]s, which the HTTP layer maps to answers; nothing here knows about HTTP
//! handlers.

mod error;
mod group;
mod handover;
mod health;
mod init;
mod readindex;
mod rounds;

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, Fatal, RaftError};
use serde::de::DeserializeOwned;
use sessync_config::NodeConfig;
use sessync_proto::wire::{ReadIndex, RefusalReason, Refused};
use sessync_proto::{Policy, SiteName, Timestamp};
use tokio::time::Instant;

pub(crate) use error::RuntimeError;
pub(crate) use handover::Transferred;
pub(crate) use health::Readiness;
pub(crate) use init::{BootstrapProgress, BootstrapState};
pub(crate) use readindex::Reader;

use crate::clock::ClockGuard;
use crate::network::client::{post_signed, Answer, Link, Target};
use crate::raft_types::{NodeId, Raft};
use crate::session::{Command, Outcome, SetPolicy};
use crate::store::StateReader;

/// The node's runtime handle; cheap to clone.
#[derive(Clone)]
pub(crate) struct Runtime(Arc<Inner>);

struct Inner {
    node_id: NodeId,
    site: SiteName,
    /// How the other nodes reach this one (`advertise_url`).
    advertise_url: String,
    raft: Raft,
    state: StateReader,
    /// For node-to-node calls (read index, audit delivery, forwarding; its client also for peer
    /// sites), with the clock guard that learns from them.
    link: Link,
    request_timeout: Duration,
    file_policy: Policy,
    health: health::Health,
    /// Client commands waiting to go into the log together.
    group: group::GroupCommit,
    /// Linearizable reads on this node while it leads, waiting for a leadership confirmation.
    leader_reads: rounds::Rounds<Result<readindex::Confirmed, RuntimeError>>,
    /// Linearizable reads on this node as a follower, waiting for the leader's read index.
    follower_reads: rounds::Rounds<Result<ReadIndex, RuntimeError>>,
    /// Where `[bootstrap]` stands, while this node forms a cluster.
    bootstrap: parking_lot::Mutex<Option<init::BootstrapProgress>>,
    /// Leadership hand-over and draining.
    handover: handover::Handover,
}

impl Runtime {
    /// `link` is what the node's Raft network sends with too ([`crate::network::client`]).
    pub(crate) fn new(config: &NodeConfig, raft: Raft, state: StateReader, link: Link) -> Self {
        Runtime(Arc::new(Inner {
            node_id: config.node_id,
            site: config.site.clone(),
            advertise_url: config.advertise_url.clone(),
            raft,
            state,
            link,
            request_timeout: config.limits.request_timeout,
            file_policy: config.policy.clone(),
            health: health::Health::new(config.raft.election_timeout_max),
            group: group::GroupCommit::new(),
            leader_reads: rounds::Rounds::new(),
            follower_reads: rounds::Rounds::new(),
            bootstrap: parking_lot::Mutex::new(None),
            handover: handover::Handover::new(config.raft.election_timeout_max),
        }))
    }

    pub(crate) fn node_id(&self) -> NodeId {
        self.0.node_id
    }
    pub(crate) fn site(&self) -> &SiteName {
        &self.0.site
    }
    pub(crate) fn raft(&self) -> &Raft {
        &self.0.raft
    }
    pub(crate) fn state(&self) -> &StateReader {
        &self.0.state
    }
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.0.link.http
    }
    pub(crate) fn cluster_secret(&self) -> &[u8] {
        &self.0.link.secret
    }
    pub(crate) fn clock(&self) -> &ClockGuard {
        &self.0.link.clock
    }
    /// The cluster this node belongs to (`store::identity`).
    pub(crate) fn identity(&self) -> &crate::store::ClusterIdentity {
        &self.0.link.identity
    }

    /// This node's incarnation (drawn at start), which node-to-node proofs must name.
    pub(crate) fn incarnation(&self) -> u64 {
        self.0.link.incarnation
    }
    /// How long one request may take, from arrival to answer.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.0.request_timeout
    }
    /// This node's own `[policy]` (the replicated one is in the state).
    pub(crate) fn file_policy(&self) -> &Policy {
        &self.0.file_policy
    }

    /// The keys of this node's `[policy]` that differ from the replicated policy (empty before
    /// init, when there is none yet).
    pub(crate) fn policy_file_differs(&self) -> Vec<String> {
        self.0.state.read(|s| {
            s.replicated_policy().map_or_else(Vec::new, |r| {
                self.0
                    .file_policy
                    .differing_keys(r)
                    .into_iter()
                    .map(str::to_owned)
                    .collect()
            })
        })
    }

    /// Cluster time as this node (when leader) stamps it: its clock, never behind the last
    /// applied stamp, so cluster time does not run backwards across leaders.
    pub(crate) fn cluster_now(&self) -> Timestamp {
        Timestamp::now().max(self.0.state.read(|s| s.clock()))
    }

    /// Whether this node is the leader as far as it knows.
    pub(crate) fn is_leader(&self) -> bool {
        self.0.raft.metrics().borrow().current_leader == Some(self.0.node_id)
    }

    /// The leader's id and advertised URL, if one is known.
    pub(crate) fn leader(&self) -> Option<(NodeId, String)> {
        let m = self.0.raft.metrics().borrow().clone();
        let id = m.current_leader?;
        let url = m
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone())?;
        Some((id, url))
    }

    /// Sends `body` to `path` on the leader (another node), signed, and reads its JSON answer:
    /// the one way a node asks its leader something (a read index, audit events to record).
    /// Only a signed answer counts ([`post_signed`]); the leader's refusal comes as
    /// [`Refused`], mapped here to this layer's error.
    pub(crate) async fn ask_leader<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<T, RuntimeError> {
        let (leader, url) = self.leader().ok_or(RuntimeError::NoLeader)?;
        if leader == self.node_id() {
            return Err(RuntimeError::LeadershipMoved { to: None });
        }
        let unreachable = |reason: String| RuntimeError::LeaderUnreachable { leader, reason };
        let to = Target {
            id: leader,
            base: &url,
        };
        let Answer { status, body } = post_signed(&self.0.link, to, path, body, timeout)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            if let Ok(r) = serde_json::from_slice::<Refused>(&body) {
                return Err(refusal(leader, r));
            }
        }
        if !status.is_success() {
            return Err(unreachable(format!("it answered {status} to {path}")));
        }
        serde_json::from_slice(&body).map_err(|e| unreachable(format!("bad answer to {path}: {e}")))
    }

    /// Proposes `cmd` and waits for it to be applied, within the request deadline.
    pub(crate) async fn propose(&self, cmd: Command) -> Result<Outcome, RuntimeError> {
        self.propose_by(cmd, Instant::now() + self.request_timeout())
            .await
    }

    /// Proposes `cmd` and waits for it to be applied, by `deadline`: the one way every change
    /// (requests, touch and audit batches, the leader's duties) enters the log.
    ///
    /// Until a policy is in the replicated state (right after init), the leader first writes its
    /// own, within the same deadline, so no session is ever judged by the built-in default
    /// instead of the configured policy.
    pub(crate) async fn propose_by(
        &self,
        cmd: Command,
        deadline: Instant,
    ) -> Result<Outcome, RuntimeError> {
        // The command was stamped with this node's clock: refused if that clock is off.
        self.clock_guard()?;
        let needs_policy = !matches!(cmd, Command::SetPolicy(_))
            && self.0.state.read(|s| s.replicated_policy().is_none());
        if needs_policy {
            let first = Command::SetPolicy(SetPolicy {
                at: self.cluster_now(),
                policy: self.0.file_policy.clone(),
                by: None,
            });
            self.write(first, deadline).await?;
        }
        self.write(cmd, deadline).await
    }

    /// Writes `cmd` by `deadline`: touches (already batched by the sequencer, and not
    /// announced as changes) as entries of their own, everything else through group commit.
    async fn write(&self, cmd: Command, deadline: Instant) -> Result<Outcome, RuntimeError> {
        let waited = deadline.saturating_duration_since(Instant::now());
        let write = async {
            match cmd {
                Command::Touch(_) => self.client_write(cmd).await,
                cmd => self.group_write(cmd, deadline).await,
            }
        };
        tokio::time::timeout_at(deadline, write)
            .await
            .unwrap_or(Err(RuntimeError::NoQuorum {
                what: "the change was not committed",
                waited,
            }))
    }

    /// One entry into the log, answered once it is applied (held while leadership is handed
    /// over: [`handover`]).
    async fn client_write(&self, cmd: Command) -> Result<Outcome, RuntimeError> {
        let _in_flight = self.enter_log().await;
        match self.0.raft.client_write(cmd).await {
            Ok(resp) => Ok(resp.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(match f.leader_id {
                    Some(id) => RuntimeError::LeadershipMoved { to: Some(id) },
                    None => RuntimeError::NoLeader,
                })
            }
            Err(RaftError::Fatal(Fatal::Stopped)) => Err(RuntimeError::ShuttingDown),
            Err(e) => Err(RuntimeError::Raft(e.to_string())),
        }
    }
}

/// The leader's signed refusal as this layer's error.
fn refusal(leader: NodeId, r: Refused) -> RuntimeError {
    match r.refused {
        RefusalReason::ClockSkew => RuntimeError::ClockSkew {
            node: leader,
            deviation_ms: None,
        },
        RefusalReason::NotLeader => RuntimeError::LeadershipMoved { to: r.leader },
        RefusalReason::ShuttingDown | RefusalReason::NoQuorum | RefusalReason::Unavailable => {
            RuntimeError::LeaderUnreachable {
                leader,
                reason: format!("it refused: {}", r.message),
            }
        }
    }
}

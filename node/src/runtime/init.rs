//! Initialising a cluster, the one way both `POST /cluster/init` and `[bootstrap]` do it, and
//! what a node says of itself to a bootstrapping peer ([`Hello`]) and of its own bootstrap
//! (`GET /cluster/status`).

use std::collections::BTreeMap;

use openraft::error::{Fatal, InitializeError, RaftError};
use openraft::BasicNode;
use sessync_proto::wire::Hello;

use super::{Runtime, RuntimeError};
use crate::raft_types::NodeId;

/// Where this node's bootstrap stands (while it is not part of a cluster).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BootstrapProgress {
    /// `bootstrap.expect`.
    pub(crate) expected: usize,
    /// Members (this node included) that answered the last round.
    pub(crate) answered: usize,
    pub(crate) state: BootstrapState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BootstrapState {
    /// Asking the members until all answer; the one with the lowest id then initialises.
    Waiting,
    /// Not to initialise (a member is part of a cluster, or this node is not a bootstrap
    /// member): it waits to be added.
    Joining,
    /// This node is initialising the cluster.
    Initializing,
}

impl BootstrapState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BootstrapState::Waiting => "waiting",
            BootstrapState::Joining => "joining",
            BootstrapState::Initializing => "initializing",
        }
    }
}

impl Runtime {
    /// Whether this node has a membership: it was initialised, or added to a cluster (with
    /// data, after a restart too).
    pub(crate) fn is_initialized(&self) -> bool {
        let m = self.0.raft.metrics().borrow().clone();
        m.membership_config
            .membership()
            .voter_ids()
            .next()
            .is_some()
    }

    /// The log index of the membership in effect, if any.
    pub(crate) fn membership_index(&self) -> Option<u64> {
        let m = self.0.raft.metrics().borrow().clone();
        m.membership_config.log_id().map(|l| l.index)
    }

    /// Initialises a new cluster whose voters are `members` (node id → advertised URL, this
    /// node among them): refused with [`RuntimeError::AlreadyInitialized`] when this node has
    /// any log or membership.
    pub(crate) async fn initialize(
        &self,
        members: BTreeMap<NodeId, String>,
    ) -> Result<(), RuntimeError> {
        let nodes: BTreeMap<NodeId, BasicNode> = members
            .into_iter()
            .map(|(id, url)| (id, BasicNode::new(url)))
            .collect();
        // The new cluster's id goes on the first append; a node that has one keeps it.
        self.identity()
            .get_or_create()
            .map_err(|e| RuntimeError::Raft(format!("cannot store the cluster id: {e}")))?;
        match self.0.raft.initialize(nodes).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {
                Err(RuntimeError::AlreadyInitialized)
            }
            Err(RaftError::Fatal(Fatal::Stopped)) => Err(RuntimeError::ShuttingDown),
            Err(e) => Err(RuntimeError::Raft(e.to_string())),
        }
    }

    /// Who this node is, for a bootstrapping peer.
    pub(crate) fn hello(&self) -> Hello {
        Hello {
            node_id: self.0.node_id,
            advertise_url: self.0.advertise_url.clone(),
            initialized: self.is_initialized(),
        }
    }

    /// Where this node's bootstrap stands, if it bootstraps.
    pub(crate) fn bootstrap_progress(&self) -> Option<BootstrapProgress> {
        *self.0.bootstrap.lock()
    }

    pub(crate) fn set_bootstrap_progress(&self, p: BootstrapProgress) {
        *self.0.bootstrap.lock() = Some(p);
    }
}

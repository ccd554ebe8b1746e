//! What can go wrong between a request and the replicated state, independent of HTTP: the API
//! maps each case to an answer (most of them are "retry later": 503; a hand-over asked of the
//! wrong node or while another runs is the caller's to fix).

use std::time::Duration;

use crate::raft_types::NodeId;

/// Why the runtime could not make a change or confirm a read.
#[derive(Clone, Debug, thiserror::Error)]
pub(crate) enum RuntimeError {
    /// No leader is known right now (an election is under way, or there is no quorum).
    #[error("no leader is elected right now; retry")]
    NoLeader,
    /// The change or read was not confirmed by a quorum within the deadline.
    #[error("no quorum: {what} within {}", humantime::format_duration(*waited))]
    NoQuorum {
        /// What did not happen, as the start of a sentence ("the change was not committed").
        what: &'static str,
        waited: Duration,
    },
    /// This node lost the leadership while the request was under way.
    #[error("leadership moved{} during the request; retry", to.map(|id| format!(" to node {id}")).unwrap_or_default())]
    LeadershipMoved { to: Option<NodeId> },
    /// The leader could not be asked (no connection, or an answer that makes no sense).
    #[error("cannot reach the leader (node {leader}): {reason}")]
    LeaderUnreachable { leader: NodeId, reason: String },
    /// Raft refused the change for a reason other than leadership (a fatal Raft error).
    #[error("the cluster cannot take writes: {0}")]
    Raft(String),
    /// This node's clock (or, for a read confirmed by the leader, the leader's) is off the
    /// voters' median by more than `max_clock_skew`: nothing was stamped or judged by it.
    #[error("the clock of node {node} is {} the voters' median, more than max_clock_skew allows; nothing was stamped or judged by it", skew_words(*deviation_ms))]
    ClockSkew {
        node: NodeId,
        /// Its clock minus the median, when known here.
        deviation_ms: Option<i64>,
    },
    /// Too many changes are waiting to be committed (the log is not keeping up, or there is
    /// no quorum): refused at once rather than queued without bound.
    #[error("{waiting} changes are already waiting to be committed; retry")]
    Overloaded { waiting: usize },
    /// A cluster cannot be initialised: this node has a log or a membership already.
    #[error("the cluster is already initialised")]
    AlreadyInitialized,
    /// The node is stopping.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// A hand-over named a node that is not a member.
    #[error("node {node} is not a member of the cluster")]
    UnknownNode { node: NodeId },
    /// A hand-over named a member that does not vote (a learner).
    #[error("node {node} is not a voter (a learner cannot lead)")]
    NotAVoter { node: NodeId },
    /// No voter (or not the one named) held the leader's whole log within a lease.
    #[error("{}", match node {
        Some(n) => format!("node {n} has not caught up with the leader's log; retry"),
        None => "no other voter has caught up with the leader's log; retry".to_owned(),
    })]
    NoCaughtUpVoter { node: Option<NodeId> },
    /// The target of a hand-over could not be asked to start an election.
    #[error("cannot ask node {node} to take over: {reason}")]
    TargetUnreachable { node: NodeId, reason: String },
    /// No other node led within the hand-over's bound (this node may still lead).
    #[error("no new leader within {} of asking node {to} to take over", humantime::format_duration(*waited))]
    TransferTimedOut { to: NodeId, waited: Duration },
    /// A drained node does not take leadership over.
    #[error("node {node} is draining: it does not take leadership over")]
    Draining { node: NodeId },
    /// Another hand-over is under way on this node.
    #[error("a leadership hand-over is already under way on this node")]
    TransferUnderWay,
}

/// "180000 ms ahead of", "250 ms behind", or "off" when the size is not known here.
fn skew_words(deviation_ms: Option<i64>) -> String {
    match deviation_ms {
        Some(d) if d > 0 => format!("{d} ms ahead of"),
        Some(d) => format!("{} ms behind", d.unsigned_abs()),
        None => "off".to_owned(),
    }
}

//! The openraft type configuration of sessync, declared once.

use crate::session::{Command, Outcome};
use crate::store::SnapshotFile;

/// A node's id in its Raft cluster (> 0).
pub(crate) type NodeId = u64;

openraft::declare_raft_types!(
    /// sessync's Raft types: commands are session [`Command`]s, answers are [`Outcome`]s,
    /// nodes are known by their advertised URL, snapshots are files sent and received in chunks.
    pub(crate) TypeConfig:
        D = Command,
        R = Outcome,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = SnapshotFile,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A running Raft node.
pub(crate) type Raft = openraft::Raft<TypeConfig>;
/// A log entry.
pub(crate) type Entry = openraft::Entry<TypeConfig>;
/// A log id.
pub(crate) type LogId = openraft::LogId<NodeId>;
/// Membership as stored with the state.
pub(crate) type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
/// What identifies a snapshot and the state it holds.
pub(crate) type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;
/// Errors from storage.
pub(crate) type StorageError = openraft::StorageError<NodeId>;

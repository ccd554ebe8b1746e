//! The openraft type configuration of sessync, declared once.

use std::io::Cursor;

use crate::session::{Command, Outcome};

/// A node's id in its Raft cluster (> 0).
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// sessync's Raft types: commands are session [`Command`]s, answers are [`Outcome`]s,
    /// nodes are known by their advertised URL, snapshots are byte buffers.
    pub TypeConfig:
        D = Command,
        R = Outcome,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A running Raft node.
pub type Raft = openraft::Raft<TypeConfig>;
/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log id.
pub type LogId = openraft::LogId<NodeId>;
/// Membership as stored with the state.
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
/// Errors from storage.
pub type StorageError = openraft::StorageError<NodeId>;

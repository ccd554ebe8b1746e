//! The openraft type configuration of sessync, declared once.

use std::io::Cursor;

use crate::session::{Command, Outcome};

/// A node's id in its Raft cluster (> 0).
pub(crate) type NodeId = u64;

openraft::declare_raft_types!(
    /// sessync's Raft types: commands are session [`Command`]s, answers are [`Outcome`]s,
    /// nodes are known by their advertised URL, snapshots are byte buffers.
    pub(crate) TypeConfig:
        D = Command,
        R = Outcome,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
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
/// Errors from storage.
pub(crate) type StorageError = openraft::StorageError<NodeId>;

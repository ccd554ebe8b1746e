//! Which cluster this node's data belongs to: a random id made when a cluster is initialised
//! (or when a leader of a cluster from before ids finds none), learnt by the other nodes from
//! the leader's first append, and made anew by a restore or a recovery.
//!
//! Every node-to-node request names the sender's cluster id and a node refuses one from another
//! cluster, so a node of an old cluster (one restored elsewhere, or one a recovery left behind)
//! never votes in, replicates to or disturbs the new one. It is node-local (the `raft` family),
//! never part of the replicated state or a snapshot: replicas' state digests do not depend on
//! it. It guards against operators' mix-ups; the cluster secret is what keeps strangers out.

use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;
use rocksdb::DB;

use super::layout::{Cf, RaftKey};
use super::{read_err, synced, write_err};
use crate::raft_types::StorageError;

/// A cluster id: 32 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClusterId(String);

impl ClusterId {
    /// A new random id.
    pub(crate) fn random() -> Self {
        ClusterId(hex::encode(rand::random::<[u8; 16]>()))
    }

    /// An id derived from `seed` (the same seed gives the same id: every node restored from
    /// one backup into one member list names the same new cluster).
    pub(crate) fn derived(seed: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        ClusterId(hex::encode(&Sha256::digest(seed)[..16]))
    }

    /// Parses an id as a header or the store carries it.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        (s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| ClusterId(s.to_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The stored cluster id of `db`, if it has one.
pub(super) fn read(db: &DB) -> Result<Option<ClusterId>, StorageError> {
    let raw = db
        .get_cf(Cf::Raft.of(db), RaftKey::ClusterId.bytes())
        .map_err(read_err)?;
    Ok(raw.and_then(|b| ClusterId::parse(std::str::from_utf8(&b).ok()?)))
}

/// Stores `id` as `db`'s cluster id (synced).
pub(super) fn write(db: &DB, id: &ClusterId) -> Result<(), StorageError> {
    db.put_cf_opt(
        Cf::Raft.of(db),
        RaftKey::ClusterId.bytes(),
        id.as_str(),
        &synced(),
    )
    .map_err(write_err)
}

/// This node's cluster id, stored and cached; cheap to clone.
#[derive(Clone)]
pub(crate) struct ClusterIdentity {
    db: Arc<DB>,
    id: Arc<RwLock<Option<ClusterId>>>,
}

impl ClusterIdentity {
    pub(super) fn load(db: Arc<DB>) -> Result<Self, StorageError> {
        let id = read(&db)?;
        Ok(Self {
            db,
            id: Arc::new(RwLock::new(id)),
        })
    }

    /// The cluster id, if this node has one yet.
    pub(crate) fn get(&self) -> Option<ClusterId> {
        self.id.read().clone()
    }

    /// The cluster id, made and stored now if this node has none (it initialises a cluster,
    /// or leads one from before ids).
    pub(crate) fn get_or_create(&self) -> Result<ClusterId, StorageError> {
        let mut id = self.id.write();
        if let Some(id) = id.as_ref() {
            return Ok(id.clone());
        }
        let made = ClusterId::random();
        write(&self.db, &made)?;
        tracing::info!(cluster_id = %made, "this node's cluster has an id now");
        *id = Some(made.clone());
        Ok(made)
    }

    /// Takes `theirs` as this node's cluster id if it has none (the leader's first append);
    /// whether `theirs` is this node's cluster id now.
    pub(crate) fn adopt(&self, theirs: &ClusterId) -> Result<bool, StorageError> {
        let mut id = self.id.write();
        match id.as_ref() {
            Some(mine) => Ok(mine == theirs),
            None => {
                write(&self.db, theirs)?;
                tracing::info!(cluster_id = %theirs, "joined cluster");
                *id = Some(theirs.clone());
                Ok(true)
            }
        }
    }
}

//! What an operator does to a stopped node's store: fill an empty one from a backup as a
//! member of a new cluster (`restore`), or make a survivor of a lost quorum a one-node cluster
//! of everything it has (`recover`).
//!
//! Both leave the store as openraft expects a running node's: the state applied up to one log
//! id, the log purged up to it, a membership of the new members in the state machine, a
//! current snapshot of that state and membership (what a node added later is sent), and a new
//! cluster id ([`super::identity`]), so no node of the old cluster is ever let in.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use openraft::storage::{RaftLogReader, RaftLogStorage, RaftStateMachine};
use openraft::{BasicNode, Membership, RaftSnapshotBuilder};
use rocksdb::WriteBatch;

use super::identity::{self, ClusterId};
use super::layout::SmKey;
use super::log_store::LogStore;
use super::snapshot_format::Reader;
use super::state_machine::{put_sm, StateMachineStore};
use super::{synced, write_err, OpenError};
use crate::raft_types::{LogId, NodeId, StorageError, StoredMembership};

/// Why a restore or recovery could not be done; the store is left as it was (a restore
/// removes what it wrote).
#[derive(Debug, thiserror::Error)]
pub(crate) enum OfflineError {
    #[error("{0} holds data already: a restore fills an empty data_dir only")]
    NotEmpty(String),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("the backup: {0}")]
    Backup(#[from] sessync_proto::backup::BackupError),
    #[error("the backup's snapshot does not match its header: {0}")]
    Mismatch(String),
    #[error(
        "this node has no data: there is nothing to recover (start it and add it as a new node)"
    )]
    Empty,
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("cannot write the snapshot: {0}")]
    Io(#[from] std::io::Error),
}

/// What a restore did.
#[derive(Debug)]
pub(crate) struct Restored {
    pub(crate) index: u64,
    pub(crate) cluster_id: ClusterId,
    pub(crate) content_digest: String,
}

/// What a recovery did.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) previous_cluster_id: Option<ClusterId>,
    pub(crate) cluster_id: ClusterId,
    /// The index applied when the node stopped, and the one it has now.
    pub(crate) applied_before: Option<u64>,
    pub(crate) applied: u64,
    /// Entries in its log past the applied one, applied now.
    pub(crate) replayed: u64,
    pub(crate) voters_before: Vec<NodeId>,
}

/// Whether `dir` holds nothing (or does not exist).
fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
}

/// Fills the empty `data_dir` from the backup whose header `header` was read from `input`, as
/// a member of a new cluster of `members`: the state at the backup's index, the new
/// membership, a current snapshot, and `cluster_id`. `progress` hears the snapshot bytes copied.
pub(crate) async fn restore(
    data_dir: &Path,
    header: &sessync_proto::backup::BackupHeader,
    input: &mut (impl Read + Send),
    members: BTreeMap<NodeId, BasicNode>,
    cluster_id: &ClusterId,
    progress: impl FnMut(u64, u64),
) -> Result<Restored, OfflineError> {
    if !is_empty(data_dir) {
        return Err(OfflineError::NotEmpty(data_dir.display().to_string()));
    }
    let done = restore_into(data_dir, header, input, members, cluster_id, progress).await;
    if done.is_err() {
        // Nothing half restored stays: the directory is as empty as it was.
        if let Ok(entries) = std::fs::read_dir(data_dir) {
            for e in entries.flatten() {
                let p = e.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
    }
    done
}

async fn restore_into(
    data_dir: &Path,
    header: &sessync_proto::backup::BackupHeader,
    input: &mut (impl Read + Send),
    members: BTreeMap<NodeId, BasicNode>,
    cluster_id: &ClusterId,
    progress: impl FnMut(u64, u64),
) -> Result<Restored, OfflineError> {
    let (mut logs, mut sm) = super::open(data_dir)?;
    // The snapshot bytes into a transfer's file, checked as they come.
    let (mut f, path) = sm.begin_receiving_snapshot().await?.into_parts().await;
    sessync_proto::backup::copy_checked(header, input, &mut f, progress)?;
    f.sync_all()?;
    let meta = {
        use std::io::{Seek, SeekFrom};
        f.seek(SeekFrom::Start(0))?;
        let (_, snap) = Reader::open(std::io::BufReader::new(f.try_clone()?))
            .map_err(|e| OfflineError::Mismatch(e.to_string()))?;
        f.seek(SeekFrom::Start(0))?;
        snap.meta
    };
    let at = meta
        .last_log_id
        .ok_or_else(|| OfflineError::Mismatch("its snapshot holds no applied entry".into()))?;
    if (at.index, at.leader_id.term) != (header.index, header.term) {
        return Err(OfflineError::Mismatch(format!(
            "the header says index {} term {}, the snapshot is at index {} term {}",
            header.index, header.term, at.index, at.leader_id.term
        )));
    }
    sm.install_snapshot(&meta, Box::new(super::SnapshotFile::new(f, path)))
        .await?;
    let content_digest = sm.reader().digest().map_err(read_failed)?.content;
    if content_digest != header.digest {
        return Err(OfflineError::Mismatch(format!(
            "the restored state's content digest is {content_digest}, the header says {}",
            header.digest
        )));
    }
    let sm = rejoin(&mut logs, sm, at, members, cluster_id).await?;
    drop(sm);
    Ok(Restored {
        index: at.index,
        cluster_id: cluster_id.clone(),
        content_digest,
    })
}

/// Makes the stopped node at `data_dir` a one-node cluster (node `node_id` at `url`) of
/// everything it has: every entry in its log is applied (one may have been acknowledged by a
/// leader that is gone), then the membership is replaced.
pub(crate) async fn recover(
    data_dir: &Path,
    node_id: NodeId,
    url: &str,
) -> Result<Recovered, OfflineError> {
    if is_empty(data_dir) {
        return Err(OfflineError::Empty);
    }
    let (mut logs, mut sm) = super::open(data_dir)?;
    let previous_cluster_id = identity::read(logs.db())?;
    let (applied_before, membership) = sm.applied_state().await?;
    let voters_before: Vec<NodeId> = membership.membership().voter_ids().collect();
    let state = logs.get_log_state().await?;
    let Some(last) = state.last_log_id.max(applied_before) else {
        return Err(OfflineError::Empty);
    };
    let from = applied_before.map_or(0, |l| l.index + 1);
    let entries = logs.try_get_log_entries(from..=last.index).await?;
    let replayed = entries.len() as u64;
    sm.apply(entries).await?;
    let (applied, _) = sm.applied_state().await?;
    let applied = applied.unwrap_or(last);
    let cluster_id = ClusterId::random();
    let members = BTreeMap::from([(node_id, BasicNode::new(url))]);
    drop(rejoin(&mut logs, sm, applied, members, &cluster_id).await?);
    Ok(Recovered {
        previous_cluster_id,
        cluster_id,
        applied_before: applied_before.map(|l| l.index),
        applied: applied.index,
        replayed,
        voters_before,
    })
}

/// The common end of both: the membership of `members` as of `at`, a current snapshot of the
/// state with it, the log purged up to `at`, and `cluster_id`.
async fn rejoin(
    logs: &mut LogStore,
    sm: StateMachineStore,
    at: LogId,
    members: BTreeMap<NodeId, BasicNode>,
    cluster_id: &ClusterId,
) -> Result<StateMachineStore, OfflineError> {
    let db = logs.db().clone();
    let voters: BTreeSet<NodeId> = members.keys().copied().collect();
    let membership = StoredMembership::new(Some(at), Membership::new(vec![voters], members));
    let mut batch = WriteBatch::default();
    put_sm(&db, &mut batch, SmKey::Membership, &membership)?;
    db.write_opt(batch, &synced()).map_err(write_err)?;
    // The state machine reads its membership at load: load it again.
    let snapshots = sm.snapshots();
    drop(sm);
    let mut sm = StateMachineStore::load(db.clone(), snapshots)?;
    sm.get_snapshot_builder().await.build_snapshot().await?;
    logs.purge(at).await?;
    logs.save_committed(Some(at)).await?;
    identity::write(&db, cluster_id)?;
    Ok(sm)
}

fn read_failed(e: super::ReadError) -> OfflineError {
    match e {
        super::ReadError::Storage(e) => OfflineError::Storage(*e),
        other => OfflineError::Mismatch(other.to_string()),
    }
}

//! The operator's commands on a stopped node: `sessync-node restore` (a new cluster from a
//! backup) and `sessync-node recover` (a one-node cluster of a lost quorum's survivor). Each
//! reads the node's config, does its work on the data directory (`store::offline`), reports
//! progress on stderr and returns what it did, for the binary to print as JSON.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use openraft::BasicNode;
use serde::Serialize;
use sessync_config::{BootstrapMembers, NodeConfig};
use sessync_proto::backup::{BackupError, BackupHeader};

use crate::store::{self, ClusterId, OfflineError};

/// Why an offline command failed.
#[derive(Debug, thiserror::Error)]
pub enum OfflineCommandError {
    #[error("cannot open the backup {path}: {source}")]
    OpenBackup {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Backup {
        path: String,
        #[source]
        source: BackupError,
    },
    #[error("--member {0}: give the new cluster's members as ID=URL (an id > 0, an http(s) URL)")]
    Member(String),
    #[error("the members must include this node (node_id {0} in its config)")]
    NotAMember(u64),
    #[error("{0}")]
    Store(String),
}

impl From<OfflineError> for OfflineCommandError {
    fn from(e: OfflineError) -> Self {
        OfflineCommandError::Store(e.to_string())
    }
}

/// What `restore` did.
#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub data_dir: String,
    pub node_id: u64,
    /// The new cluster's id (the same on every node restored from one backup into one member
    /// list).
    pub cluster_id: String,
    /// The cluster the backup came from.
    pub from_cluster_id: String,
    pub members: BTreeMap<u64, String>,
    pub index: u64,
    pub term: u64,
    pub content_digest: String,
}

/// What `recover` did.
#[derive(Debug, Serialize)]
pub struct RecoverReport {
    pub data_dir: String,
    pub node_id: u64,
    pub cluster_id: String,
    pub previous_cluster_id: Option<String>,
    pub voters_before: Vec<u64>,
    pub applied_before: Option<u64>,
    pub applied: u64,
    /// Entries that were in the log past the applied one, applied now.
    pub replayed: u64,
}

/// Parses `--member ID=URL`.
pub fn parse_member(raw: &str) -> Result<(u64, String), OfflineCommandError> {
    let bad = || OfflineCommandError::Member(raw.to_owned());
    let (id, url) = raw.split_once('=').ok_or_else(bad)?;
    let id: u64 = id.trim().parse().ok().filter(|n| *n > 0).ok_or_else(bad)?;
    let url = url.trim().trim_end_matches('/');
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(bad());
    }
    Ok((id, url.to_owned()))
}

/// Fills the config's empty data_dir from the backup at `from`, as a member of a new cluster of
/// `members` (when none are given: the config's `[bootstrap] members`, else this node alone at
/// its advertise_url).
pub async fn restore(
    config: &NodeConfig,
    from: &Path,
    members: Vec<(u64, String)>,
) -> Result<RestoreReport, OfflineCommandError> {
    let listed = config.bootstrap.as_ref().and_then(|b| match &b.members {
        BootstrapMembers::Listed(m) => Some(m.clone()),
        BootstrapMembers::Dns { .. } => None,
    });
    let members: BTreeMap<u64, String> = match (members.is_empty(), listed) {
        (false, _) => members.into_iter().collect(),
        (true, Some(listed)) => listed,
        (true, None) => BTreeMap::from([(config.node_id, config.advertise_url.clone())]),
    };
    if !members.contains_key(&config.node_id) {
        return Err(OfflineCommandError::NotAMember(config.node_id));
    }
    let path = from.display().to_string();
    let file = File::open(from).map_err(|source| OfflineCommandError::OpenBackup {
        path: path.clone(),
        source,
    })?;
    let mut input = BufReader::with_capacity(1 << 20, file);
    let header = BackupHeader::read(&mut input).map_err(|source| OfflineCommandError::Backup {
        path: path.clone(),
        source,
    })?;
    // Every node restored from this backup into these members names the same new cluster.
    let mut seed = format!("sessync-restore\n{}\n", header.sha256);
    for (id, url) in &members {
        seed.push_str(&format!("{id}={url}\n"));
    }
    let cluster_id = ClusterId::derived(seed.as_bytes());
    let nodes = members
        .iter()
        .map(|(id, url)| (*id, BasicNode::new(url)))
        .collect();
    let mut shown = Progress::new("restoring");
    let restored = store::restore(
        &config.data_dir,
        &header,
        &mut input,
        nodes,
        &cluster_id,
        |done, total| shown.bytes(done, total),
    )
    .await?;
    Ok(RestoreReport {
        data_dir: config.data_dir.display().to_string(),
        node_id: config.node_id,
        cluster_id: restored.cluster_id.to_string(),
        from_cluster_id: header.cluster_id,
        members,
        index: restored.index,
        term: header.term,
        content_digest: restored.content_digest,
    })
}

/// Makes the stopped node's data a one-node cluster of everything it has.
pub async fn recover(config: &NodeConfig) -> Result<RecoverReport, OfflineCommandError> {
    eprintln!(
        "recovering {}: applying its whole log, then making it a one-node cluster...",
        config.data_dir.display()
    );
    let r = store::recover(&config.data_dir, config.node_id, &config.advertise_url).await?;
    Ok(RecoverReport {
        data_dir: config.data_dir.display().to_string(),
        node_id: config.node_id,
        cluster_id: r.cluster_id.to_string(),
        previous_cluster_id: r.previous_cluster_id.map(|id| id.to_string()),
        voters_before: r.voters_before,
        applied_before: r.applied_before,
        applied: r.applied,
        replayed: r.replayed,
    })
}

/// Progress of a long copy on stderr: a line each tenth of the way.
struct Progress {
    what: &'static str,
    shown: u64,
}

impl Progress {
    fn new(what: &'static str) -> Self {
        Progress { what, shown: 0 }
    }

    fn bytes(&mut self, done: u64, total: u64) {
        let tenth = (done * 10).checked_div(total).unwrap_or(10);
        if tenth >= self.shown {
            self.shown = tenth + 1;
            eprintln!(
                "{}: {} of {} MiB",
                self.what,
                done >> 20,
                total.div_ceil(1 << 20)
            );
        }
    }
}

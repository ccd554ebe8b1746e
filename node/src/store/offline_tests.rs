//! Backups, restores and recoveries on real RocksDB directories: a backup restores to the same
//! content in a new cluster; a damaged one is refused and leaves the directory empty; a
//! recovery applies everything in the survivor's log and leaves a one-node cluster.

use std::collections::BTreeMap;
use std::io::Read;

use openraft::storage::{RaftLogReader, RaftLogStorage, RaftStateMachine};
use openraft::BasicNode;
use sessync_proto::backup::{BackupHeader, FORMAT, KIND};
use sessync_proto::SiteName;
use tempfile::TempDir;

use super::tests::{rt, sample_log};
use super::*;

/// A backup file of `sm`, as `GET /v1/backup` writes it.
fn backup_of(sm: &StateMachineStore) -> (BackupHeader, Vec<u8>) {
    let mut taken = sm.reader().backup().unwrap();
    let header = BackupHeader {
        kind: KIND.into(),
        format: FORMAT,
        cluster_id: ClusterId::random().to_string(),
        site: SiteName::parse_field("site-a", "site").unwrap(),
        node_id: 1,
        version: "test".into(),
        index: taken.index,
        term: taken.term,
        cluster_time: taken.cluster_time,
        digest: taken.digest.clone(),
        snapshot_bytes: taken.bytes,
        sha256: taken.sha256.clone(),
    };
    let mut file = header.line();
    taken.file.read_to_end(&mut file).unwrap();
    (header, file)
}

fn members(ids: &[u64]) -> BTreeMap<u64, BasicNode> {
    ids.iter()
        .map(|&id| {
            (
                id,
                BasicNode::new(format!("http://127.0.0.2:{}", 7000 + id)),
            )
        })
        .collect()
}

#[test]
fn a_backup_restores_the_same_content_as_a_member_of_a_new_cluster() {
    rt().block_on(async {
        let a = TempDir::new().unwrap();
        let (_, mut sm) = open(a.path()).unwrap();
        let log = sample_log();
        sm.apply(log.clone()).await.unwrap();
        let before = sm.reader().digest().unwrap();
        let (header, file) = backup_of(&sm);
        assert_eq!(header.index, log.len() as u64);
        assert_eq!(header.digest, before.content);
        // No temporary file is left beside the snapshots.
        let left: Vec<_> = std::fs::read_dir(a.path().join("snapshots"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "{left:?}");

        let b = TempDir::new().unwrap();
        let mut input = &file[..];
        let header = BackupHeader::read(&mut input).unwrap();
        let id = ClusterId::derived(b"seed");
        let restored = restore(
            b.path(),
            &header,
            &mut input,
            members(&[4, 5, 6]),
            &id,
            |_, _| {},
        )
        .await
        .unwrap();
        assert_eq!(restored.content_digest, before.content);
        assert_eq!(restored.index, header.index);

        let (mut logs, mut sm) = open(b.path()).unwrap();
        let after = sm.reader().digest().unwrap();
        assert_eq!(after.content, before.content);
        assert_eq!(after.applied, before.applied);
        let (applied, membership) = sm.applied_state().await.unwrap();
        assert_eq!(applied.map(|l| l.index), Some(header.index));
        let voters: Vec<u64> = membership.membership().voter_ids().collect();
        assert_eq!(voters, [4, 5, 6]);
        let state = logs.get_log_state().await.unwrap();
        assert_eq!(
            state.last_log_id, applied,
            "the log starts after the backup"
        );
        let current = sm.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(
            current.meta.last_membership, membership,
            "a new node gets the new members"
        );
        assert_eq!(identity::read(logs.db()).unwrap(), Some(id));
    });
}

#[test]
fn a_damaged_or_truncated_backup_is_refused_and_leaves_the_directory_empty() {
    rt().block_on(async {
        let a = TempDir::new().unwrap();
        let (_, mut sm) = open(a.path()).unwrap();
        sm.apply(sample_log()).await.unwrap();
        let (_, good) = backup_of(&sm);
        let mut flipped = good.clone();
        let n = flipped.len();
        flipped[n - 10] ^= 1;
        for (bad, says) in [
            (good[..good.len() - 100].to_vec(), "truncated"),
            (flipped, "checksum mismatch"),
        ] {
            let b = TempDir::new().unwrap();
            let mut input = &bad[..];
            let header = BackupHeader::read(&mut input).unwrap();
            let err = restore(
                b.path(),
                &header,
                &mut input,
                members(&[1]),
                &ClusterId::random(),
                |_, _| {},
            )
            .await
            .unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
            assert_eq!(std::fs::read_dir(b.path()).unwrap().count(), 0);
        }
        // Into a directory with data: refused, untouched.
        let (header, good) = backup_of(&sm);
        let mut input = &good[header.line().len()..];
        let err = restore(
            a.path(),
            &header,
            &mut input,
            members(&[1]),
            &ClusterId::random(),
            |_, _| {},
        )
        .await
        .unwrap_err();
        assert!(matches!(err, OfflineError::NotEmpty(_)), "{err}");
    });
}

#[test]
fn a_recovery_applies_the_whole_log_and_leaves_a_one_node_cluster() {
    rt().block_on(async {
        let a = TempDir::new().unwrap();
        let log = sample_log();
        let half = log.len() / 2;
        {
            let (logs, mut sm) = open(a.path()).unwrap();
            logs.write_entries(log.clone()).unwrap().unwrap();
            // Applied up to half: the rest is in the log only (committed by a leader now gone).
            sm.apply(log[..half].to_vec()).await.unwrap();
        }
        let recovered = recover(a.path(), 2, "http://127.0.0.2:7002").await.unwrap();
        assert_eq!(recovered.applied_before, Some(half as u64));
        assert_eq!(recovered.applied, log.len() as u64);
        assert_eq!(recovered.replayed, (log.len() - half) as u64);
        assert_eq!(recovered.voters_before, [1]);

        // The same state as a store that applied the whole log.
        let whole = TempDir::new().unwrap();
        let (_, mut w) = open(whole.path()).unwrap();
        w.apply(log.clone()).await.unwrap();
        let (mut logs, mut sm) = open(a.path()).unwrap();
        assert_eq!(
            sm.reader().digest().unwrap().content,
            w.reader().digest().unwrap().content
        );
        let (_, membership) = sm.applied_state().await.unwrap();
        let voters: Vec<u64> = membership.membership().voter_ids().collect();
        assert_eq!(voters, [2]);
        let state = logs.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id.map(|l| l.index), Some(log.len() as u64));
        assert!(logs
            .try_get_log_entries(0..=log.len() as u64)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            identity::read(logs.db()).unwrap(),
            Some(recovered.cluster_id)
        );
    });
}

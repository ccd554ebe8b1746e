//! Snapshot tests on real RocksDB directories: build and install give the same state, also sent
//! in small chunks the way openraft sends them; a late build never replaces a newer snapshot;
//! only the current file is kept; a bad file (cut short, altered, malformed, another snapshot's)
//! is refused with an error that says what is wrong and changes nothing; an install stopped
//! part way is finished when the store opens.

use std::io::SeekFrom;
use std::path::Path;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use sessync_proto::Timestamp;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::snapshot_format::MAX_LINE;
use super::snapshot_install::WritePlan;
use super::tests::{assert_federation_loaded, change_index, entry, rt, sample_log};
use super::*;
use crate::session::{Command, Expire};

/// Copies `src` into `dst` in chunks of `chunk` bytes, seeking to each chunk's offset on both
/// sides, as openraft's chunked transfer does; the first chunk is sent twice (a retry).
pub(super) async fn send_in_chunks(src: &mut SnapshotFile, dst: &mut SnapshotFile, chunk: usize) {
    let end = src.seek(SeekFrom::End(0)).await.unwrap();
    let mut offsets = vec![0];
    offsets.extend((0..end).step_by(chunk));
    for offset in offsets {
        src.seek(SeekFrom::Start(offset)).await.unwrap();
        let len = usize::try_from((end - offset).min(chunk as u64)).unwrap();
        let mut buf = vec![0; len];
        src.read_exact(&mut buf).await.unwrap();
        dst.seek(SeekFrom::Start(offset)).await.unwrap();
        dst.write_all(&buf).await.unwrap();
    }
    dst.shutdown().await.unwrap();
}

/// The names in a store's snapshots directory, sorted.
fn snapshot_files(data_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_dir.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every byte of a snapshot's file.
async fn bytes_of(snap: &mut SnapshotFile) -> Vec<u8> {
    snap.seek(SeekFrom::Start(0)).await.unwrap();
    let mut out = Vec::new();
    snap.read_to_end(&mut out).await.unwrap();
    out
}

#[test]
fn snapshot_installs_identical_state() {
    rt().block_on(async {
        let (da, db) = (TempDir::new().unwrap(), TempDir::new().unwrap());
        let (_, mut a) = open(da.path()).unwrap();
        a.apply(sample_log()).await.unwrap();
        let mut builder = a.get_snapshot_builder().await;
        // Changes after the builder was taken must not leak into the snapshot.
        let later = entry(
            100,
            Command::Expire(Expire {
                at: Timestamp(1_900_000_000_000),
            }),
        );
        let digest_at_capture = a.reader().digest().unwrap();
        let index_at_capture = change_index(&a);
        a.apply(vec![later]).await.unwrap();
        let snap = builder.build_snapshot().await.unwrap();

        let (_, mut b) = open(db.path()).unwrap();
        b.install_snapshot(&snap.meta, snap.snapshot).await.unwrap();
        assert_eq!(b.reader().digest().unwrap(), digest_at_capture);
        assert_eq!(change_index(&b), index_at_capture, "rebuilt at install");
        let current = b
            .get_current_snapshot()
            .await
            .unwrap()
            .expect("snapshot stored");
        assert_eq!(current.meta, snap.meta);
        assert_federation_loaded(&b);
        assert_eq!(
            snapshot_files(db.path()),
            [format!("{}.snap", snap.meta.snapshot_id)]
        );
        // And the install survives a restart.
        drop(b);
        let (_, b) = open(db.path()).unwrap();
        assert_eq!(b.reader().digest().unwrap(), digest_at_capture);
        assert_eq!(change_index(&b), index_at_capture);
        assert_federation_loaded(&b);
    });
}

#[test]
fn a_snapshot_sent_in_small_chunks_installs_identical_state() {
    rt().block_on(async {
        let (da, db) = (TempDir::new().unwrap(), TempDir::new().unwrap());
        let (_, mut a) = open(da.path()).unwrap();
        a.apply(sample_log()).await.unwrap();
        a.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        let digest = a.reader().digest().unwrap();
        // What the leader sends is its current snapshot.
        let mut sent = a.get_current_snapshot().await.unwrap().unwrap();

        let (_, mut b) = open(db.path()).unwrap();
        b.apply(sample_log()[..5].to_vec()).await.unwrap();
        let mut received = b.begin_receiving_snapshot().await.unwrap();
        send_in_chunks(&mut sent.snapshot, &mut received, 1000).await;
        b.install_snapshot(&sent.meta, received).await.unwrap();
        assert_eq!(b.reader().digest().unwrap(), digest);
        assert_federation_loaded(&b);
        // The received file became the current snapshot; the transfer left nothing else.
        assert_eq!(
            snapshot_files(db.path()),
            [format!("{}.snap", sent.meta.snapshot_id)]
        );
        let again = b.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(again.meta, sent.meta);
    });
}

#[test]
fn a_late_build_does_not_replace_a_newer_installed_snapshot() {
    rt().block_on(async {
        let (da, db) = (TempDir::new().unwrap(), TempDir::new().unwrap());
        let log = sample_log();
        // A is behind: it starts a build at the log's midpoint.
        let (_, mut a) = open(da.path()).unwrap();
        a.apply(log[..10].to_vec()).await.unwrap();
        let mut old_build = a.get_snapshot_builder().await;
        // B has everything and builds the newer snapshot, which A installs.
        let (_, mut b) = open(db.path()).unwrap();
        b.apply(log.clone()).await.unwrap();
        let newer = b
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        a.install_snapshot(&newer.meta, newer.snapshot)
            .await
            .unwrap();
        // The old build finishes only now: it is still readable, but not current, and its
        // file is gone.
        let mut old = old_build.build_snapshot().await.unwrap();
        assert!(!bytes_of(&mut old.snapshot).await.is_empty());
        let current = a.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, newer.meta);
        assert_eq!(
            snapshot_files(da.path()),
            [format!("{}.snap", newer.meta.snapshot_id)]
        );
    });
}

#[test]
fn only_the_current_snapshots_file_is_kept() {
    rt().block_on(async {
        let dir = TempDir::new().unwrap();
        let log = sample_log();
        let (_, mut a) = open(dir.path()).unwrap();
        a.apply(log[..10].to_vec()).await.unwrap();
        let first = a
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        a.apply(log[10..].to_vec()).await.unwrap();
        let second = a
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_ne!(first.meta.snapshot_id, second.meta.snapshot_id);
        assert_eq!(
            snapshot_files(dir.path()),
            [format!("{}.snap", second.meta.snapshot_id)]
        );
        // A stop's leftovers go at the next open.
        drop(a);
        std::fs::write(dir.path().join("snapshots/build-77.tmp"), b"partial").unwrap();
        std::fs::write(dir.path().join("snapshots/1-1-3.snap"), b"not current").unwrap();
        let (_, mut a) = open(dir.path()).unwrap();
        assert_eq!(
            snapshot_files(dir.path()),
            [format!("{}.snap", second.meta.snapshot_id)]
        );
        let current = a.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, second.meta);
    });
}

/// A bad file, and the words its refusal must contain.
struct Bad {
    what: &'static str,
    bytes: Vec<u8>,
    says: &'static str,
}

/// Ways a snapshot file can be wrong, made from a good one.
fn bad_files(good: &[u8], other_snapshot: &[u8]) -> Vec<Bad> {
    let text = String::from_utf8(good.to_vec()).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    assert!(lines.len() > 10, "the sample snapshot has records");
    let without = |skip: usize| -> Vec<u8> {
        let kept = lines.iter().enumerate().filter(|(i, _)| *i != skip);
        kept.flat_map(|(_, l)| l.bytes()).collect()
    };
    let replacing = |at: usize, line: &str| -> Vec<u8> {
        let mut out = String::new();
        for (i, l) in lines.iter().enumerate() {
            out.push_str(if i == at { line } else { l });
        }
        out.into_bytes()
    };
    let header = lines[0];
    let too_long = [header.as_bytes(), &vec![b'x'; MAX_LINE + 10]].concat();
    let altered = text.replacen("user-1", "user-9", 1).into_bytes();
    assert_ne!(altered, good);
    vec![
        Bad {
            what: "cut inside a line",
            bytes: good[..good.len() / 2].to_vec(),
            says: "cut short",
        },
        Bad {
            what: "without its end line",
            bytes: without(lines.len() - 1),
            says: "cut short",
        },
        Bad {
            what: "a record line missing",
            bytes: without(3),
            says: "counts",
        },
        Bad {
            what: "a byte altered",
            bytes: altered,
            says: "checksum",
        },
        Bad {
            what: "a malformed record",
            bytes: replacing(4, "{\"session\":{\"id\":42}}\n"),
            says: "line 5 is not a valid record",
        },
        Bad {
            what: "a second header",
            bytes: replacing(2, header),
            says: "line 3 is a second header",
        },
        Bad {
            what: "a line too long",
            bytes: too_long,
            says: "line 2 is longer than",
        },
        Bad {
            what: "a later format",
            bytes: replacing(0, "{\"header\":{\"format\":3,\"chunks\":[]}}\n"),
            says: "format 3",
        },
        Bad {
            what: "not a snapshot",
            bytes: b"hello\n".to_vec(),
            says: "line 1 is not a valid header",
        },
        Bad {
            what: "empty",
            bytes: Vec::new(),
            says: "empty",
        },
        Bad {
            what: "data after the end line",
            bytes: [good, b"{\"nonce\":{}}\n"].concat(),
            says: "follows the end line",
        },
        Bad {
            what: "another snapshot's file",
            bytes: other_snapshot.to_vec(),
            says: "not {snapshot_id",
        },
    ]
}

#[test]
fn a_bad_snapshot_is_refused_saying_why_and_changes_nothing() {
    rt().block_on(async {
        let (da, db) = (TempDir::new().unwrap(), TempDir::new().unwrap());
        let log = sample_log();
        let (_, mut a) = open(da.path()).unwrap();
        a.apply(log[..8].to_vec()).await.unwrap();
        let mut other = a
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        let other = bytes_of(&mut other.snapshot).await;
        a.apply(log[8..].to_vec()).await.unwrap();
        let mut snap = a
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        let good = bytes_of(&mut snap.snapshot).await;

        let (_, mut b) = open(db.path()).unwrap();
        b.apply(log[..5].to_vec()).await.unwrap();
        b.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        let before = b.reader().digest().unwrap();
        let sessions = b.reader().read(|s| s.len());
        let files = snapshot_files(db.path());
        for bad in bad_files(&good, &other) {
            let mut received = b.begin_receiving_snapshot().await.unwrap();
            received.write_all(&bad.bytes).await.unwrap();
            received.shutdown().await.unwrap();
            let err = b
                .install_snapshot(&snap.meta, received)
                .await
                .expect_err(bad.what)
                .to_string();
            assert!(
                err.contains(bad.says),
                "{}: {err:?} does not say {:?}",
                bad.what,
                bad.says
            );
            assert_eq!(b.reader().digest().unwrap(), before, "{}", bad.what);
            assert_eq!(b.reader().read(|s| s.len()), sessions, "{}", bad.what);
            assert_eq!(snapshot_files(db.path()), files, "{}", bad.what);
        }
        // The good one still installs.
        let mut received = b.begin_receiving_snapshot().await.unwrap();
        received.write_all(&good).await.unwrap();
        received.shutdown().await.unwrap();
        b.install_snapshot(&snap.meta, received).await.unwrap();
        assert_eq!(b.reader().digest().unwrap(), a.reader().digest().unwrap());
    });
}

#[test]
fn an_install_stopped_part_way_is_finished_when_the_store_opens() {
    rt().block_on(async {
        let (da, db) = (TempDir::new().unwrap(), TempDir::new().unwrap());
        let log = sample_log();
        let (_, mut a) = open(da.path()).unwrap();
        a.apply(log.clone()).await.unwrap();
        let snap = a
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        let digest = a.reader().digest().unwrap();
        let sessions = a.reader().read(|s| s.len());

        let (_, mut b) = open(db.path()).unwrap();
        b.apply(log[..6].to_vec()).await.unwrap();
        // Batches of 5 records, stopped after the second: the disk holds part of the state,
        // as after a crash in the middle of the write pass.
        let plan = WritePlan {
            batch: 5,
            stop_after: Some(2),
        };
        b.install(&snap.meta, *snap.snapshot, plan)
            .await
            .expect_err("stopped");
        // The disk holds part of the new state; its readers are told to retry rather than
        // shown it.
        assert!(matches!(b.reader().digest(), Err(ReadError::Installing)));
        assert!(matches!(
            b.reader().audit(&AuditQuery {
                limit: 10,
                ..AuditQuery::default()
            }),
            Err(ReadError::Installing)
        ));

        drop(b);
        let (_, mut b) = open(db.path()).unwrap();
        assert_eq!(b.reader().digest().unwrap(), digest);
        assert_eq!(b.reader().read(|s| s.len()), sessions);
        assert_federation_loaded(&b);
        assert_eq!(b.applied_state().await.unwrap().0, snap.meta.last_log_id);
        let current = b.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, snap.meta);
        assert_eq!(
            snapshot_files(db.path()),
            [format!("{}.snap", snap.meta.snapshot_id)]
        );
        // Finished once: opening again changes nothing.
        drop((b, current));
        let (_, b) = open(db.path()).unwrap();
        assert_eq!(b.reader().digest().unwrap(), digest);
    });
}

//! The memory a snapshot costs: fills a store with N sessions, builds a snapshot, sends it in
//! 1 MiB chunks (as openraft does) to a fresh store and installs it there, and prints one JSON
//! line with the process's resident memory around each step (Linux: `/proc/self/status`).
//!
//! N is 20,000 in CI; `SESSYNC_SNAPSHOT_SESSIONS=1000000` measures a million (docs/testing.md,
//! "Snapshots"). Run it alone (`cargo test --release -p sessync-node --lib snapshot_rss --
//! --nocapture`): the peaks are the whole process's, so tests running beside it count too. It
//! asserts only that the install gives the same state; the figures are for reading.

use std::time::Instant;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::EntryPayload;
use sessync_proto::{Device, Policy, SessionId, Timestamp, UserId};
use tempfile::TempDir;

use super::snapshot_tests::send_in_chunks;
use super::tests::{log_id, rt};
use super::*;
use crate::raft_types::Entry;
use crate::session::{Command, Create, SetPolicy, TokenHash};

/// Entries per `apply` call while filling.
const FILL_BATCH: u64 = 1000;

/// A field of `/proc/self/status` in KiB (0 where there is none).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Resets the peak (`VmHWM`) to the current resident size; whether the kernel allowed it.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// A login of its own user, so no limit ends any session.
fn create(index: u64, n: u64) -> Entry {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    Entry {
        log_id: log_id(index),
        payload: EntryPayload::Normal(Command::Create(Create {
            at: Timestamp(1_800_000_000_000 + n),
            session_id: SessionId::from_random(id),
            token_hash: TokenHash::of(&format!("token-{n}")),
            user_id: UserId::parse_field(&format!("user-{n}"), "user_id").unwrap(),
            device: Device {
                name: Some(format!("device {n}")),
                ..Device::default()
            },
            origin: Some("rss".to_owned()),
            idempotency_key: None,
            by: Some("app".to_owned()),
        })),
    }
}

/// Applies the policy and `sessions` logins, in batches.
async fn fill(sm: &mut StateMachineStore, sessions: u64) {
    let policy = Command::SetPolicy(SetPolicy {
        at: Timestamp(1_800_000_000_000),
        policy: Policy::default(),
        by: None,
    });
    sm.apply(vec![Entry {
        log_id: log_id(1),
        payload: EntryPayload::Normal(policy),
    }])
    .await
    .unwrap();
    let mut n = 0;
    while n < sessions {
        let end = (n + FILL_BATCH).min(sessions);
        sm.apply((n..end).map(|n| create(n + 2, n)).collect::<Vec<_>>())
            .await
            .unwrap();
        n = end;
    }
}

/// What the test prints, in this order.
#[derive(serde::Serialize)]
struct Figures {
    sessions: u64,
    snapshot_bytes: u64,
    rss_start_kib: u64,
    rss_filled_kib: u64,
    /// Seconds waited after the fill for RocksDB's own flushes and compactions.
    settle_s: u64,
    rss_build_start_kib: u64,
    peak_build_kib: u64,
    rss_install_start_kib: u64,
    peak_install_kib: u64,
    /// Whether the peaks are of their step alone (the kernel let the test reset the peak).
    peak_reset: bool,
    fill_s: f64,
    build_s: f64,
    transfer_s: f64,
    install_s: f64,
}

fn tenths(s: f64) -> f64 {
    (s * 10.0).round() / 10.0
}

#[test]
#[allow(clippy::print_stdout)] // the figures are what this test is for
fn snapshot_rss() {
    let sessions: u64 = std::env::var("SESSYNC_SNAPSHOT_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    rt().block_on(async {
        let (da, db) = (TempDir::new().unwrap(), TempDir::new().unwrap());
        let rss_start = status_kib("VmRSS");
        let t = Instant::now();
        let (_, mut a) = open(da.path()).unwrap();
        fill(&mut a, sessions).await;
        let fill_s = t.elapsed().as_secs_f64();
        let rss_filled = status_kib("VmRSS");
        assert_eq!(a.reader().read(|s| s.len()) as u64, sessions);

        // RocksDB flushes and compacts what the fill wrote for a while after it; for a large
        // fill that work would be counted as the build's.
        let settle_s = if sessions >= 100_000 { 15 } else { 0 };
        std::thread::sleep(std::time::Duration::from_secs(settle_s));
        let rss_build_start = status_kib("VmRSS");
        let reset = reset_peak();
        let t = Instant::now();
        let snap = a
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        let build_s = t.elapsed().as_secs_f64();
        let peak_build = status_kib("VmHWM");
        let bytes = std::fs::metadata(
            da.path()
                .join("snapshots")
                .join(format!("{}.snap", snap.meta.snapshot_id)),
        )
        .unwrap()
        .len();
        drop(snap);
        let digest = a.reader().digest().unwrap();

        let (_, mut b) = open(db.path()).unwrap();
        let rss_install_start = status_kib("VmRSS");
        reset_peak();
        let t = Instant::now();
        let mut sent = a.get_current_snapshot().await.unwrap().unwrap();
        let mut received = b.begin_receiving_snapshot().await.unwrap();
        send_in_chunks(&mut sent.snapshot, &mut received, 1024 * 1024).await;
        let transfer_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        b.install_snapshot(&sent.meta, received).await.unwrap();
        let install_s = t.elapsed().as_secs_f64();
        let peak_install = status_kib("VmHWM");
        assert_eq!(b.reader().digest().unwrap(), digest);
        assert_eq!(b.reader().read(|s| s.len()) as u64, sessions);
        let figures = Figures {
            sessions,
            snapshot_bytes: bytes,
            rss_start_kib: rss_start,
            rss_filled_kib: rss_filled,
            settle_s,
            rss_build_start_kib: rss_build_start,
            peak_build_kib: peak_build,
            rss_install_start_kib: rss_install_start,
            peak_install_kib: peak_install,
            peak_reset: reset,
            fill_s: tenths(fill_s),
            build_s: tenths(build_s),
            transfer_s: tenths(transfer_s),
            install_s: tenths(install_s),
        };
        println!("{}", serde_json::to_string(&figures).unwrap());
    });
}

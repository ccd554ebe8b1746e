//! The progress line `cluster add-learner` shows on stderr while the leader waits for the
//! learner to catch up: a spinner with the learner's matched index against the leader's last
//! log index, redrawn from `GET /cluster/status` twice a second. Only on a terminal.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use sessync_client::Client;
use sessync_proto::api::ClusterStatus;
use tokio::task::JoinHandle;

use super::cluster::gather_status;

/// How often the leader's status is asked.
const POLL: Duration = Duration::from_millis(500);
/// Deadline of each status poll.
const POLL_TIMEOUT: Duration = Duration::from_secs(2);
const FRAMES: [char; 4] = ['|', '/', '-', '\\'];

/// A running progress line; [`Progress::finish`] stops it and clears the line.
pub(super) struct Progress {
    task: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts the progress line for learner `node_id` if stderr is a terminal (else a no-op).
    pub(super) fn start(client: &Client, node_id: u64) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress { task: None };
        }
        let client = client.clone().with_timeout(POLL_TIMEOUT);
        let task = tokio::spawn(async move {
            let mut line = format!("waiting for learner {node_id} to catch up");
            for frame in FRAMES.iter().cycle() {
                {
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[2K{frame} {line}");
                    let _ = err.flush();
                }
                let views = gather_status(&client).await;
                let leader = views
                    .iter()
                    .filter_map(|(_, r)| r.as_ref().ok())
                    .find(|s| s.role == "leader");
                if let Some(leader) = leader {
                    line = progress_text(leader, node_id);
                }
                tokio::time::sleep(POLL).await;
            }
        });
        Progress { task: Some(task) }
    }

    /// Stops the line and erases it.
    pub(super) fn finish(self) {
        if let Some(task) = self.task {
            task.abort();
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

/// `learner 4: matched 12 / 40 (leader 1)` from the leader's status.
pub(super) fn progress_text(leader: &ClusterStatus, node_id: u64) -> String {
    let matched = leader
        .members
        .iter()
        .find(|m| m.node_id == node_id)
        .and_then(|m| m.matched_index);
    let last = leader
        .last_log_index
        .map_or_else(|| "-".to_owned(), |i| i.to_string());
    match matched {
        Some(m) => format!(
            "learner {node_id}: matched {m} / {last} (leader {})",
            leader.node_id
        ),
        None => format!(
            "learner {node_id}: matched - / {last} (leader {})",
            leader.node_id
        ),
    }
}

#[cfg(test)]
mod tests {
    use sessync_proto::api::MemberStatus;
    use sessync_proto::SiteName;

    use super::*;

    #[test]
    fn text_shows_matched_against_last_log() {
        let mut s = ClusterStatus {
            node_id: 1,
            cluster_id: None,
            site: SiteName::parse_field("test", "site").unwrap(),
            role: "leader".into(),
            initialized: true,
            leader: Some(1),
            leader_url: None,
            term: 2,
            last_log_index: Some(40),
            last_applied: Some(40),
            snapshot_index: None,
            members: vec![MemberStatus {
                node_id: 4,
                url: "http://x:1".into(),
                voter: false,
                matched_index: Some(12),
            }],
            policy_file_differs: Vec::new(),
            not_ready: Vec::new(),
            clock_offset_ms: None,
            clock_skewed: false,
            membership_index: None,
            bootstrap: None,
            version: String::new(),
            build: String::new(),
            draining: false,
        };
        assert_eq!(
            progress_text(&s, 4),
            "learner 4: matched 12 / 40 (leader 1)"
        );
        s.members.clear();
        assert_eq!(progress_text(&s, 4), "learner 4: matched - / 40 (leader 1)");
    }
}

//! The history of a chaos run: what the run was, every operation the workload's clients
//! invoked with its completion and result, each fault the nemesis injected and healed, and what
//! the run read back once the faults had healed. [`HistoryWriter`] appends it as JSONL while the
//! run goes on (one [`Entry`] per line), so even a run that dies leaves its history; the
//! checker ([`crate::checker`]) reads it back as a [`History`].
//!
//! Times are milliseconds since the run began, on the runner's monotonic clock: the order of
//! completions and invocations is what linearizability is judged by. Tokens never appear here;
//! sessions are named by their public id.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sessync_proto::{SessionId, UserId};

/// One line of the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    /// The first line: what was run.
    Run(RunInfo),
    /// One operation, written when it completed (or was given up on).
    Op(Op),
    /// A fault injected or healed, or a recovery measured.
    Fault(FaultEvent),
    /// Read back after the faults healed.
    Final(Final),
}

/// What was run: enough to replay it and to judge it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub seed: u64,
    pub scenario: String,
    /// Each site's session limit per user (0: none) and `on_limit`.
    pub sites: BTreeMap<String, SitePolicy>,
    /// How long after the faults healed the cluster must take writes again.
    pub recovery_bound_ms: u64,
}

/// The policy the checker judges a site by.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SitePolicy {
    pub max_concurrent_sessions: u32,
    pub on_limit: String,
}

/// One operation of one client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Unique in the run.
    pub id: u64,
    /// The workload client that made it.
    pub client: u32,
    pub site: String,
    /// The node the request was sent to first.
    pub node: u64,
    /// Through the Rust client library, or hand-made HTTP.
    pub via: Via,
    pub invoke_ms: u64,
    pub complete_ms: u64,
    pub call: Call,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// How a request was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Client,
    Raw,
}

/// What was asked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Call {
    Create {
        user: UserId,
        idempotency_key: String,
    },
    Validate {
        session: SessionId,
        /// Linearizable (`false`: local, this node's replica).
        linearizable: bool,
        touch: bool,
    },
    Touch {
        session: SessionId,
    },
    Get {
        session: SessionId,
    },
    End {
        session: SessionId,
    },
    Verify {
        user: UserId,
        session: SessionId,
        targets: Vec<String>,
    },
    Invalidate {
        user: UserId,
        session: Option<SessionId>,
        targets: Vec<String>,
    },
    /// The user's active sessions (a linearizable read).
    List {
        user: UserId,
    },
}

impl Call {
    /// The kind's name, for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Call::Create { .. } => "create",
            Call::Validate {
                linearizable: true, ..
            } => "validate",
            Call::Validate { .. } => "validate_local",
            Call::Touch { .. } => "touch",
            Call::Get { .. } => "get",
            Call::End { .. } => "end",
            Call::Verify { targets, .. } if !targets.is_empty() => "verify_fanout",
            Call::Verify { .. } => "verify",
            Call::Invalidate { targets, .. } if !targets.is_empty() => "invalidate_fanout",
            Call::Invalidate { .. } => "invalidate",
            Call::List { .. } => "list",
        }
    }

    /// Whether it changes state (a write).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Call::Create { .. } | Call::End { .. } | Call::Verify { .. } | Call::Invalidate { .. }
        )
    }
}

/// How it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Acknowledged, with what it answered.
    Ok { ret: Ret },
    /// Refused for certain: nothing happened (a 4xx answer). Some refusals are linearizable
    /// reads too: a touch refused because the session ended or is blocked, a verify refused
    /// because the chosen session is no longer live; `seen` is the state such a refusal reports.
    Fail {
        code: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seen: Option<Seen>,
    },
    /// No answer, or one that does not say (a timeout, 503): it may or may not have happened.
    Unknown { why: String },
}

/// What an acknowledged operation answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ret", rename_all = "snake_case")]
pub enum Ret {
    Created {
        session: SessionId,
        state: Seen,
    },
    /// A validate, touch or get: the state it saw.
    Seen {
        state: Seen,
    },
    Ended,
    Verified {
        kept: SessionId,
        ended: u32,
        fanout: BTreeMap<String, String>,
    },
    Invalidated {
        ended: u32,
        fanout: BTreeMap<String, String>,
    },
    Listed {
        active: Vec<SessionId>,
    },
}

/// A session's state as a reader saw it. States only move forward (absent, blocked, active,
/// ended; blocked may skip to ended), which is what the register check leans on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seen {
    /// Unknown to the node (never created, or not yet).
    Absent,
    Blocked,
    Active,
    Ended,
}

/// The [`FaultEvent::fault`] of a node's data dir deleted: `start` before the node is killed,
/// `stop` once it runs again (empty). A node's local reads are judged within one life of its
/// data, and those whose interval meets that window belong to neither life.
pub const WIPE: &str = "wipe";

/// A fault the nemesis injected or healed, or a recovery it timed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultEvent {
    pub at_ms: u64,
    pub site: String,
    /// `kill`, `partition`, `pause`, `clock_skew`, ... (see the nemesis).
    pub fault: String,
    pub phase: Phase,
    /// The nodes it touched.
    pub nodes: Vec<u64>,
    /// Readable detail (`"{1} | {2,3}"`, `"+180 s"`).
    pub detail: String,
    /// For [`Phase::Recovered`]: ms from the heal to the first acknowledged write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_ms: Option<u64>,
}

/// Where a fault is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Start,
    Stop,
    /// After a heal: the site took a write again (or did not, `recovery_ms: None`).
    Recovered,
}

/// What the run read back once every fault had healed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum Final {
    /// A session, read linearizably.
    Session {
        site: String,
        session: SessionId,
        state: Seen,
    },
    /// A session validated locally (no touch) on one node, after that node caught up.
    Local {
        site: String,
        node: u64,
        session: SessionId,
        state: Seen,
    },
    /// A user's active sessions, read linearizably.
    Active {
        site: String,
        user: UserId,
        active: Vec<SessionId>,
    },
    /// One node's state digest at the index it had applied.
    Digest {
        site: String,
        node: u64,
        applied: u64,
        digest: String,
    },
    /// A fan-out the origin put in its outbox (its `fanout_queued` audit event).
    FanoutQueued {
        origin: String,
        target: String,
        op_id: String,
    },
    /// A peer's operation a target site applied (`fanout_received`; `duplicate` when it was a
    /// repeat the site recognised and did not apply again).
    FanoutReceived {
        site: String,
        origin: String,
        op_id: String,
        duplicate: bool,
    },
    /// What is still in a site's outbox for a target once the faults healed (should be 0).
    Outbox {
        origin: String,
        target: String,
        pending: u64,
    },
    /// A forged or replayed peer request the nemesis sent, the status it was answered, and for
    /// a 2xx the answer's `applied` (a replay may be answered 2xx, `applied: false`: it is the
    /// origin's own request, and a repeat changes nothing).
    Forged {
        site: String,
        op_id: String,
        replay: bool,
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        applied: Option<bool>,
    },
}

/// A whole history, as the checker reads it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub run: Option<RunInfo>,
    pub ops: Vec<Op>,
    pub faults: Vec<FaultEvent>,
    pub finals: Vec<Final>,
}

impl History {
    /// Sorts entries into a history (any order of lines).
    pub fn from_entries(entries: impl IntoIterator<Item = Entry>) -> History {
        let mut h = History::default();
        for e in entries {
            match e {
                Entry::Run(r) => h.run = Some(r),
                Entry::Op(o) => h.ops.push(o),
                Entry::Fault(f) => h.faults.push(f),
                Entry::Final(f) => h.finals.push(f),
            }
        }
        h.ops.sort_by_key(|o| (o.invoke_ms, o.id));
        h
    }

    /// Reads a JSONL history file.
    pub fn read(path: &Path) -> anyhow::Result<History> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut entries = Vec::new();
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let e: Entry = serde_json::from_str(&line)
                .with_context(|| format!("{}:{}: not a history entry", path.display(), n + 1))?;
            entries.push(e);
        }
        Ok(History::from_entries(entries))
    }

    /// The operation with id `id`.
    pub fn op(&self, id: u64) -> Option<&Op> {
        self.ops.iter().find(|o| o.id == id)
    }
}

/// Appends entries to a JSONL file, flushed per entry; cheap to clone, shared by the clients.
#[derive(Clone)]
pub struct HistoryWriter {
    out: Arc<Mutex<BufWriter<File>>>,
}

impl HistoryWriter {
    /// Creates (truncates) `path`.
    pub fn create(path: &Path) -> anyhow::Result<HistoryWriter> {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(HistoryWriter {
            out: Arc::new(Mutex::new(BufWriter::new(file))),
        })
    }

    /// Appends one entry.
    pub fn write(&self, entry: &Entry) -> anyhow::Result<()> {
        let line = serde_json::to_string(entry)?;
        let mut out = self.out.lock();
        writeln!(out, "{line}")?;
        out.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let w = HistoryWriter::create(&path).unwrap();
        let sid = SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "s").unwrap();
        let op = Op {
            id: 7,
            client: 1,
            site: "a".into(),
            node: 2,
            via: Via::Raw,
            invoke_ms: 10,
            complete_ms: 12,
            call: Call::Validate {
                session: sid.clone(),
                linearizable: false,
                touch: true,
            },
            outcome: Outcome::Ok {
                ret: Ret::Seen {
                    state: Seen::Active,
                },
            },
        };
        w.write(&Entry::Op(op.clone())).unwrap();
        w.write(&Entry::Final(Final::Session {
            site: "a".into(),
            session: sid,
            state: Seen::Ended,
        }))
        .unwrap();
        let h = History::read(&path).unwrap();
        assert_eq!(h.ops, vec![op]);
        assert_eq!(h.finals.len(), 1);
        assert_eq!(h.ops[0].call.kind(), "validate_local");
    }
}

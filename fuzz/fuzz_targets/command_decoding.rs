//! Fuzz target `command_decoding`: Raft log entries' commands (`sessync_session::Command`),
//! decoded from JSON as the node reads its log, then applied to the in-memory `SessionStore`
//! the way `StateMachineStore::apply` does (`sessync_session::apply`, no I/O).
//!
//! The input is one command per line; lines that do not decode are skipped, so a mutation that
//! breaks one command leaves the others. Besides "never panics", it checks:
//! - a decoded command encodes and decodes back to itself (the log is JSON);
//! - two stores given the same commands give the same outcomes and mutations (each `HashMap`
//!   has its own random hash keys, so an outcome that depended on a map's order would show);
//! - halfway, the second store is rebuilt from its records, clock and policy alone, as a node
//!   that reopens its data or installs a snapshot does; from then on it must still answer
//!   exactly as the store that never stopped.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use sessync_session::{apply, Command, Mutation, Record, SessionStore};

/// Most commands applied per input, so one input stays fast.
const MAX_COMMANDS: usize = 64;

/// Whether `v` holds a floating-point number: serde_json (without its `float_roundtrip`
/// feature) may read such a number back a bit off, which is serde_json's business, not ours.
fn has_float(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) => n.is_f64(),
        serde_json::Value::Array(a) => a.iter().any(has_float),
        serde_json::Value::Object(o) => o.values().any(has_float),
        _ => false,
    }
}

/// The command's JSON encoding decodes back to the same command.
fn round_trip(cmd: &Command) {
    if let Command::RecordAudit(r) = cmd {
        if r.notes.iter().any(|n| has_float(&n.detail)) {
            return;
        }
    }
    let bytes = serde_json::to_vec(cmd).expect("a command encodes");
    let again: Command = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{cmd:?} encoded as {} does not decode: {e}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(&again, cmd, "the JSON round trip changed the command");
}

/// The records a store holds, as its storage would: put and deleted by the mutations, by key.
#[derive(Default)]
struct Records(BTreeMap<String, Record>);

impl Records {
    fn fold(&mut self, muts: &[Mutation]) {
        for m in muts {
            match m {
                Mutation::Put(r) => {
                    self.0.insert(format!("{:?}", r.key()), r.clone());
                }
                Mutation::Delete(k) => {
                    self.0.remove(&format!("{k:?}"));
                }
                Mutation::SetPolicy(_) | Mutation::Audit(_) | Mutation::TrimAudit(_) => {}
            }
        }
    }

    /// A store loaded from these records, as a reopened node or an installed snapshot has it.
    fn reopen(&self, from: &SessionStore) -> SessionStore {
        let mut store = SessionStore::new();
        store.restore_meta(from.clock(), from.replicated_policy().cloned());
        for r in self.0.values() {
            store.insert(r.clone());
        }
        store
    }
}

fuzz_target!(|bytes: &[u8]| {
    let cmds: Vec<Command> = bytes
        .split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice(line).ok())
        .take(MAX_COMMANDS)
        .collect();
    let reopen_at = cmds.len() / 2;
    let (mut straight, mut other) = (SessionStore::new(), SessionStore::new());
    let mut records = Records::default();
    for (i, cmd) in cmds.iter().enumerate() {
        round_trip(cmd);
        let _ = cmd.at();
        if i == reopen_at {
            other = records.reopen(&other);
        }
        let index = i as u64 + 1;
        let (outcome, muts) = apply(&mut straight, cmd, index);
        let (outcome_b, muts_b) = apply(&mut other, cmd, index);
        assert_eq!(outcome, outcome_b, "command {i}: outcomes differ");
        assert_eq!(muts, muts_b, "command {i}: mutations differ");
        records.fold(&muts_b);
        let _ = serde_json::to_vec(&outcome).expect("an outcome encodes");
    }
    assert_eq!(straight.len(), other.len());
    assert_eq!(straight.clock(), other.clock());
    assert_eq!(straight.next_deadline(), other.next_deadline());
    assert_eq!(straight.oldest_ended(), other.oldest_ended());
});

//! Group commit: client commands proposed while earlier ones are in flight go into the log
//! together, as one [`Command::Batch`] entry, so one log write (one fsync on each node) and one
//! round of replication carry many of them.
//!
//! At most [`IN_FLIGHT`] entries of this path are in flight at once. A command that finds a free
//! slot is proposed at once, alone (no added latency for a lone client); one that finds them all
//! taken waits, and the next slot to free up proposes everything waiting (up to [`MAX_BATCH`])
//! as one entry. The state machine applies a batch's commands one by one as if each were an
//! entry of its own, and each caller gets its own command's outcome.
//!
//! A command is proposed only while its request's deadline stands: one whose caller has been
//! answered already (timed out, gone) is dropped from the wait, never written later behind its
//! caller's back (a create without an idempotency key would otherwise leave a session nobody
//! holds, counting against the user's limit). At most [`MAX_WAITING`] commands wait; past that,
//! a new one is refused at once.

use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Runtime, RuntimeError};
use crate::session::{Batch, Command, Outcome};

/// Entries of this path in flight at once.
const IN_FLIGHT: usize = 2;
/// Most commands in one entry.
const MAX_BATCH: usize = 256;
/// Most commands waiting for a slot.
const MAX_WAITING: usize = 16 * MAX_BATCH;

type Answer = oneshot::Sender<Result<Outcome, RuntimeError>>;

/// The commands waiting for a slot, and how many slots are taken.
pub(super) struct GroupCommit {
    state: Mutex<State>,
}

struct State {
    in_flight: usize,
    waiting: Vec<Waiting>,
}

/// A command waiting for a slot, its caller, and the caller's deadline.
struct Waiting {
    cmd: Command,
    answer: Answer,
    deadline: Instant,
}

impl Waiting {
    /// Whether the caller still waits for it.
    fn wanted(&self, now: Instant) -> bool {
        !self.answer.is_closed() && now < self.deadline
    }
}

impl GroupCommit {
    pub(super) fn new() -> Self {
        GroupCommit {
            state: Mutex::new(State {
                in_flight: 0,
                waiting: Vec::new(),
            }),
        }
    }
}

impl Runtime {
    /// Proposes `cmd` with the commands around it and returns its own outcome once applied;
    /// `cmd` is dropped unproposed if it is still waiting for a slot at `deadline`.
    pub(super) async fn group_write(
        &self,
        cmd: Command,
        deadline: Instant,
    ) -> Result<Outcome, RuntimeError> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut s = self.0.group.state.lock();
            if s.waiting.len() >= MAX_WAITING {
                let now = Instant::now();
                s.waiting.retain(|w| w.wanted(now));
                if s.waiting.len() >= MAX_WAITING {
                    return Err(RuntimeError::Overloaded {
                        waiting: s.waiting.len(),
                    });
                }
            }
            s.waiting.push(Waiting {
                cmd,
                answer: tx,
                deadline,
            });
            let free = s.in_flight < IN_FLIGHT;
            if free {
                s.in_flight += 1;
            }
            free
        };
        if start {
            let rt = self.clone();
            tokio::spawn(async move { rt.propose_waiting().await });
        }
        rx.await.unwrap_or(Err(RuntimeError::ShuttingDown))
    }

    /// Holds one slot: proposes what waits, again and again, until nothing does.
    async fn propose_waiting(&self) {
        loop {
            let mut batch = {
                let mut s = self.0.group.state.lock();
                if s.waiting.is_empty() {
                    s.in_flight -= 1;
                    return;
                }
                let n = s.waiting.len().min(MAX_BATCH);
                s.waiting.drain(..n).collect::<Vec<_>>()
            };
            // Callers past their deadline have had their answer: their commands are not written.
            let now = Instant::now();
            batch.retain(|w| w.wanted(now));
            if batch.len() <= 1 {
                if let Some(w) = batch.pop() {
                    let _ = w.answer.send(self.client_write(w.cmd).await);
                }
                continue;
            }
            let (commands, answers): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|w| (w.cmd, w.answer)).unzip();
            let n = commands.len();
            let failed = match self.client_write(Command::Batch(Batch { commands })).await {
                Ok(Outcome::Batch { outcomes }) if outcomes.len() == n => {
                    for (answer, o) in answers.into_iter().zip(outcomes) {
                        let _ = answer.send(Ok(o));
                    }
                    continue;
                }
                Ok(other) => RuntimeError::Raft(format!("a batch of {n} was answered {other:?}")),
                Err(e) => e,
            };
            for answer in answers {
                let _ = answer.send(Err(failed.clone()));
            }
        }
    }
}

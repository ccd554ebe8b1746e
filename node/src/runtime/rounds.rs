//! Rounds shared by every caller that arrived before they began: the read-index confirmations.
//!
//! A linearizable read must see every write acknowledged before it arrived, so it may use a
//! leadership confirmation (or a read index from the leader) only if that round *started* after
//! the read arrived. Callers queue here; one task at a time runs rounds, each for everyone
//! queued when it starts, so while one round is in flight, every read that arrives waits for
//! the next one, as etcd's read loop does: one heartbeat round (or one RPC to the leader) per
//! round trip, however many reads, instead of one per read.

use parking_lot::Mutex;
use tokio::sync::oneshot;

/// The callers waiting for the next round, and whether a task is running rounds.
pub(super) struct Rounds<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    running: bool,
    waiting: Vec<oneshot::Sender<T>>,
}

impl<T: Clone> Rounds<T> {
    pub(super) fn new() -> Self {
        Rounds {
            state: Mutex::new(State {
                running: false,
                waiting: Vec::new(),
            }),
        }
    }

    /// Queues a caller for the next round; `true` means no task runs rounds and the caller
    /// must start one (which calls [`Rounds::next_round`] until it returns `None`).
    pub(super) fn join(&self) -> (oneshot::Receiver<T>, bool) {
        let (tx, rx) = oneshot::channel();
        let mut s = self.state.lock();
        s.waiting.push(tx);
        let start = !s.running;
        s.running = true;
        (rx, start)
    }

    /// The callers the round about to start answers; `None` (and the running task must stop)
    /// when nobody is waiting.
    pub(super) fn next_round(&self) -> Option<Vec<oneshot::Sender<T>>> {
        let mut s = self.state.lock();
        if s.waiting.is_empty() {
            s.running = false;
            return None;
        }
        Some(std::mem::take(&mut s.waiting))
    }

    /// Answers everyone a round was for.
    pub(super) fn answer(round: Vec<oneshot::Sender<T>>, result: &T) {
        for w in round {
            // A caller that gave up (its deadline passed) is fine.
            let _ = w.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_arriving_during_a_round_waits_for_the_next() {
        let r: Rounds<u32> = Rounds::new();
        let (mut first, start) = r.join();
        assert!(start, "the first caller starts the rounds");
        let round1 = r.next_round().expect("one caller waits");
        // Arrives while round 1 is in flight: not part of it.
        let (mut second, start) = r.join();
        assert!(!start, "a task already runs rounds");
        Rounds::answer(round1, &1);
        assert_eq!(first.try_recv().ok(), Some(1));
        assert!(
            second.try_recv().is_err(),
            "round 1 began before it arrived"
        );
        let round2 = r.next_round().expect("the second caller waits");
        Rounds::answer(round2, &2);
        assert_eq!(second.try_recv().ok(), Some(2));
        assert!(r.next_round().is_none());
        let (_third, start) = r.join();
        assert!(
            start,
            "after the task stopped, the next caller starts one again"
        );
    }
}

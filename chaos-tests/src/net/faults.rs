//! [`Faults`]: which directed node-to-node links are cut, refused, slow or lossy. One table is
//! shared by a cluster's [`super::NodeProxy`]s; every change is signalled to them, so open
//! connections are judged again at once instead of polling the table.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

/// What is wrong with one directed link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LinkFault {
    /// A blackhole, as in a partition: connections are accepted but nothing passes either way.
    /// They are held open until the fault is lifted (then closed: the stream lost bytes) or
    /// the caller gives up, so callers time out rather than being refused.
    Cut,
    /// Connections are closed at once, like a peer that is down. (Once the request head is
    /// read: the proxy must see who sends before it knows the link.)
    Refuse,
    /// Every chunk, both ways, is held this long before it is passed on.
    Delay(Duration),
    /// Each new connection, and each chunk, is lost with this probability (0.0 to 1.0), and
    /// its connection closed: what TCP loss looks like to an HTTP client once retries fail.
    Loss(f64),
}

impl fmt::Display for LinkFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkFault::Cut => f.write_str("cut"),
            LinkFault::Refuse => f.write_str("refused"),
            LinkFault::Delay(d) => write!(f, "delayed {d:?}"),
            LinkFault::Loss(p) => write!(f, "lossy {:.0}%", p * 100.0),
        }
    }
}

/// The fault table of a cluster's directed links `(from, to)`, by node id. Cheap to clone;
/// every clone is the same table. Links without an entry pass normally.
#[derive(Clone)]
pub struct Faults {
    inner: Arc<Inner>,
}

struct Inner {
    table: Mutex<BTreeMap<(u64, u64), LinkFault>>,
    /// Bumped on every change; each open proxied connection waits on it.
    generation: watch::Sender<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Self::new()
    }
}

impl Faults {
    /// An empty table: every link passes.
    pub fn new() -> Faults {
        Faults {
            inner: Arc::new(Inner {
                table: Mutex::new(BTreeMap::new()),
                generation: watch::Sender::new(0),
            }),
        }
    }

    fn table(&self) -> MutexGuard<'_, BTreeMap<(u64, u64), LinkFault>> {
        self.inner.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `change` to the table and tells the open connections.
    fn change(&self, change: impl FnOnce(&mut BTreeMap<(u64, u64), LinkFault>)) {
        change(&mut self.table());
        self.inner.generation.send_modify(|g| *g += 1);
    }

    /// Cuts the link `from → to` (a blackhole, one way: see [`LinkFault::Cut`]).
    pub fn cut(&self, from: u64, to: u64) {
        self.set(from, to, LinkFault::Cut);
    }

    /// Sets the fault of the link `from → to`, replacing any other.
    ///
    /// # Panics
    /// If a [`LinkFault::Loss`] probability is not within 0.0 to 1.0.
    pub fn set(&self, from: u64, to: u64, fault: LinkFault) {
        if let LinkFault::Loss(p) = fault {
            assert!((0.0..=1.0).contains(&p), "a loss probability, not {p}");
        }
        self.change(|t| {
            t.insert((from, to), fault);
        });
    }

    /// Lifts the fault of the link `from → to`.
    pub fn heal(&self, from: u64, to: u64) {
        self.change(|t| {
            t.remove(&(from, to));
        });
    }

    /// Lifts every fault.
    pub fn heal_all(&self) {
        self.change(BTreeMap::clear);
    }

    /// Cuts every directed link between nodes of different groups, both ways; links inside a
    /// group and faults already set elsewhere are left as they are.
    pub fn partition(&self, groups: &[Vec<u64>]) {
        self.change(|t| {
            for (i, a) in groups.iter().enumerate() {
                for (j, b) in groups.iter().enumerate() {
                    if i != j {
                        for &from in a {
                            for &to in b {
                                t.insert((from, to), LinkFault::Cut);
                            }
                        }
                    }
                }
            }
        });
    }

    /// Cuts node `id` off from every other node of `all` (both ways).
    pub fn isolate(&self, id: u64, all: &[u64]) {
        let others: Vec<u64> = all.iter().copied().filter(|&n| n != id).collect();
        self.partition(&[vec![id], others]);
    }

    /// The fault of the link `from → to`, if any.
    pub fn get(&self, from: u64, to: u64) -> Option<LinkFault> {
        self.table().get(&(from, to)).copied()
    }

    /// Every faulty link with its fault, in order.
    pub fn links(&self) -> Vec<((u64, u64), LinkFault)> {
        self.table().iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// The table for a report, e.g. `1→2 cut, 3→1 delayed 200ms`, or `no faults`.
    pub fn describe(&self) -> String {
        let links = self.links();
        if links.is_empty() {
            return "no faults".into();
        }
        let parts: Vec<String> = links
            .iter()
            .map(|((from, to), f)| format!("{from}→{to} {f}"))
            .collect();
        parts.join(", ")
    }

    /// A receiver that wakes on every change of the table.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.generation.subscribe()
    }
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Faults({})", self.describe())
    }
}

//! Refused callers (a missing or wrong API key, a peer site's request with a bad signature):
//! counted per node in metrics by reason, and reported to the replicated audit log in aggregate
//! per interval ("312 failures, unknown key, from 203.0.113.0/24, in 10 s"), never one entry or
//! log line per failure.
//!
//! Sources are networks, not addresses (IPv4 /24, IPv6 /64), so a stranger with many addresses
//! in one network is one source. At most [`MAX_SOURCES`] (network, reason) pairs are reported
//! one by one per interval; failures from further networks are folded into one event per kind
//! and reason ("4100 failures, unknown key, from 212 other networks, in 10 s"). So whatever a
//! stranger sends, a node writes at most [`MAX_SOURCES`] events plus one per reason per
//! interval, and keeps bounded memory.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::audit::AuditReporter;

/// Most (network, reason) pairs reported one by one per interval.
pub(crate) const MAX_SOURCES: usize = 16;

/// Most distinct networks counted among the other sources of one reason per interval; past it
/// the report says "at least".
const MAX_OTHER_NETWORKS: usize = 1024;

/// What was refused: it names the audit event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Refused {
    /// An API call without a valid key of the right role (`auth_failure`).
    ApiKey,
    /// A peer site's request that failed its checks (`fanout_rejected`).
    PeerSite,
}

impl Refused {
    fn kind(self) -> &'static str {
        match self {
            Refused::ApiKey => "auth_failure",
            Refused::PeerSite => "fanout_rejected",
        }
    }
}

/// A caller's network: the /24 of an IPv4 address, the /64 of an IPv6 one (an IPv4 address
/// mapped into IPv6 counts as IPv4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Network {
    V4([u8; 3]),
    V6([u16; 4]),
}

impl Network {
    fn of(ip: IpAddr) -> Network {
        match ip.to_canonical() {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                Network::V4([a, b, c])
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                Network::V6([s[0], s[1], s[2], s[3]])
            }
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Network::V4([a, b, c]) => write!(f, "{a}.{b}.{c}.0/24"),
            Network::V6([a, b, c, d]) => {
                let ip = std::net::Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0);
                write!(f, "{ip}/64")
            }
        }
    }
}

/// One source reported by itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    what: Refused,
    reason: &'static str,
    /// The caller's network (`None`: the address was not known).
    network: Option<Network>,
    /// For peer sites: the site the request claimed, when it is a configured one.
    origin: Option<String>,
}

/// The failures of one kind and reason from networks past [`MAX_SOURCES`].
#[derive(Debug, Default)]
struct Others {
    failures: u64,
    /// Up to [`MAX_OTHER_NETWORKS`] of them.
    networks: HashSet<Option<Network>>,
    /// More networks than were kept.
    more: bool,
}

/// One interval's counts.
#[derive(Debug, Default)]
struct Window {
    named: HashMap<Key, u64>,
    others: HashMap<(Refused, &'static str), Others>,
}

/// Counts refusals for the next aggregated report; cheap to clone.
#[derive(Clone)]
pub(crate) struct Refusals {
    window: Arc<Mutex<Window>>,
}

impl Refusals {
    /// The counter and the task that reports each interval's counts to `audit` until `stop`.
    pub(crate) fn new(
        audit: AuditReporter,
        node_id: u64,
        interval: Duration,
        stop: CancellationToken,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let window = Arc::new(Mutex::new(Window::default()));
        let task = report(window.clone(), audit, node_id, interval, stop);
        (Refusals { window }, task)
    }

    /// Counts one refusal. `origin` is the peer site a request claimed, if configured.
    pub(crate) fn record(
        &self,
        what: Refused,
        reason: &'static str,
        source: Option<IpAddr>,
        origin: Option<&str>,
    ) {
        let network = source.map(Network::of);
        let key = Key {
            what,
            reason,
            network,
            origin: origin.map(str::to_owned),
        };
        let mut w = self.window.lock();
        if let Some(n) = w.named.get_mut(&key) {
            *n += 1;
        } else if w.named.len() < MAX_SOURCES {
            w.named.insert(key, 1);
        } else {
            let others = w.others.entry((what, reason)).or_default();
            others.failures += 1;
            if others.networks.len() < MAX_OTHER_NETWORKS {
                others.networks.insert(network);
            } else if !others.networks.contains(&network) {
                others.more = true;
            }
        }
    }
}

/// The audit events (kind, detail) that report `w`.
fn events(w: Window, node_id: u64, interval: Duration) -> Vec<(&'static str, Value)> {
    let every = humantime::format_duration(interval).to_string();
    let failures = |n: u64| format!("{n} failure{}", if n == 1 { "" } else { "s" });
    let mut out = Vec::new();
    for (key, count) in w.named {
        let source = key
            .network
            .map_or_else(|| "unknown".to_owned(), |n| n.to_string());
        let summary = format!(
            "{}, {}, from {source}, in {every}",
            failures(count),
            key.reason.replace('_', " "),
        );
        out.push((
            key.what.kind(),
            json!({
                "reason": key.reason,
                "count": count,
                "source": source,
                "origin": key.origin,
                "interval_ms": interval.as_millis() as u64,
                "node": node_id,
                "summary": summary,
            }),
        ));
    }
    for ((what, reason), others) in w.others {
        let networks = others.networks.len();
        let at_least = if others.more { "at least " } else { "" };
        let summary = format!(
            "{}, {}, from {at_least}{networks} other network{}, in {every}",
            failures(others.failures),
            reason.replace('_', " "),
            if networks == 1 { "" } else { "s" },
        );
        out.push((
            what.kind(),
            json!({
                "reason": reason,
                "count": others.failures,
                "source": "other",
                "sources": networks,
                "sources_at_least": others.more,
                "origin": null,
                "interval_ms": interval.as_millis() as u64,
                "node": node_id,
                "summary": summary,
            }),
        ));
    }
    out
}

async fn report(
    window: Arc<Mutex<Window>>,
    audit: AuditReporter,
    node_id: u64,
    interval: Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let stopped = stop.run_until_cancelled(tick.tick()).await.is_none();
        let w = std::mem::take(&mut *window.lock());
        for (kind, detail) in events(w, node_id, interval) {
            audit.report(kind, None, detail);
        }
        if stopped {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusals() -> Refusals {
        Refusals {
            window: Arc::new(Mutex::new(Window::default())),
        }
    }

    fn take(r: &Refusals) -> Vec<(&'static str, Value)> {
        let w = std::mem::take(&mut *r.window.lock());
        events(w, 1, Duration::from_secs(10))
    }

    #[test]
    fn a_flood_of_sources_stays_bounded() {
        let r = refusals();
        // 10,000 addresses, each in a network of its own.
        for i in 0..10_000u32 {
            let ip = IpAddr::from((i << 8 | 7).to_be_bytes());
            r.record(Refused::ApiKey, "unknown_key", Some(ip), None);
        }
        {
            let w = r.window.lock();
            assert_eq!(w.named.len(), MAX_SOURCES);
            assert_eq!(w.others.len(), 1);
            assert!(w
                .others
                .values()
                .all(|o| o.networks.len() <= MAX_OTHER_NETWORKS));
        }
        let evs = take(&r);
        // Sixteen sources one by one, and the rest as one event.
        assert_eq!(evs.len(), MAX_SOURCES + 1, "{evs:?}");
        let total: u64 = evs.iter().map(|e| e.1["count"].as_u64().unwrap()).sum();
        assert_eq!(total, 10_000);
        let other = evs.iter().find(|e| e.1["source"] == "other").unwrap();
        assert_eq!(other.1["count"], 10_000 - MAX_SOURCES as u64);
        assert_eq!(other.1["sources"], MAX_OTHER_NETWORKS);
        assert_eq!(other.1["sources_at_least"], true);
        assert_eq!(
            other.1["summary"],
            "9984 failures, unknown key, from at least 1024 other networks, in 10s"
        );
        // Whatever the reasons, at most one more event per reason.
        for i in 0..1000u32 {
            let ip = IpAddr::from((i << 8).to_be_bytes());
            r.record(Refused::ApiKey, "unknown_key", Some(ip), None);
            r.record(Refused::ApiKey, "wrong_role", Some(ip), None);
            r.record(
                Refused::PeerSite,
                "bad_signature",
                Some(ip),
                Some("unknown"),
            );
        }
        assert!(take(&r).len() <= MAX_SOURCES + 3);
    }

    #[test]
    fn addresses_of_one_network_are_one_source() {
        let r = refusals();
        for i in 0..=255u8 {
            r.record(
                Refused::ApiKey,
                "unknown_key",
                Some(IpAddr::from([203, 0, 113, i])),
                None,
            );
            let v6: IpAddr = format!("2001:db8:1:2:{i:x}::1").parse().unwrap();
            r.record(Refused::ApiKey, "unknown_key", Some(v6), None);
        }
        // The same IPv4 address mapped into IPv6.
        let mapped: IpAddr = "::ffff:203.0.113.9".parse().unwrap();
        r.record(Refused::ApiKey, "unknown_key", Some(mapped), None);
        let mut evs = take(&r);
        evs.sort_by_key(|e| e.1["source"].as_str().unwrap().to_owned());
        assert_eq!(evs.len(), 2, "{evs:?}");
        assert_eq!(evs[0].1["source"], "2001:db8:1:2::/64");
        assert_eq!(evs[0].1["count"], 256);
        assert_eq!(evs[1].1["source"], "203.0.113.0/24");
        assert_eq!(evs[1].1["count"], 257);
        assert_eq!(
            evs[1].1["summary"],
            "257 failures, unknown key, from 203.0.113.0/24, in 10s"
        );
    }
}

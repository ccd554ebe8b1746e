//! Refused callers (a missing or wrong API key, a peer site's request with a bad signature):
//! counted per node in metrics by reason, and reported to the replicated audit log as at most
//! one aggregated event per source and reason per interval ("312 failures, unknown key, from
//! 127.0.0.1, in 10 s"), never one entry or log line per failure.
//!
//! Memory is bounded whatever a stranger sends: at most [`MAX_SOURCES`] (source, reason) pairs
//! are kept per interval; failures beyond them are counted under the source `other`.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::audit::AuditReporter;

/// Most (source, reason) pairs kept per interval.
pub(crate) const MAX_SOURCES: usize = 256;

/// What was refused: it names the audit event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Refused {
    /// An API call without a valid key of the right role (`auth_failure`).
    ApiKey,
    /// A peer site's request that failed its signature check (`fanout_rejected`).
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

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    what: Refused,
    reason: &'static str,
    /// The caller's address, or `None` for `other`.
    source: Option<IpAddr>,
    /// For peer sites: the site the request claimed, when it is a configured one.
    origin: Option<String>,
}

/// Counts refusals for the next aggregated report; cheap to clone.
#[derive(Clone)]
pub(crate) struct Refusals {
    window: Arc<Mutex<HashMap<Key, u64>>>,
}

impl Refusals {
    /// The counter and the task that reports each interval's counts to `audit` until `stop`.
    pub(crate) fn new(
        audit: AuditReporter,
        node_id: u64,
        interval: Duration,
        stop: CancellationToken,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let window = Arc::new(Mutex::new(HashMap::new()));
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
        let mut w = self.window.lock();
        let mut key = Key {
            what,
            reason,
            source,
            origin: origin.map(str::to_owned),
        };
        if !w.contains_key(&key) && w.len() >= MAX_SOURCES {
            key.source = None;
            key.origin = None;
        }
        *w.entry(key).or_insert(0) += 1;
    }
}

async fn report(
    window: Arc<Mutex<HashMap<Key, u64>>>,
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
        let counts = std::mem::take(&mut *window.lock());
        for (key, count) in counts {
            let source = key
                .source
                .map_or_else(|| "other".to_owned(), |ip| ip.to_string());
            let summary = format!(
                "{count} failure{}, {}, from {source}, in {}",
                if count == 1 { "" } else { "s" },
                key.reason.replace('_', " "),
                humantime::format_duration(interval)
            );
            audit.report(
                key.what.kind(),
                None,
                json!({
                    "reason": key.reason,
                    "count": count,
                    "source": source,
                    "origin": key.origin,
                    "interval_ms": interval.as_millis() as u64,
                    "node": node_id,
                    "summary": summary,
                }),
            );
        }
        if stopped {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_sources_stays_bounded() {
        let w = Refusals {
            window: Arc::new(Mutex::new(HashMap::new())),
        };
        for i in 0..10_000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            w.record(Refused::ApiKey, "unknown_key", Some(ip), None);
        }
        let m = w.window.lock();
        assert!(m.len() <= MAX_SOURCES + 1, "{}", m.len());
        assert_eq!(m.values().sum::<u64>(), 10_000);
    }
}

//! Replicas and recovery: nodes of a site that applied the same index hold the same state
//! digest, and after each heal the site took a write again within the run's bound.

use std::collections::BTreeMap;

use super::{Anomaly, AnomalyKind};
use crate::history::{Final, History, Phase};

pub(super) fn check(h: &History) -> Vec<Anomaly> {
    let mut found = Vec::new();
    let mut digests: BTreeMap<(&str, u64), BTreeMap<&str, Vec<u64>>> = BTreeMap::new();
    for f in &h.finals {
        if let Final::Digest {
            site,
            node,
            applied,
            digest,
        } = f
        {
            digests
                .entry((site, *applied))
                .or_default()
                .entry(digest)
                .or_default()
                .push(*node);
        }
    }
    for ((site, applied), by_digest) in &digests {
        if by_digest.len() > 1 {
            let nodes: Vec<String> = by_digest
                .iter()
                .map(|(d, n)| format!("{n:?} hold {}", &d[..d.len().min(12)]))
                .collect();
            found.push(Anomaly::new(
                AnomalyKind::DivergentReplicas,
                format!("{site} at index {applied}: {}", nodes.join(", ")),
                vec![],
            ));
        }
    }
    let bound = h.run.as_ref().map_or(u64::MAX, |r| r.recovery_bound_ms);
    for f in h.faults.iter().filter(|f| f.phase == Phase::Recovered) {
        match f.recovery_ms {
            Some(ms) if ms <= bound => {}
            Some(ms) => found.push(Anomaly::new(
                AnomalyKind::SlowRecovery,
                format!(
                    "{} took {ms} ms to take a write after {} healed (bound {bound} ms)",
                    f.site, f.detail
                ),
                vec![],
            )),
            None => found.push(Anomaly::new(
                AnomalyKind::SlowRecovery,
                format!("{} took no write after {} healed", f.site, f.detail),
                vec![],
            )),
        }
    }
    found
}

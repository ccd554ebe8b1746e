//! The federation part of the replicated state: the outbox of operations owed to peer sites,
//! the operations received from peers (so a repeated delivery is applied once), and the nonces
//! peers have used (so a replayed request is refused on every node of the site).
//!
//! Like the session records, these are state only through `Mutation`s, which the storage
//! layer persists in the same batch as the applied log id.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sessync_proto::federation::PeerOpKind;
use sessync_proto::{OpId, SessionId, SiteName, Timestamp, UserId};

use super::mutation::{Record, RecordKey};

/// One operation committed here and not yet acknowledged by its target site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub site: SiteName,
    pub op_id: OpId,
    pub kind: PeerOpKind,
    pub user_id: UserId,
    pub session_id: Option<SessionId>,
    /// Cluster time of the commit: the operation's origin time at its targets.
    pub queued_at: Timestamp,
    /// Undelivered by then, the entry is dropped (`fanout_expired`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

/// An operation a peer delivered and this site applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedOp {
    pub origin: SiteName,
    pub op_id: OpId,
    /// Cluster time it was applied.
    pub at: Timestamp,
    pub ended: u32,
    /// The origin's time of the operation (None for operations received before it was sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_time: Option<Timestamp>,
}

impl ReceivedOp {
    /// The time its retention counts from: the later of its origin time and its apply time,
    /// so it is kept at least as long as a redelivery of it is accepted (one whose origin time
    /// is within the retention).
    pub fn kept_from(&self) -> Timestamp {
        self.origin_time.map_or(self.at, |o| o.max(self.at))
    }
}

/// A nonce a peer used, remembered until `until` (after which its timestamp is out of the
/// window and a replay is refused for that).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenNonce {
    pub origin: SiteName,
    pub nonce: String,
    pub until: Timestamp,
}

/// Everything federation keeps in the replicated state, with the indexes its users need.
#[derive(Debug, Default)]
pub struct Ledger {
    /// By target site, then commit time: each site's queue in delivery order.
    outbox: BTreeMap<SiteName, BTreeMap<(Timestamp, OpId), OutboxEntry>>,
    outbox_at: BTreeMap<(SiteName, OpId), Timestamp>,
    received: BTreeMap<(SiteName, OpId), ReceivedOp>,
    /// By [`ReceivedOp::kept_from`].
    received_by_time: BTreeSet<(Timestamp, SiteName, OpId)>,
    /// How many operations of each origin are remembered.
    received_count: BTreeMap<SiteName, usize>,
    /// Outbox entries by expiry time.
    outbox_expiry: BTreeSet<(Timestamp, SiteName, OpId)>,
    nonces: BTreeMap<(SiteName, String), Timestamp>,
    nonces_by_time: BTreeSet<(Timestamp, SiteName, String)>,
}

impl Ledger {
    /// Inserts or replaces a federation record.
    pub(crate) fn put(&mut self, r: &Record) {
        match r {
            Record::Outbox(e) => {
                if let Some(t) = e.expires_at {
                    self.outbox_expiry
                        .insert((t, e.site.clone(), e.op_id.clone()));
                }
                self.outbox_at
                    .insert((e.site.clone(), e.op_id.clone()), e.queued_at);
                self.outbox
                    .entry(e.site.clone())
                    .or_default()
                    .insert((e.queued_at, e.op_id.clone()), e.clone());
            }
            Record::Received(r) => {
                let key = (r.origin.clone(), r.op_id.clone());
                if let Some(old) = self.received.insert(key, r.clone()) {
                    self.received_by_time
                        .remove(&(old.kept_from(), old.origin, old.op_id));
                } else {
                    *self.received_count.entry(r.origin.clone()).or_default() += 1;
                }
                self.received_by_time
                    .insert((r.kept_from(), r.origin.clone(), r.op_id.clone()));
            }
            Record::Nonce(n) => {
                self.nonces_by_time
                    .insert((n.until, n.origin.clone(), n.nonce.clone()));
                self.nonces
                    .insert((n.origin.clone(), n.nonce.clone()), n.until);
            }
            Record::Session(_) => {}
        }
    }

    /// Removes a federation record.
    pub(crate) fn delete(&mut self, k: &RecordKey) {
        match k {
            RecordKey::Outbox { site, op_id } => {
                if let Some(at) = self.outbox_at.remove(&(site.clone(), op_id.clone())) {
                    if let Some(q) = self.outbox.get_mut(site) {
                        if let Some(e) = q.remove(&(at, op_id.clone())) {
                            if let Some(t) = e.expires_at {
                                self.outbox_expiry.remove(&(t, site.clone(), op_id.clone()));
                            }
                        }
                        if q.is_empty() {
                            self.outbox.remove(site);
                        }
                    }
                }
            }
            RecordKey::Received { origin, op_id } => {
                if let Some(r) = self.received.remove(&(origin.clone(), op_id.clone())) {
                    self.received_by_time
                        .remove(&(r.kept_from(), origin.clone(), op_id.clone()));
                    if let Some(n) = self.received_count.get_mut(origin) {
                        *n -= 1;
                        if *n == 0 {
                            self.received_count.remove(origin);
                        }
                    }
                }
            }
            RecordKey::Nonce { origin, nonce } => {
                if let Some(until) = self.nonces.remove(&(origin.clone(), nonce.clone())) {
                    self.nonces_by_time
                        .remove(&(until, origin.clone(), nonce.clone()));
                }
            }
            RecordKey::Session(_) => {}
        }
    }

    /// The queue for `site`, oldest first.
    pub fn queue<'a>(&'a self, site: &SiteName) -> impl Iterator<Item = &'a OutboxEntry> + 'a {
        self.outbox.get(site).into_iter().flat_map(|q| q.values())
    }

    /// How many operations are queued for `site`.
    pub fn queued(&self, site: &SiteName) -> usize {
        self.outbox.get(site).map_or(0, |q| q.len())
    }

    /// Whether `op_id` is still queued for `site`.
    pub fn is_queued(&self, site: &SiteName, op_id: &OpId) -> bool {
        self.outbox_at.contains_key(&(site.clone(), op_id.clone()))
    }

    /// The queued entry for `site` and `op_id`.
    pub(crate) fn outbox_entry(&self, site: &SiteName, op_id: &OpId) -> Option<&OutboxEntry> {
        let at = self.outbox_at.get(&(site.clone(), op_id.clone()))?;
        self.outbox.get(site)?.get(&(*at, op_id.clone()))
    }

    /// Every queued entry, by site then age.
    pub fn outbox(&self) -> impl Iterator<Item = &OutboxEntry> {
        self.outbox.values().flat_map(|q| q.values())
    }

    /// Whether `op_id` from `origin` was applied already.
    pub fn received(&self, origin: &SiteName, op_id: &OpId) -> Option<&ReceivedOp> {
        self.received.get(&(origin.clone(), op_id.clone()))
    }

    /// Every operation received and remembered (the node's storage tests read it).
    pub fn all_received(&self) -> impl Iterator<Item = &ReceivedOp> {
        self.received.values()
    }

    /// Whether `origin` used `nonce` already (and it is still remembered).
    pub fn nonce_seen(&self, origin: &SiteName, nonce: &str) -> bool {
        self.nonces
            .contains_key(&(origin.clone(), nonce.to_owned()))
    }

    /// Nonces no longer needed at `at`, at most `max`.
    pub(crate) fn expired_nonces(&self, at: Timestamp, max: usize) -> Vec<(SiteName, String)> {
        self.nonces_by_time
            .iter()
            .take_while(|(t, _, _)| *t <= at)
            .take(max)
            .map(|(_, s, n)| (s.clone(), n.clone()))
            .collect()
    }

    /// How many operations of `origin` are remembered.
    pub fn received_count(&self, origin: &SiteName) -> usize {
        self.received_count.get(origin).copied().unwrap_or(0)
    }

    /// Outbox entries expired at `at`, at most `max`.
    pub(crate) fn expired_outbox(&self, at: Timestamp, max: usize) -> Vec<(SiteName, OpId)> {
        self.outbox_expiry
            .iter()
            .take_while(|(t, _, _)| *t <= at)
            .take(max)
            .map(|(_, s, o)| (s.clone(), o.clone()))
            .collect()
    }

    /// Received operations kept from at or before `before` ([`ReceivedOp::kept_from`]), at
    /// most `max`.
    pub(crate) fn received_before(&self, before: Timestamp, max: usize) -> Vec<(SiteName, OpId)> {
        self.received_by_time
            .iter()
            .take_while(|(t, _, _)| *t <= before)
            .take(max)
            .map(|(_, s, o)| (s.clone(), o.clone()))
            .collect()
    }
}

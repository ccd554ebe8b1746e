//! What every handler shares: the node's [`Runtime`] and services, and the API keys.

use std::collections::HashMap;
use std::sync::Arc;

use sessync_config::{Limits, NodeConfig};
use sessync_proto::{Role, Timestamp};
use tokio_util::sync::CancellationToken;

use super::stream_slots::StreamSlots;
use crate::federation::Federation;
use crate::metrics::Metrics;
use crate::refusals::Refusals;
use crate::runtime::{Reader, Runtime, RuntimeError};
use crate::sequencer::Sequencer;
use crate::signing::SeenNonces;

/// What a node is made of, for building an [`App`].
pub(crate) struct AppParts {
    pub(crate) rt: Runtime,
    pub(crate) metrics: Metrics,
    pub(crate) sequencer: Sequencer,
    pub(crate) federation: Federation,
    pub(crate) refusals: Refusals,
    /// Cancelled when the node stops: long-lived answers (event streams) end then.
    pub(crate) stop: CancellationToken,
}

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub(crate) struct App(Arc<Inner>);

struct Inner {
    rt: Runtime,
    metrics: Metrics,
    sequencer: Sequencer,
    federation: Federation,
    refusals: Refusals,
    stop: CancellationToken,
    /// API keys by the SHA-256 of the key: the key's name and role.
    keys: HashMap<[u8; 32], (String, Role)>,
    metrics_open: bool,
    /// `[limits]`: body size and timeout, requests in progress.
    limits: Limits,
    /// Nonces of node-to-node proofs seen within their window.
    nonces: SeenNonces,
    /// The open event streams' budgets (`[limits] max_event_streams`, `_per_key`).
    streams: StreamSlots,
    /// Whether this node serves TLS (`[tls]`): then every node it is told of is `https://`.
    tls: bool,
    /// One backup at a time (`backup`).
    backups: tokio::sync::Semaphore,
}

impl App {
    pub(crate) fn new(config: &NodeConfig, parts: AppParts) -> Self {
        let AppParts {
            rt,
            metrics,
            sequencer,
            federation,
            refusals,
            stop,
        } = parts;
        let keys = config
            .api_keys
            .iter()
            .map(|k| (k.sha256, (k.name.clone(), k.role)))
            .collect();
        let streams = StreamSlots::new(
            config.limits.max_event_streams,
            config.limits.max_event_streams_per_key,
            config.api_keys.iter().map(|k| k.name.as_str()),
            metrics.clone(),
        );
        App(Arc::new(Inner {
            rt,
            metrics,
            sequencer,
            federation,
            refusals,
            stop,
            keys,
            metrics_open: config.metrics.open,
            limits: config.limits.clone(),
            nonces: SeenNonces::default(),
            streams,
            tls: config.tls.is_some(),
            backups: tokio::sync::Semaphore::new(1),
        }))
    }

    /// The one backup this node takes at a time, if none is being taken.
    pub(crate) fn backup_slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.0.backups.try_acquire().ok()
    }

    /// A linearizable read: the replica reflects every change acknowledged before this call
    /// and, on the leader, every sequencerd before it (see [`crate::sequencer`]); the cluster
    /// time to judge by ([`Runtime::linearize`], the one composition of the read index and the
    /// sequencer's barrier, which the read-index route serves followers with too).
    pub(crate) async fn linearize(&self) -> Result<Timestamp, RuntimeError> {
        let point = self
            .0
            .rt
            .linearize(Reader::ThisNode, self.0.sequencer.barrier());
        Ok(point.await?.now)
    }

    /// The node's runtime: Raft, the replica, proposing and linearizing.
    pub(crate) fn rt(&self) -> &Runtime {
        &self.0.rt
    }
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }
    pub(crate) fn sequencer(&self) -> &Sequencer {
        &self.0.sequencer
    }
    pub(crate) fn federation(&self) -> &Federation {
        &self.0.federation
    }
    /// Refused callers, for aggregated reports.
    pub(crate) fn refusals(&self) -> &Refusals {
        &self.0.refusals
    }
    /// Cancelled when the node stops.
    pub(crate) fn stop(&self) -> &CancellationToken {
        &self.0.stop
    }
    pub(crate) fn metrics_open(&self) -> bool {
        self.0.metrics_open
    }
    /// The largest request body a client route reads (`[limits] max_body_bytes`).
    pub(crate) fn max_body_bytes(&self) -> usize {
        self.0.limits.max_body_bytes
    }
    /// How long a request's body may take to arrive (`[limits] body_timeout`).
    pub(crate) fn body_timeout(&self) -> std::time::Duration {
        self.0.limits.body_timeout
    }
    /// Most requests in progress at once (`[limits] max_concurrent_requests`).
    pub(crate) fn max_concurrent_requests(&self) -> usize {
        self.0.limits.max_concurrent_requests
    }
    /// Whether this node serves TLS, so other nodes' URLs must be `https://`.
    pub(crate) fn tls(&self) -> bool {
        self.0.tls
    }
    /// The open event streams' budgets.
    pub(crate) fn stream_slots(&self) -> &StreamSlots {
        &self.0.streams
    }
    /// Nonces of node-to-node proofs seen lately.
    pub(crate) fn nonces(&self) -> &SeenNonces {
        &self.0.nonces
    }
    /// The key's name and role, if `sha256` is a configured key's hash.
    pub(crate) fn key(&self, sha256: &[u8; 32]) -> Option<&(String, Role)> {
        self.0.keys.get(sha256)
    }
}

//! What every handler shares: the node's [`Runtime`] and services, and the API keys.

use std::collections::HashMap;
use std::sync::Arc;

use sessync_config::NodeConfig;
use sessync_proto::Role;
use tokio_util::sync::CancellationToken;

use crate::audit::AuditReporter;
use crate::federation::Federation;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::touch::TouchBatcher;

/// What a node is made of, for building an [`App`].
pub(crate) struct AppParts {
    pub(crate) rt: Runtime,
    pub(crate) metrics: Metrics,
    pub(crate) touches: TouchBatcher,
    pub(crate) audit: AuditReporter,
    pub(crate) federation: Federation,
    /// Cancelled when the node stops: long-lived answers (event streams) end then.
    pub(crate) stop: CancellationToken,
}

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub(crate) struct App(Arc<Inner>);

struct Inner {
    rt: Runtime,
    metrics: Metrics,
    touches: TouchBatcher,
    audit: AuditReporter,
    federation: Federation,
    stop: CancellationToken,
    /// API keys by the SHA-256 of the key: the key's name and role.
    keys: HashMap<[u8; 32], (String, Role)>,
    metrics_open: bool,
    /// `[limits] max_body_bytes`: the largest request body a client route reads.
    max_body_bytes: usize,
}

impl App {
    pub(crate) fn new(config: &NodeConfig, parts: AppParts) -> Self {
        let AppParts {
            rt,
            metrics,
            touches,
            audit,
            federation,
            stop,
        } = parts;
        let keys = config
            .api_keys
            .iter()
            .map(|k| (k.sha256, (k.name.clone(), k.role)))
            .collect();
        App(Arc::new(Inner {
            rt,
            metrics,
            touches,
            audit,
            federation,
            stop,
            keys,
            metrics_open: config.metrics.open,
            max_body_bytes: config.limits.max_body_bytes,
        }))
    }

    /// The node's runtime: Raft, the replica, proposing and linearizing.
    pub(crate) fn rt(&self) -> &Runtime {
        &self.0.rt
    }
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }
    pub(crate) fn touches(&self) -> &TouchBatcher {
        &self.0.touches
    }
    pub(crate) fn audit(&self) -> &AuditReporter {
        &self.0.audit
    }
    pub(crate) fn federation(&self) -> &Federation {
        &self.0.federation
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
        self.0.max_body_bytes
    }
    /// The key's name and role, if `sha256` is a configured key's hash.
    pub(crate) fn key(&self, sha256: &[u8; 32]) -> Option<&(String, Role)> {
        self.0.keys.get(sha256)
    }
}

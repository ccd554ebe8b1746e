//! The federation metrics, by peer site: outbox depth, outbox-full refusals, delivery latency,
//! attempts by result, and refused requests from peer sites by reason.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::reg;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct PeerLabels {
    pub(super) peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct PeerResultLabels {
    pub(super) peer: String,
    pub(super) result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct PeerReasonLabels {
    pub(super) peer: String,
    pub(super) reason: String,
}

pub(super) fn peer(site: &str) -> PeerLabels {
    PeerLabels {
        peer: site.to_owned(),
    }
}

fn delivery_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 16))
}

/// The federation metrics, by peer site.
#[derive(Clone)]
pub(super) struct PeerMetrics {
    pub(super) outbox_depth: Family<PeerLabels, Gauge>,
    pub(super) outbox_full: Family<PeerLabels, Counter>,
    pub(super) delivery: Family<PeerLabels, Histogram, fn() -> Histogram>,
    pub(super) attempts: Family<PeerResultLabels, Counter>,
    pub(super) rejections: Family<PeerReasonLabels, Counter>,
}

impl PeerMetrics {
    pub(super) fn register(r: &mut Registry) -> Self {
        let delivery = || Family::new_with_constructor(delivery_histogram as fn() -> Histogram);
        Self {
            outbox_depth: reg(
                r,
                "federation_outbox_depth",
                "Operations committed here and not yet acknowledged, by peer site",
                Family::default(),
            ),
            outbox_full: reg(
                r,
                "federation_outbox_full",
                "Verify or invalidate calls refused because a peer's outbox was full",
                Family::default(),
            ),
            delivery: reg(
                r,
                "federation_delivery_seconds",
                "Time from commit of an operation to the peer's acknowledgement",
                delivery(),
            ),
            attempts: reg(
                r,
                "federation_attempts",
                "Delivery attempts to peer sites, by result (delivered or failed)",
                Family::default(),
            ),
            rejections: reg(
                r,
                "federation_rejections",
                "Requests from peer sites refused, by claimed peer and reason",
                Family::default(),
            ),
        }
    }
}

//! The fan-out part of a verify or invalidate call: which targets get an outbox entry, and
//! what the answer says of each (`delivered`, `queued`, `unknown_site`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sessync_proto::api::FanoutStatus;
use sessync_proto::{OpId, SiteName, Timestamp};

use super::Federation;
use crate::runtime::Runtime;
use crate::session::Fanout;

/// The fan-out of one verify or invalidate: which targets are configured peers (they get an
/// outbox entry in the same command) and which are unknown (reported, nothing sent).
pub(crate) struct FanoutPlan {
    /// What goes into the command.
    pub(crate) fanout: Option<Fanout>,
    unknown: Vec<SiteName>,
}

impl FanoutPlan {
    /// The plan for an operation stamped `at`: its outbox entries expire
    /// `federation.outbox_max_age` after it.
    pub(crate) fn new(fed: &Federation, targets: &[SiteName], at: Timestamp) -> Self {
        let (known, unknown) = fed.plan(targets);
        let fanout = (!known.is_empty()).then(|| Fanout {
            op_id: OpId::from_random(rand::random()),
            targets: known,
            outbox_limit: fed.config().outbox_limit,
            expires_at: Some(at.plus(fed.config().outbox_max_age)),
        });
        FanoutPlan { fanout, unknown }
    }

    /// After the commit: starts delivery, waits a moment for the peers' acknowledgements, and
    /// reports each target `delivered`, `queued` (delivery goes on) or `unknown_site`.
    pub(crate) async fn report(
        &self,
        rt: &Runtime,
        fed: &Federation,
    ) -> BTreeMap<SiteName, FanoutStatus> {
        let mut out: BTreeMap<SiteName, FanoutStatus> = self
            .unknown
            .iter()
            .map(|t| (t.clone(), FanoutStatus::UnknownSite))
            .collect();
        let Some(f) = &self.fanout else { return out };
        fed.kick();
        let deadline = Instant::now() + fed.answer_wait(rt.request_timeout());
        let pending = || {
            rt.state().read(|s| {
                f.targets
                    .iter()
                    .filter(|t| s.ledger().is_queued(t, &f.op_id))
                    .cloned()
                    .collect::<Vec<_>>()
            })
        };
        let mut left = pending();
        while !left.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            left = pending();
        }
        for t in &f.targets {
            let status = if left.contains(t) {
                FanoutStatus::Queued
            } else {
                FanoutStatus::Delivered
            };
            out.insert(t.clone(), status);
        }
        out
    }
}

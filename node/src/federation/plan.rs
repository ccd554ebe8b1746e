//! The fan-out part of a verify or invalidate call: which targets get an outbox entry, and
//! what the answer says of each (`delivered`, `queued`, `unknown_site`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sessync_proto::api::FanoutStatus;
use sessync_proto::{ErrorCode, OpId, SiteName};

use crate::api::{ApiError, App};
use crate::session::{Fanout, Outcome};

/// The fan-out of one verify or invalidate: which targets are configured peers (they get an
/// outbox entry in the same command) and which are unknown (reported, nothing sent).
pub struct FanoutPlan {
    /// What goes into the command.
    pub fanout: Option<Fanout>,
    unknown: Vec<SiteName>,
}

impl FanoutPlan {
    pub fn new(app: &App, targets: &[SiteName]) -> Self {
        let fed = app.federation();
        let (known, unknown) = fed.plan(targets);
        let fanout = (!known.is_empty()).then(|| Fanout {
            op_id: OpId::from_random(rand::random()),
            targets: known,
            outbox_limit: fed.config().outbox_limit,
        });
        FanoutPlan { fanout, unknown }
    }

    /// After the commit: starts delivery, waits a moment for the peers' acknowledgements, and
    /// reports each target `delivered`, `queued` (delivery goes on) or `unknown_site`.
    pub async fn report(&self, app: &App) -> BTreeMap<SiteName, FanoutStatus> {
        let mut out: BTreeMap<SiteName, FanoutStatus> = self
            .unknown
            .iter()
            .map(|t| (t.clone(), FanoutStatus::UnknownSite))
            .collect();
        let Some(f) = &self.fanout else { return out };
        app.federation().kick();
        let deadline = Instant::now() + app.federation().answer_wait(app.request_timeout());
        let pending = |app: &App| {
            app.state().read(|s| {
                f.targets
                    .iter()
                    .filter(|t| s.ledger().is_queued(t, &f.op_id))
                    .cloned()
                    .collect::<Vec<_>>()
            })
        };
        let mut left = pending(app);
        while !left.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            left = pending(app);
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

    /// The error for a refused fan-out (`OutboxFull`); other outcomes are given back.
    pub fn refused(&self, app: &App, outcome: Outcome) -> Result<ApiError, Outcome> {
        match outcome {
            Outcome::OutboxFull { site, limit } => {
                app.metrics().outbox_full(site.as_str());
                Ok(ApiError::new(
                    ErrorCode::OutboxFull,
                    format!(
                        "the outbox for site {site} holds {limit} undelivered operations \
                         (federation.outbox_limit); nothing was changed, retry once deliveries \
                         catch up (see GET /v1/federation/status)"
                    ),
                ))
            }
            other => Err(other),
        }
    }
}

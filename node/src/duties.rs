//! Background duties of a node.
//!
//! Every node keeps its clock guard's voters current and acts on its verdict
//! ([`Runtime::watch_clock`]: a node whose clock is off does not campaign or lead).
//! Every node warns when its own `[policy]` differs from the replicated one (a log line per
//! difference; the metric `sessync_policy_file_differs` and `GET /cluster/status` show it too),
//! and never rewrites the replicated policy: that changes only at init (the first leader writes
//! its file's policy) and when an operator says so (`PUT /v1/config/policy`). The leader also
//! proposes `Expire` entries stamped with cluster time when some session's idle or lifetime
//! deadline has passed, when ended sessions have outlived retention, and at least once a minute
//! so the audit log is trimmed.

use std::time::{Duration, Instant};

use sessync_proto::Policy;
use tokio_util::sync::CancellationToken;

use crate::runtime::Runtime;
use crate::sequencer::Sequencer;
use crate::session::{Command, Expire, SetPolicy};

/// How often the duties run.
const TICK: Duration = Duration::from_millis(250);
/// An `Expire` at least this often, even when nothing is due.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Runs the duties until `stop`; `sequencer` is the leader's sequencer, which an expiry sweep
/// lets drain first.
pub(crate) async fn run(rt: Runtime, sequencer: Sequencer, stop: CancellationToken) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sweep = Instant::now();
    let mut warned_for: Option<Policy> = None;
    while stop.run_until_cancelled(tick.tick()).await.is_some() {
        rt.watch_clock();
        rt.note_leadership();
        let replicated = rt.state().read(|s| s.replicated_policy().cloned());
        warn_on_policy_drift(&rt, replicated.as_ref(), &mut warned_for);
        if !rt.is_leader() {
            continue;
        }
        if replicated.is_none() {
            // Right after init: the first policy is this leader's file's.
            let cmd = Command::SetPolicy(SetPolicy {
                at: rt.cluster_now(),
                policy: rt.file_policy().clone(),
                by: None,
            });
            match rt.propose(cmd).await {
                Ok(_) => tracing::info!("wrote this node's [policy] into the replicated state"),
                Err(e) => tracing::warn!(error = %e, "could not replicate the policy"),
            }
            continue;
        }
        // Touches taken before this sweep are applied before it, and it is stamped with the
        // time the sequencer took it, so a touch taken later never meets a sweep that ended
        // its session after the touch (see `crate::sequencer`).
        let now = match sequencer.barrier().await {
            Ok(at) => at,
            Err(e) => {
                tracing::debug!(error = %e, "touches did not drain before the expiry check");
                continue;
            }
        };
        let due = rt.state().read(|s| {
            let p = s.policy();
            s.next_deadline().is_some_and(|t| t <= now)
                || s.oldest_ended().is_some_and(|t| t.plus(p.retention) <= now)
        });
        if due || last_sweep.elapsed() >= SWEEP_EVERY {
            last_sweep = Instant::now();
            if let Err(e) = rt.propose(Command::Expire(Expire { at: now })).await {
                tracing::warn!(error = %e, "could not propose an expiry sweep");
            }
        }
    }
}

fn warn_on_policy_drift(
    rt: &Runtime,
    replicated: Option<&Policy>,
    warned_for: &mut Option<Policy>,
) {
    let Some(r) = replicated else { return };
    if r == rt.file_policy() || warned_for.as_ref() == Some(r) {
        return;
    }
    for key in rt.file_policy().differing_keys(r) {
        tracing::warn!(
            key = %format!("policy.{key}"),
            "this node's config file disagrees with the replicated policy; the replicated value applies (change it with PUT /v1/config/policy or `sessyncctl policy set`)"
        );
    }
    *warned_for = Some(r.clone());
}

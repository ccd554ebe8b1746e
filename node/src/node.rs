//! A node's lifecycle: open the store, start Raft, start every background task in one place,
//! serve HTTP on the listener it is given until `shutdown`, then stop in order.
//!
//! Like mini-redis's `server::run`, [`run`] takes the listener and the shutdown signal, so a test
//! binds port 0, starts a node in-process, and stops it by completing the signal. Stopping:
//! a leader hands leadership to a caught-up voter (at most [`HANDOVER_ON_STOP`]), the HTTP
//! server drains (at most [`DRAIN`]), Raft shuts down, every background task, already
//! told to stop, is awaited (at most [`DRAIN`] more), and last the database closes (openraft's
//! storage tasks let go of it a moment after Raft has stopped). When `run` returns, nothing of
//! the node is left running and its database is closed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use openraft::SnapshotPolicy;
use sessync_config::NodeConfig;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::{self, App, AppParts};
use crate::audit::AuditReporter;
use crate::bootstrap::Bootstrap;
use crate::clock::ClockGuard;
use crate::federation::deliver::{self, Delivery};
use crate::federation::Federation;
use crate::metrics::Metrics;
use crate::network::client::{Link, Network};
use crate::raft_types::Raft;
use crate::refusals::Refusals;
use crate::runtime::Runtime;
use crate::sequencer::Sequencer;
use crate::server::{self, ConnLimits};
use crate::tls::Tls;
use crate::{duties, store};

/// How long open connections may take to finish once the node is told to stop, and again how
/// long background tasks may take after Raft has stopped.
pub const DRAIN: Duration = Duration::from_secs(5);
/// How long a leader that is told to stop may take to hand leadership over first.
pub(crate) const HANDOVER_ON_STOP: Duration = Duration::from_secs(5);

/// Why a node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Store(#[from] store::OpenError),
    #[error("cannot read this node's cluster id: {0}")]
    Identity(String),
    #[error("raft settings are invalid: {0}")]
    RaftConfig(#[from] openraft::ConfigError),
    #[error("raft could not start: {0}")]
    Raft(#[from] openraft::error::Fatal<u64>),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn raft_config(c: &NodeConfig) -> Result<openraft::Config, openraft::ConfigError> {
    let ms = |d: Duration| d.as_millis() as u64;
    openraft::Config {
        cluster_name: c.site.to_string(),
        heartbeat_interval: ms(c.raft.heartbeat_interval),
        election_timeout_min: ms(c.raft.election_timeout_min),
        election_timeout_max: ms(c.raft.election_timeout_max),
        // The last chunk's call waits for the install: about 11 s for a million sessions.
        install_snapshot_timeout: ms(c.raft.install_snapshot_timeout),
        snapshot_policy: SnapshotPolicy::LogsSinceLast(c.raft.snapshot_after_logs),
        max_in_snapshot_log_to_keep: c.raft.max_logs_kept_after_snapshot,
        snapshot_max_chunk_size: 1024 * 1024,
        ..Default::default()
    }
    .validate()
}

/// Runs a node on `listener` until `shutdown` completes, then stops it cleanly.
pub async fn run(
    config: NodeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), NodeError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| NodeError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let tls = Tls::new(config.tls.as_ref())?;
    let (log_store, sm) = store::open(&config.data_dir)?;
    let reader = sm.reader();
    let db = reader.closer();
    let link = Link::new(
        config.node_id,
        tls.client,
        config.cluster_secret.expose().to_vec(),
        ClockGuard::new(config.node_id),
        reader
            .cluster_identity()
            .map_err(|e| NodeError::Identity(e.to_string()))?,
    );
    let raft = Raft::new(
        config.node_id,
        Arc::new(raft_config(&config)?),
        Network::new(link.clone()),
        log_store,
        sm,
    )
    .await?;
    let stop = CancellationToken::new();
    let (app, mut tasks) = start(&config, raft.clone(), reader, link, &stop);
    let rt = app.rt().clone();
    let addr = listener.local_addr().map_err(NodeError::Serve)?;
    let scheme = if tls.acceptor.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(node_id = config.node_id, site = %config.site, %addr, scheme, "sessync node listening");

    let router = api::router(app);
    let serving = server::serve(
        listener,
        router,
        tls.acceptor,
        ConnLimits::from(&config.limits),
        stop.clone(),
    );
    tokio::pin!(serving);
    let served = tokio::select! {
        r = &mut serving => r,
        () = shutdown => {
            // A leader hands over first, while it still serves (the new leader's vote request
            // comes on a new connection; held writes go to the new leader); then the server
            // stops accepting and drains, for at most DRAIN.
            let failed = tokio::select! {
                r = &mut serving => Some(r),
                () = hand_over(&rt) => None,
            };
            match failed {
                Some(r) => r,
                None => {
                    rt.stop_campaigning();
                    stop.cancel();
                    serving.await
                }
            }
        }
    };
    stop.cancel();
    tracing::info!("shutting down raft");
    if let Err(e) = raft.shutdown().await {
        tracing::warn!(error = %e, "raft did not shut down cleanly");
    }
    if tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        tracing::warn!(
            left = tasks.len(),
            "background tasks did not stop in time; aborting them"
        );
        tasks.shutdown().await;
    }
    // The last handles on the state: the database closes once they are gone.
    drop(rt);
    drop(raft);
    if !db.close(DRAIN).await {
        tracing::warn!("the database is still open after the node stopped");
    }
    tracing::info!("stopped");
    served.map_err(NodeError::Serve)
}

/// On the way down: if this node leads and another voter can take over, hands leadership to
/// it (at most [`HANDOVER_ON_STOP`]), so the cluster does not wait an election timeout.
async fn hand_over(rt: &Runtime) {
    if !rt.leads_with_other_voters() {
        return;
    }
    match tokio::time::timeout(HANDOVER_ON_STOP, rt.transfer_leadership(None)).await {
        Ok(Ok(t)) => tracing::info!(
            handed_over = true,
            to = t.to,
            took_ms = t.took.as_millis() as u64,
            "stopping: leadership handed over"
        ),
        Ok(Err(e)) => tracing::warn!(
            handed_over = false,
            error = %e,
            "stopping: could not hand leadership over; the others elect a leader after an \
             election timeout"
        ),
        Err(_) => tracing::warn!(
            handed_over = false,
            "stopping: the leadership hand-over did not finish in time"
        ),
    }
}

/// Builds the runtime and services and starts every background task, each told to stop by
/// `stop`: the sequencer, the audit reporter, the leader's duties, with `[bootstrap]` the
/// forming of the cluster, and one delivery task per peer site.
fn start(
    config: &NodeConfig,
    raft: Raft,
    reader: store::StateReader,
    link: Link,
    stop: &CancellationToken,
) -> (App, JoinSet<()>) {
    let mut tasks = JoinSet::new();
    let rt = Runtime::new(config, raft, reader, link.clone());
    if let Some(b) = &config.bootstrap {
        let duty = Bootstrap::new(rt.clone(), b.clone(), config.tls.clone(), &link);
        tasks.spawn(duty.run(stop.clone()));
    }
    let metrics = Metrics::new();
    let (sequencer, task) = Sequencer::new(rt.clone(), metrics.clone(), stop.clone());
    tasks.spawn(task);
    let (audit, task) = AuditReporter::new(rt.clone(), metrics.clone(), stop.clone());
    tasks.spawn(task);
    tasks.spawn(duties::run(rt.clone(), sequencer.clone(), stop.clone()));
    let (refusals, task) = Refusals::new(
        audit.clone(),
        config.node_id,
        config.limits.failure_report_interval,
        stop.clone(),
    );
    tasks.spawn(task);
    let federation = Federation::new(config.site.clone(), config.federation.clone());
    let delivery = Delivery {
        rt: rt.clone(),
        fed: federation.clone(),
        metrics: metrics.clone(),
        audit: audit.clone(),
    };
    for peer in &config.federation.peers {
        tasks.spawn(deliver::run(delivery.clone(), peer.clone(), stop.clone()));
    }
    let app = App::new(
        config,
        AppParts {
            rt,
            metrics,
            sequencer,
            federation,
            refusals,
            stop: stop.clone(),
        },
    );
    (app, tasks)
}

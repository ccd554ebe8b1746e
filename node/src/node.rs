//! Assembling and running a node: open the store, start Raft, serve HTTP, run the duties, and
//! shut down cleanly on SIGINT or SIGTERM.

use std::sync::Arc;

use openraft::SnapshotPolicy;
use sessync_config::NodeConfig;
use tokio::net::TcpListener;

use crate::api::{self, App, AppParts};
use crate::metrics::Metrics;
use crate::network::client::Network;
use crate::raft_types::Raft;
use crate::{duties, federation, store};

/// Why a node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Store(#[from] store::OpenError),
    #[error("raft settings are invalid: {0}")]
    RaftConfig(#[from] openraft::ConfigError),
    #[error("raft could not start: {0}")]
    Raft(#[from] openraft::error::Fatal<u64>),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
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
    let ms = |d: std::time::Duration| d.as_millis() as u64;
    openraft::Config {
        cluster_name: c.site.to_string(),
        heartbeat_interval: ms(c.raft.heartbeat_interval),
        election_timeout_min: ms(c.raft.election_timeout_min),
        election_timeout_max: ms(c.raft.election_timeout_max),
        install_snapshot_timeout: 10_000,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(c.raft.snapshot_after_logs),
        max_in_snapshot_log_to_keep: c.raft.max_logs_kept_after_snapshot,
        snapshot_max_chunk_size: 1024 * 1024,
        ..Default::default()
    }
    .validate()
}

/// Runs a node until it is told to stop.
pub async fn run(config: NodeConfig) -> Result<(), NodeError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| NodeError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let (log_store, sm) = store::open(&config.data_dir)?;
    let reader = sm.reader();
    let network = Network::new(config.cluster_secret.expose().to_vec());
    let raft = Raft::new(
        config.node_id,
        Arc::new(raft_config(&config)?),
        network,
        log_store,
        sm,
    )
    .await?;
    let listen = config.listen;
    let app = App::new(AppParts {
        config,
        raft: raft.clone(),
        state: reader,
        metrics: Metrics::new(),
    });
    duties::spawn(app.clone());
    federation::deliver::spawn(app.clone());
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| NodeError::Listen {
            addr: listen.to_string(),
            source,
        })?;
    tracing::info!(node_id = app.node_id(), site = %app.site(), %listen, "sessync node listening");
    axum::serve(listener, api::router(app))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(NodeError::Serve)?;
    tracing::info!("shutting down raft");
    if let Err(e) = raft.shutdown().await {
        tracing::warn!(error = %e, "raft did not shut down cleanly");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

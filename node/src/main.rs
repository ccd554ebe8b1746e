//! `sessync-node --config FILE`: starts one sessync node, listening where the config says, and
//! stops it cleanly on SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use sessync_config::{LogFormat, NodeConfig};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// One node of a sessync site: the replicated session store behind the v1 HTTP API.
#[derive(Parser)]
#[command(version = sessync_node::build_info::VERSION_LINE, about)]
struct Args {
    /// The node's TOML config (see cluster-config/sessync.example.toml).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match NodeConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sessync-node: {}: {e}", args.config.display());
            return ExitCode::from(2);
        }
    };
    let directives = std::env::var(EnvFilter::DEFAULT_ENV)
        .ok()
        .filter(|d| EnvFilter::try_new(d).is_ok())
        .unwrap_or_else(|| config.log.level.clone());
    let filter = quiet_tls(
        EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info")),
        &directives,
    );
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    // Names only: a value may be a secret.
    for name in sessync_config::unknown_process_vars() {
        tracing::warn!(variable = %name, "not a sessync-node setting (misspelt?); ignored");
    }
    for name in &config.deprecated {
        tracing::warn!(
            setting = %name,
            "set for an earlier version: tokens are random now, so it is ignored; remove it"
        );
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sessync-node: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        sessync_node::run(config, listener, shutdown_signal())
            .await
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("sessync-node: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Turns the TLS library's own log off unless `directives` name it: a stranger's failed
/// handshake must not write a line per connection (the node counts on rustls being built
/// without its `logging` feature too; this holds if a dependency turns it back on).
fn quiet_tls(filter: EnvFilter, directives: &str) -> EnvFilter {
    ["rustls", "tokio_rustls"]
        .into_iter()
        .filter(|target| !directives.contains(target))
        .fold(filter, |f, target| match format!("{target}=off").parse() {
            Ok(d) => f.add_directive(d),
            Err(_) => f,
        })
}

/// Completes on SIGINT or SIGTERM.
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
        () = ctrl_c => {},
        () = term => {},
    }
}

//! `sessync-node --config FILE`: starts one sessync node.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use sessync_config::{LogFormat, NodeConfig};
use tracing_subscriber::EnvFilter;

/// One node of a sessync site: the replicated session store behind the v1 HTTP API.
#[derive(Parser)]
#[command(version, about)]
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
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sessync-node: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(sessync_node::node::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("sessync-node: {e}");
            ExitCode::FAILURE
        }
    }
}

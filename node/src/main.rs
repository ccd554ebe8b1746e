//! `sessync-node --config FILE`: starts one sessync node, listening where the config says, and
//! stops it cleanly on SIGINT or SIGTERM. `sessync-node restore` and `sessync-node recover`
//! work on a stopped node's data directory (`sessync_node::offline`) and print what they did
//! as JSON.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use sessync_config::{LogFormat, NodeConfig};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// One node of a sessync site: the replicated session store behind the v1 HTTP API.
#[derive(Parser)]
#[command(
    version = sessync_node::build_info::VERSION_LINE,
    about,
    args_conflicts_with_subcommands = true
)]
struct Args {
    /// The node's TOML config (see cluster-config/sessync.example.toml); starts the node.
    #[arg(long, short = 'c', value_name = "FILE", required = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Offline>,
}

/// Work on a stopped node's data directory.
#[derive(Subcommand)]
enum Offline {
    /// Fill this node's empty data_dir from a backup, as a member of a new cluster.
    ///
    /// The backup is one `sessyncctl backup save` wrote. The new cluster has a new cluster id,
    /// so no node of the old cluster can join it. Restore every member from the same backup
    /// with the same --member list (or only this one and start the others empty), then start
    /// them.
    Restore {
        /// The node's TOML config: its node_id, advertise_url and data_dir.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// The backup file.
        #[arg(long, value_name = "BACKUP")]
        from: PathBuf,
        /// A member of the new cluster as ID=URL, once per member (this node among them);
        /// without any, the config's `[bootstrap] members`, else this node alone at its
        /// advertise_url.
        #[arg(long = "member", value_name = "ID=URL", value_parser = parse_member)]
        members: Vec<(u64, String)>,
    },
    /// Make this stopped node, whose cluster lost its quorum for good, a one-node cluster.
    ///
    /// It keeps everything the node has (its whole log applied); then start it and add new
    /// nodes. Like etcd's --force-new-cluster: never run it while the lost nodes could come
    /// back as they were (a new cluster id keeps them out, but they would go on as the old
    /// cluster).
    Recover {
        /// The node's TOML config.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
    },
}

fn parse_member(raw: &str) -> Result<(u64, String), String> {
    sessync_node::offline::parse_member(raw).map_err(|e| e.to_string())
}

fn load(path: &Path) -> Result<NodeConfig, ExitCode> {
    NodeConfig::load(path).map_err(|e| {
        eprintln!("sessync-node: {}: {e}", path.display());
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    // `--generate man|complete-SHELL`: the package's man page and completions.
    if let Some(code) = sessync_cli_assets::generate_if_requested(Args::command()) {
        return code;
    }
    let args = Args::parse();
    if let Some(command) = args.command {
        return offline(command);
    }
    let Some(path) = args.config else {
        return ExitCode::from(2);
    };
    let config = match load(&path) {
        Ok(c) => c,
        Err(code) => return code,
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

/// Runs an offline command and prints its report as JSON.
fn offline(command: Offline) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sessync-node: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = runtime.block_on(async {
        match command {
            Offline::Restore {
                config,
                from,
                members,
            } => {
                let config = load(&config)?;
                let r = sessync_node::offline::restore(&config, &from, members).await;
                r.map(|r| serde_json::to_string_pretty(&r))
                    .map_err(|e| fail("restore", e))
            }
            Offline::Recover { config } => {
                let config = load(&config)?;
                let r = sessync_node::offline::recover(&config).await;
                r.map(|r| serde_json::to_string_pretty(&r))
                    .map_err(|e| fail("recover", e))
            }
        }
    });
    match report {
        Ok(Ok(json)) => {
            use std::io::Write;
            // The report is the command's output (its progress went to stderr).
            match writeln!(std::io::stdout().lock(), "{json}") {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            }
        }
        Ok(Err(e)) => {
            eprintln!("sessync-node: cannot print the report: {e}");
            ExitCode::FAILURE
        }
        Err(code) => code,
    }
}

fn fail(what: &str, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("sessync-node {what}: {e}");
    ExitCode::FAILURE
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

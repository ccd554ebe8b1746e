//! The command line of `sessyncctl`: global options, subcommands, and exit codes.
//!
//! Each command group lives in its own module; `output` renders answers as tables or JSON.

mod audit;
mod backup;
mod cluster;
mod config;
mod federation;
mod handover;
mod keys;
mod membership;
mod output;
mod policy;
mod progress;
mod sessions;
mod users;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sessync_client::{Client, ClientError};

pub(crate) use output::OutputFormat;

/// Exit code of a command that failed for any other reason than unavailability.
pub(crate) const EXIT_FAILURE: u8 = 1;
/// Exit code when the cluster answered 503 or could not be reached at all.
pub(crate) const EXIT_UNAVAILABLE: u8 = 3;

/// Operator CLI for a sessync cluster.
#[derive(Debug, Parser)]
#[command(name = "sessyncctl", version)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, clap::Args)]
pub(crate) struct GlobalOpts {
    /// Node base URLs, comma-separated; calls fail over between them.
    #[arg(
        long,
        global = true,
        env = "SESSYNC_ENDPOINTS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:7101"
    )]
    pub endpoints: Vec<String>,
    /// The API key (an admin key for cluster commands).
    #[arg(long, global = true, env = "SESSYNC_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// A file holding the API key (surrounding whitespace ignored); wins over --api-key.
    #[arg(long, global = true)]
    pub api_key_file: Option<PathBuf>,
    /// How answers are printed.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Deadline of each call, retries included (e.g. `500ms`, `10s`).
    #[arg(long, global = true, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// A PEM file of CA certificates that `https://` endpoints are checked against (besides
    /// the public web roots): the cluster's own CA.
    #[arg(long, global = true, env = "SESSYNC_CACERT")]
    pub cacert: Option<PathBuf>,
    /// A PEM client certificate, for nodes that require one (with --key).
    #[arg(long, global = true, env = "SESSYNC_CERT", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The PEM private key of --cert.
    #[arg(long, global = true, env = "SESSYNC_KEY", requires = "cert")]
    pub key: Option<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Raft cluster management (an admin key).
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Online backups: save one from a serving cluster (an admin key), verify a file offline.
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Sessions: create, get, validate, touch, end, list, verify, invalidate (an app key).
    #[command(subcommand)]
    Sessions(sessions::SessionsCommand),
    /// The replicated session policy: show it, or change keys of it (an admin key).
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Users with active sessions (an admin key).
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// The replicated audit log (an admin key).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Peer sites: delivery queues and reachability (an admin key).
    #[command(subcommand)]
    Federation(federation::FederationCommand),
    /// One node: drain it before stopping it (an admin key).
    #[command(subcommand)]
    Node(handover::NodeCommand),
    /// Node config files, checked offline.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// New API keys and their config blocks, made offline.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration: {e}"))
}

impl GlobalOpts {
    /// The API key from --api-key-file, else --api-key / SESSYNC_API_KEY, else none.
    fn api_key(&self) -> anyhow::Result<String> {
        if let Some(path) = &self.api_key_file {
            let raw = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the API key file {}", path.display()))?;
            return Ok(raw.trim().to_owned());
        }
        Ok(self.api_key.clone().unwrap_or_default())
    }

    /// A client over the endpoints with the key, deadline and TLS files given.
    fn client(&self) -> anyhow::Result<Client> {
        let read = |p: &PathBuf, what: &str| {
            std::fs::read(p).with_context(|| format!("cannot read the {what} {}", p.display()))
        };
        let mut b = Client::builder(self.endpoints.clone(), self.api_key()?).timeout(self.timeout);
        if let Some(ca) = &self.cacert {
            b = b.ca_certificates(read(ca, "CA file (--cacert)")?);
        }
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            b = b.client_certificate(
                read(cert, "certificate (--cert)")?,
                read(key, "key (--key)")?,
            );
        }
        Ok(b.build()?)
    }
}

/// Runs the command the user gave.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    let format = cli.global.output;
    let mut out = std::io::stdout().lock();
    // The offline commands (config, keys) need neither a key nor a cluster.
    match cli.command {
        Command::Config(cmd) => config::run(cmd, format, &mut out),
        Command::Keys(cmd) => keys::run(cmd, format, &mut out),
        Command::Cluster(cmd) => cluster::run(&cli.global.client()?, cmd, format, &mut out).await,
        Command::Backup(cmd) => backup::run(|| cli.global.client(), cmd, format, &mut out).await,
        Command::Sessions(cmd) => sessions::run(&cli.global.client()?, cmd, format, &mut out).await,
        Command::Policy(cmd) => policy::run(&cli.global.client()?, cmd, format, &mut out).await,
        Command::Users(cmd) => users::run(&cli.global.client()?, cmd, format, &mut out).await,
        Command::Audit(cmd) => audit::run(&cli.global.client()?, cmd, format, &mut out).await,
        Command::Federation(cmd) => {
            federation::run(&cli.global.client()?, cmd, format, &mut out).await
        }
        Command::Node(cmd) => {
            let mut global = cli.global;
            if let Some(url) = cmd.node() {
                global.endpoints = vec![url.to_owned()];
            }
            handover::run(&global.client()?, cmd, format, &mut out).await
        }
    }
}

/// The exit code for a failed command: 3 when the cause is the cluster or network being
/// unavailable, 1 otherwise.
pub(crate) fn exit_code(err: &anyhow::Error) -> u8 {
    let unavailable = err
        .chain()
        .filter_map(|e| e.downcast_ref::<ClientError>())
        .any(ClientError::is_unavailable);
    if unavailable {
        EXIT_UNAVAILABLE
    } else {
        EXIT_FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let e = anyhow::Error::from(ClientError::Transport("refused".into()));
        assert_eq!(exit_code(&e), 3);
        let e = anyhow::Error::from(ClientError::Unavailable {
            message: "no quorum".into(),
        })
        .context("cluster status");
        assert_eq!(exit_code(&e), 3);
        let e = anyhow::Error::from(ClientError::Unauthorized {
            message: "bad key".into(),
        });
        assert_eq!(exit_code(&e), 1);
        assert_eq!(exit_code(&anyhow::anyhow!("other")), 1);
    }

    #[test]
    fn parses_global_options_and_members() {
        let cli = Cli::try_parse_from([
            "sessyncctl",
            "--endpoints",
            "http://a:1,http://b:2",
            "--output",
            "json",
            "--timeout",
            "1500ms",
            "cluster",
            "init",
            "--member",
            "1=http://a:1",
            "--member",
            "2=http://b:2",
        ])
        .unwrap();
        assert_eq!(cli.global.endpoints, vec!["http://a:1", "http://b:2"]);
        assert_eq!(cli.global.output, OutputFormat::Json);
        assert_eq!(cli.global.timeout, Duration::from_millis(1500));
        match cli.command {
            Command::Cluster(cluster::ClusterCommand::Init { member }) => {
                assert_eq!(
                    member,
                    vec![(1, "http://a:1".into()), (2, "http://b:2".into())]
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(Cli::try_parse_from(["sessyncctl", "cluster", "init", "--member", "x=y"]).is_err());
        assert!(
            Cli::try_parse_from(["sessyncctl", "--timeout", "soon", "cluster", "status"]).is_err()
        );
    }

    #[test]
    fn api_key_file_wins() {
        let dir = std::env::temp_dir().join(format!("sessyncctl-key-{}", std::process::id()));
        std::fs::write(&dir, "  secret-key\n").unwrap();
        let cli = Cli::try_parse_from([
            "sessyncctl",
            "--api-key",
            "other",
            "--api-key-file",
            dir.to_str().unwrap(),
            "cluster",
            "status",
        ])
        .unwrap();
        assert_eq!(cli.global.api_key().unwrap(), "secret-key");
        std::fs::remove_file(&dir).unwrap();
    }

    #[test]
    fn a_token_that_begins_with_a_hyphen_is_a_token() {
        // base64url tokens begin with '-' one time in 64 (the CLI test failed on one).
        let cli = Cli::try_parse_from(["sessyncctl", "sessions", "validate", "-PzX4_token"]);
        let cli = cli.expect("a token beginning with '-' parses");
        assert!(format!("{:?}", cli.command).contains("-PzX4_token"));
    }

    #[test]
    fn tls_files_go_together() {
        assert!(
            Cli::try_parse_from(["sessyncctl", "--cert", "c.pem", "cluster", "status"]).is_err()
        );
        let cli = Cli::try_parse_from([
            "sessyncctl",
            "--cacert",
            "ca.pem",
            "--cert",
            "c.pem",
            "--key",
            "k.pem",
            "cluster",
            "status",
        ])
        .unwrap();
        assert_eq!(
            cli.global.cacert.as_deref(),
            Some(std::path::Path::new("ca.pem"))
        );
    }
}

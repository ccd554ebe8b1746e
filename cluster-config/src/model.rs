//! The loaded, validated configuration of one node: [`NodeConfig`] and the structs of its
//! sections, with their defaults. Everything here has passed validation; the node uses it as is.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sessync_proto::{Policy, Role, SiteName};

use crate::secret::Secret;

/// One node's configuration, as read from its TOML file and `SESSYNC_*` environment variables.
///
/// `Debug` is safe to log: secrets print as `<redacted>`, API keys only as their hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// This node's id, unique in its cluster; > 0.
    pub node_id: u64,
    /// This cluster's name in the federation.
    pub site: SiteName,
    /// Where the HTTP server (API, cluster management, Raft RPC) listens.
    pub listen: SocketAddr,
    /// How the other nodes reach this one: `http(s)://host:port`, without a trailing slash.
    pub advertise_url: String,
    /// Where RocksDB lives.
    pub data_dir: PathBuf,
    /// Shared by every node of the site; authenticates Raft traffic.
    pub cluster_secret: Secret,
    /// Settings of earlier versions found in the file or the environment that this version
    /// accepts and ignores (`token_secret_file`, `SESSYNC_TOKEN_SECRET`), by name: the node
    /// warns about each when it starts.
    pub deprecated: Vec<&'static str>,
    /// The session policy this node proposes when it leads.
    pub policy: Policy,
    /// The API keys, by hash. May be empty.
    pub api_keys: Vec<ApiKey>,
    /// Peer sites.
    pub federation: FederationConfig,
    /// The `/metrics` endpoint.
    pub metrics: MetricsConfig,
    /// Raft timing and log compaction.
    pub raft: RaftTuning,
    /// Request limits.
    pub limits: Limits,
    /// Logging.
    pub log: LogConfig,
    /// `[tls]`: when set, the node serves HTTPS and calls other nodes and sites over HTTPS.
    pub tls: Option<TlsConfig>,
    /// `allow_plaintext`: serve plain HTTP on a non-loopback `listen` (behind a TLS proxy).
    pub allow_plaintext: bool,
    /// `[bootstrap]` with `members` or `dns`: the nodes form their cluster themselves.
    pub bootstrap: Option<BootstrapConfig>,
}

/// The `[bootstrap]` section: the nodes initialise one cluster once `expect` members answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootstrapConfig {
    /// How many members must answer before the cluster is initialised; > 0.
    pub expect: usize,
    /// Who they are.
    pub members: BootstrapMembers,
}

/// The bootstrap members: listed, or the addresses of a DNS name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootstrapMembers {
    /// `members`: node id → base URL (as many as `expect`).
    Listed(BTreeMap<u64, String>),
    /// `dns = "host:port"`: every address the name resolves to, on `port`, is a member (as a
    /// Kubernetes headless Service gives); each tells its node id when asked.
    Dns { host: String, port: u16 },
}

/// The `[tls]` section. The PEM files are read when the config is loaded; the key prints as
/// `<redacted>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// `cert_file`: this node's certificate chain (PEM), leaf first. It is also the client
    /// certificate this node presents to other nodes and sites.
    pub cert_pem: Vec<u8>,
    /// `key_file`: the certificate's private key (PEM).
    pub key_pem: Secret,
    /// `client_ca_file`: when set, every client must present a certificate signed by one of
    /// these CAs (PEM): peer nodes, peer sites, apps and operators alike.
    pub client_ca_pem: Option<Vec<u8>>,
    /// `ca_file`: the CAs (PEM) that the servers this node calls (other nodes, peer sites) are
    /// checked against, and the only ones trusted (no public web roots). Default: `client_ca_file`.
    pub ca_pem: Option<Vec<u8>>,
}

/// An API key, configured by the SHA-256 of the key (see [`crate::hash_api_key`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    /// A name for logs and audit events.
    pub name: String,
    /// SHA-256 of the key's UTF-8 bytes.
    pub sha256: [u8; 32],
    /// What the key may do.
    pub role: Role,
}

/// The `[federation]` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FederationConfig {
    /// `[[federation.peers]]`: the other sites, with unique names different from ours.
    pub peers: Vec<PeerConfig>,
    /// A peer's request is refused when its timestamp is further than this from our clock;
    /// the nonces it carried are remembered at least this long.
    pub timestamp_window: Duration,
    /// Most undelivered operations queued for one peer; a verify or invalidate that would go
    /// past it is refused (nothing changes) until deliveries catch up.
    pub outbox_limit: u32,
    /// The first retry after a failed delivery waits about this long; each failure doubles it.
    pub retry_initial: Duration,
    /// Retries are never further apart than this.
    pub retry_max: Duration,
    /// Deadline of one delivery attempt to a peer.
    pub send_timeout: Duration,
    /// An operation still undelivered this long after its commit is dropped from the outbox
    /// (audited `fanout_expired`). Keep it under every peer's `audit_retention`, the time a
    /// peer remembers the operations it applied: a peer refuses an operation older than that
    /// (`op_expired`), so none is ever applied twice.
    pub outbox_max_age: Duration,
    /// Most operations from one peer this site remembers (to apply each once); past it the
    /// peer's new operations are refused (`received_full`, 429) until older ones are forgotten.
    pub max_received_per_peer: u32,
}

impl Default for FederationConfig {
    fn default() -> Self {
        FederationConfig {
            peers: Vec::new(),
            timestamp_window: Duration::from_secs(300),
            outbox_limit: 10_000,
            retry_initial: Duration::from_millis(250),
            retry_max: Duration::from_secs(5),
            send_timeout: Duration::from_secs(5),
            outbox_max_age: Duration::from_secs(3 * 24 * 3600),
            max_received_per_peer: 1_000_000,
        }
    }
}

impl FederationConfig {
    /// The peer named `site`, if configured.
    pub fn peer(&self, site: &SiteName) -> Option<&PeerConfig> {
        self.peers.iter().find(|p| &p.name == site)
    }
}

/// One peer site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// The peer site's name.
    pub name: SiteName,
    /// Base URLs of the peer's nodes (at least one), without trailing slashes.
    pub urls: Vec<String>,
    /// We sign requests to this peer with it.
    pub send_secret: Secret,
    /// Requests from this peer are accepted when signed with any of these (one, or two while
    /// the peer rotates its secret).
    pub receive_secrets: Vec<Secret>,
}

/// The `[metrics]` section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `true`: `/metrics` needs no key. `false` (default): it needs an admin key.
    pub open: bool,
}

/// The `[raft]` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftTuning {
    /// How often the leader sends heartbeats.
    pub heartbeat_interval: Duration,
    /// A follower starts an election after a random time between these two without a heartbeat.
    pub election_timeout_min: Duration,
    /// See `election_timeout_min`.
    pub election_timeout_max: Duration,
    /// A snapshot is taken after this many log entries since the last one.
    pub snapshot_after_logs: u64,
    /// Log entries kept after a snapshot, so slightly lagging followers need no snapshot.
    pub max_logs_kept_after_snapshot: u64,
    /// How long sending one snapshot chunk may take; the last chunk's call waits for the
    /// receiver to install the whole snapshot (about 11 s per million sessions).
    pub install_snapshot_timeout: Duration,
}

impl Default for RaftTuning {
    fn default() -> Self {
        RaftTuning {
            heartbeat_interval: Duration::from_millis(250),
            election_timeout_min: Duration::from_secs(1),
            election_timeout_max: Duration::from_secs(2),
            snapshot_after_logs: 50_000,
            max_logs_kept_after_snapshot: 1000,
            install_snapshot_timeout: Duration::from_secs(300),
        }
    }
}

/// The `[limits]` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deadline of one API request, forwarding to the leader included.
    pub request_timeout: Duration,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// A request's headers must arrive within this (also how long a kept-alive connection may
    /// wait for its next request); a TLS handshake too.
    pub header_timeout: Duration,
    /// A request's body must arrive within this once its headers have.
    pub body_timeout: Duration,
    /// A connection on which nothing is read or written for this long is closed.
    pub idle_timeout: Duration,
    /// Most connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Most connections open at once from one source (an IPv4 address, an IPv6 /64); more
    /// are closed as they arrive, so one caller cannot hold every connection.
    pub max_connections_per_source: usize,
    /// Most requests in progress at once; more are answered 503 at once.
    pub max_concurrent_requests: usize,
    /// Most `/v1/events` streams open at once on this node, each counted for as long as it is
    /// open; more are answered 503. At most `max_connections`.
    pub max_event_streams: usize,
    /// Most `/v1/events` streams open at once on this node for one API key; more are answered
    /// 503. At most `max_event_streams`.
    pub max_event_streams_per_key: usize,
    /// Refused callers (bad API keys, bad peer signatures) are reported to the audit log as
    /// one event per source and reason per this interval.
    pub failure_report_interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_timeout: Duration::from_secs(5),
            max_body_bytes: sessync_proto::api::MAX_BODY_BYTES,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            max_connections_per_source: 512,
            max_concurrent_requests: 512,
            max_event_streams: 256,
            max_event_streams_per_key: 16,
            failure_report_interval: Duration::from_secs(10),
        }
    }
}

/// The `[log]` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// A `tracing_subscriber::EnvFilter` directive string, e.g. `info,sessync_node=debug`.
    pub level: String,
    /// Human-readable lines or one JSON object per line.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

//! [`TestCluster`]: real `sessync-node` processes on loopback ports, with their files in a
//! temporary directory, that a test starts, stops (SIGTERM), kills, restarts, wipes and grows.
//!
//! Every wait polls and is bounded in time; a failed wait's error carries the tails of the
//! nodes' logs. Dropping the cluster kills every node (and, when the test is panicking, prints
//! the log tails); set `SESSYNC_KEEP_TEST_DIR=1` to keep the directory for a look afterwards.
//!
//! With [`ClusterOptions::proxied`], each node also gets a [`NodeProxy`] that the other nodes
//! reach it through, under the cluster's [`Faults`] table.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use sessync_client::ClientError;
use sessync_proto::ErrorCode;
use tempfile::TempDir;

use crate::certs::Issued;
use crate::config::{self, ClusterOptions, KeyHashes, NodeFile};
use crate::net::{Faults, NodeProxy};
use crate::process::{self, tail, Node};
use crate::secrets::{sha256_hex, Secrets};
use crate::wait::{wait_for, Check};

/// How long a node may take to answer `/healthz` after it is started.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the harness waits for the nodes to agree on a leader.
pub const LEADER_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a node may take to exit after SIGTERM: a leader's hand-over, then the server's
/// and the background tasks' drains (each bounded by the node).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Environment variable that keeps the cluster's directory after the test.
pub const KEEP_DIR_ENV: &str = "SESSYNC_KEEP_TEST_DIR";
/// Deadline of the harness's own probes of one node.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Log lines of each node quoted in an error.
pub(crate) const TAIL_LINES: usize = 25;
/// Times a start is retried when the node could not bind its port (still held after a kill).
const BIND_RETRIES: u32 = 5;

/// A cluster of real node processes for one test. See the crate docs for an example.
pub struct TestCluster {
    dir: Option<TempDir>,
    pub(crate) root: PathBuf,
    opts: ClusterOptions,
    bin: PathBuf,
    pub(crate) secrets: Secrets,
    pub(crate) nodes: BTreeMap<u64, Node>,
    /// With TLS: the CA certificate and the certificate the harness's clients show.
    pub(crate) tls: Option<ClientTls>,
    /// With [`ClusterOptions::proxied`]: the proxy in front of each node, and their faults.
    pub(crate) proxies: BTreeMap<u64, NodeProxy>,
    pub(crate) faults: Faults,
    /// With [`ClusterOptions::bootstrap`]: the members every node's `[bootstrap]` names.
    bootstrap: Option<BTreeMap<u64, String>>,
}

/// What the harness's clients need to call nodes over TLS.
#[derive(Clone)]
pub(crate) struct ClientTls {
    pub(crate) ca_pem: String,
    pub(crate) client: Issued,
}

impl TestCluster {
    /// Writes the configs, starts `opts.nodes` nodes (ids 1..=n), waits until each answers
    /// `/healthz`, then (if `opts.init`) initialises the cluster on node 1 with every node as
    /// a voter and waits until every node names the same leader; with `opts.bootstrap`, waits
    /// for the cluster to form itself instead; with `opts.spawn` false, starts no node.
    pub async fn start(opts: ClusterOptions) -> anyhow::Result<TestCluster> {
        if opts.nodes == 0 {
            bail!("a cluster needs at least one node");
        }
        if opts.proxied && opts.bootstrap {
            bail!("ClusterOptions::bootstrap names the nodes' own URLs: not with proxied");
        }
        if opts.proxied && opts.tls.is_some() {
            bail!("ClusterOptions::proxied needs plain HTTP: the proxies read request heads");
        }
        let bin = match &opts.node_bin {
            Some(p) => p.clone(),
            None => process::node_binary()?,
        };
        let dir = tempfile::Builder::new()
            .prefix("sessync-test-")
            .tempdir()
            .context("cannot create the cluster's temporary directory")?;
        let root = dir.path().to_path_buf();
        let secrets = Secrets::generate();
        let secret_path = root.join("cluster.secret");
        fs::write(&secret_path, format!("{}\n", secrets.cluster_secret))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&secret_path, fs::Permissions::from_mode(0o600))?;
        }
        let tls = match &opts.tls {
            Some(ca) => Some(ClientTls {
                ca_pem: ca.cert_pem(),
                client: ca.issue("sessync test client")?,
            }),
            None => None,
        };
        let mut cluster = TestCluster {
            dir: Some(dir),
            root,
            opts,
            bin,
            secrets,
            nodes: BTreeMap::new(),
            tls,
            proxies: BTreeMap::new(),
            faults: Faults::new(),
            bootstrap: None,
        };
        let ports = if cluster.opts.ports.is_empty() {
            process::free_ports(cluster.opts.nodes, &BTreeSet::new())?
        } else if cluster.opts.ports.len() == cluster.opts.nodes {
            cluster.opts.ports.clone()
        } else {
            bail!(
                "ClusterOptions::ports lists {} ports for {} nodes",
                cluster.opts.ports.len(),
                cluster.opts.nodes
            );
        };
        if cluster.opts.bootstrap {
            let scheme = if cluster.opts.tls.is_some() {
                "https"
            } else {
                "http"
            };
            let members = ports.iter().enumerate();
            cluster.bootstrap = Some(
                members
                    .map(|(i, port)| (i as u64 + 1, format!("{scheme}://127.0.0.1:{port}")))
                    .collect(),
            );
        }
        for (i, port) in ports.into_iter().enumerate() {
            cluster.create_node(i as u64 + 1, port)?;
            cluster.start_proxy(i as u64 + 1).await?;
        }
        if !cluster.opts.spawn {
            return Ok(cluster);
        }
        let ids = cluster.node_ids();
        cluster.start_nodes(&ids).await?;
        if cluster.opts.bootstrap {
            cluster.wait_formed().await?;
        } else if cluster.opts.init {
            cluster.init_all().await?;
        }
        Ok(cluster)
    }

    /// Starts the nodes `ids` (not running yet, or killed) all at once, then waits until each
    /// answers `/healthz`.
    pub async fn start_nodes(&mut self, ids: &[u64]) -> anyhow::Result<()> {
        let bin = self.bin.clone();
        for &id in ids {
            self.node_mut(id).spawn(&bin)?;
        }
        for &id in ids {
            self.wait_healthy(id).await?;
        }
        Ok(())
    }

    /// Waits until the live nodes agree on a leader and hold the replicated policy: what a
    /// cluster that forms itself ([`ClusterOptions::bootstrap`]) is waited for with.
    pub async fn wait_formed(&self) -> anyhow::Result<u64> {
        let leader = self.leader().await?;
        self.wait_policy_replicated().await?;
        Ok(leader)
    }

    /// Creates a node's directory and config file.
    fn create_node(&mut self, id: u64, port: u16) -> anyhow::Result<()> {
        let ca = self.opts.tls.clone();
        let node = Node::new(id, port, self.root.join(format!("node-{id}")), ca.is_some());
        fs::create_dir_all(node.data_dir())?;
        if let Some(ca) = ca {
            let issued = ca.issue(&format!("node-{id}"))?;
            let (cert, key, ca_file) = node.tls_paths();
            fs::write(cert, issued.cert_pem)?;
            fs::write(key, issued.key_pem)?;
            fs::write(ca_file, ca.cert_pem())?;
        }
        self.nodes.insert(id, node);
        self.write_config(id)
    }

    /// With [`ClusterOptions::proxied`], starts the proxy in front of node `id`.
    async fn start_proxy(&mut self, id: u64) -> anyhow::Result<()> {
        if self.opts.proxied {
            let proxy = NodeProxy::start(id, self.node(id).port, self.faults.clone()).await?;
            self.proxies.insert(id, proxy);
        }
        Ok(())
    }

    fn write_config(&self, id: u64) -> anyhow::Result<()> {
        let node = self.node(id);
        let (data_dir, secret_file) = (node.data_dir(), self.secret_path());
        let (cert, key, ca) = node.tls_paths();
        let tls = node.https.then_some(config::TlsFiles {
            cert: &cert,
            key: &key,
            ca: &ca,
        });
        let app = sha256_hex(&self.secrets.app_key);
        let admin = sha256_hex(&self.secrets.admin_key);
        let text = config::render(
            &self.opts,
            &NodeFile {
                id,
                port: node.port,
                data_dir: &data_dir,
                secret_file: &secret_file,
                node_toml: &node.node_toml,
                tls,
                bootstrap: self.bootstrap.as_ref(),
            },
            &KeyHashes {
                app_sha256: &app,
                admin_sha256: &admin,
            },
        )?;
        fs::write(node.config_path(), text)
            .with_context(|| format!("cannot write {}", node.config_path().display()))
    }

    pub(crate) fn node(&self, id: u64) -> &Node {
        self.nodes
            .get(&id)
            .unwrap_or_else(|| panic!("no node {id} in this cluster ({:?})", self.node_ids()))
    }

    pub(crate) fn node_mut(&mut self, id: u64) -> &mut Node {
        let ids = self.node_ids();
        self.nodes
            .get_mut(&id)
            .unwrap_or_else(|| panic!("no node {id} in this cluster ({ids:?})"))
    }

    /// `POST /cluster/init` on node 1 with every node, each at its [`TestCluster::raft_url`],
    /// then waits for an agreed leader (what [`TestCluster::start`] does unless
    /// `ClusterOptions::init` is false).
    pub async fn init_all(&self) -> anyhow::Result<()> {
        let members: BTreeMap<u64, String> = self
            .nodes
            .keys()
            .map(|&id| (id, self.raft_url(id)))
            .collect();
        let first = *members.keys().next().expect("at least one node");
        let admin = self.admin_client_for(first);
        let mut tried = false;
        let result = wait_for("POST /cluster/init", LEADER_TIMEOUT, || {
            let (admin, members) = (admin.clone(), members.clone());
            let retry = std::mem::replace(&mut tried, true);
            async move {
                match admin.cluster_init(members).await {
                    Ok(_) => Check::Done(()),
                    // A retry after an answer that got lost finds it done.
                    Err(ClientError::Conflict {
                        code: ErrorCode::AlreadyInitialized,
                        ..
                    }) if retry => Check::Done(()),
                    Err(e) if e.is_unavailable() => Check::NotYet(e.to_string()),
                    Err(e) => Check::Fail(e.into()),
                }
            }
        })
        .await;
        result.map_err(|e| self.with_logs(e))?;
        self.leader().await?;
        self.wait_policy_replicated().await
    }

    /// Waits until every node shows a replicated policy (the leader writes it right after
    /// init), so a test never starts before the configured policy applies.
    async fn wait_policy_replicated(&self) -> anyhow::Result<()> {
        for id in self.live_node_ids() {
            let admin = self.admin_client_for(id);
            wait_for("the replicated policy", LEADER_TIMEOUT, || {
                let admin = admin.clone();
                async move {
                    match admin.config().await {
                        Ok(c) if c.policy.is_some() => Check::Done(()),
                        Ok(_) => Check::NotYet(format!("node {id} has no policy yet")),
                        Err(e) => Check::NotYet(e.to_string()),
                    }
                }
            })
            .await
            .map_err(|e| self.with_logs(e))?;
        }
        Ok(())
    }

    /// Waits until node `id` answers `/healthz`; fails at once if its process exits, and
    /// retries the start if the port was still taken.
    async fn wait_healthy(&self, id: u64) -> anyhow::Result<()> {
        let node = self.node(id);
        let probe = self
            .client_with(vec![node.url()], "")
            .pinned(0)
            .with_timeout(PROBE_TIMEOUT);
        let what = format!("node {id} to answer /healthz at {}", node.url());
        wait_for(&what, START_TIMEOUT, || {
            let probe = probe.clone();
            async move {
                if let Some(status) = node.exited() {
                    return Check::Fail(anyhow!(
                        "node {id} exited ({status}) before it was healthy"
                    ));
                }
                match probe.healthz().await {
                    Ok(true) => Check::Done(()),
                    Ok(false) => Check::NotYet("it answered /healthz with an error".into()),
                    Err(e) => Check::NotYet(e.to_string()),
                }
            }
        })
        .await
        .map_err(|e| self.with_log_of(id, e))
    }

    /// Starts node `id` and waits for it; retries when it could not bind its port.
    async fn spawn_and_wait(&mut self, id: u64) -> anyhow::Result<()> {
        let bin = self.bin.clone();
        for attempt in 0..=BIND_RETRIES {
            let offset = self.node_mut(id).spawn(&bin)?;
            match self.wait_healthy(id).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let log = self.node(id).log_since(offset).to_ascii_lowercase();
                    let port_taken = self.node(id).exited().is_some()
                        && (log.contains("address already in use") || log.contains("addrinuse"));
                    if !port_taken || attempt == BIND_RETRIES {
                        return Err(e);
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        unreachable!("the loop returns")
    }

    /// Gives node `id` its own extra TOML, merged last over its config (like
    /// [`ClusterOptions::extra_toml`]; replaces any earlier one). The file is rewritten now and
    /// read at the node's next start ([`TestCluster::restart`]).
    pub fn set_node_toml(&mut self, id: u64, toml: &str) -> anyhow::Result<()> {
        self.node_mut(id).node_toml = toml.to_owned();
        self.write_config(id)
    }

    /// Runs node `id`'s wall clock off by `offset` from its next start on (libfaketime's
    /// `FAKETIME`, e.g. `"+180"` for three minutes fast, `"-90"` for 90 s slow; `None` for the
    /// true clock). Its monotonic clock stays true, so only the time it stamps and judges by
    /// moves.
    pub fn set_clock_offset(&mut self, id: u64, offset: Option<&str>) {
        self.node_mut(id).clock_offset = offset.map(str::to_owned);
    }

    /// Runs node `id` from its next start with a wall clock a test can step while it runs
    /// ([`TestCluster::step_clock`]; libfaketime's `FAKETIME_TIMESTAMP_FILE`, read at every
    /// clock reading). Its monotonic clock stays true.
    pub fn set_steppable_clock(&mut self, id: u64, on: bool) {
        self.node_mut(id).steppable_clock = on;
    }

    /// Steps the running node `id`'s wall clock to `offset` from the true time (libfaketime's
    /// format: `"+600"` ten minutes ahead, `"+0"` true), at once. The node must run with a
    /// steppable clock ([`TestCluster::set_steppable_clock`]).
    pub fn step_clock(&self, id: u64, offset: &str) -> anyhow::Result<()> {
        let node = self.node(id);
        anyhow::ensure!(
            node.steppable_clock,
            "node {id} does not run with a steppable clock"
        );
        node.write_clock_file(offset)
    }

    /// SIGKILLs node `id` and reaps it; a no-op if it is not running.
    pub fn kill(&mut self, id: u64) {
        self.node_mut(id).kill();
    }

    /// Stops node `id` as an operator would: SIGTERM, and waits (at most [`STOP_TIMEOUT`])
    /// until it exits; an error if it did not exit in time (it is then killed) or exited with
    /// a failure. A no-op if it is not running. [`TestCluster::restart`] starts it again.
    pub async fn stop(&mut self, id: u64) -> anyhow::Result<()> {
        let running = self.node(id).is_running();
        match self.node_mut(id).terminate(STOP_TIMEOUT).await? {
            Some(exit) if exit.success() => Ok(()),
            Some(exit) => bail!("node {id} exited with {exit} after SIGTERM"),
            None if running => bail!("node {id} did not exit within {STOP_TIMEOUT:?} of SIGTERM"),
            None => Ok(()),
        }
    }

    /// Starts node `id` again with the same config, data dir and port (killing it first if it
    /// runs) and waits until it answers `/healthz`.
    pub async fn restart(&mut self, id: u64) -> anyhow::Result<()> {
        self.node_mut(id).kill();
        self.spawn_and_wait(id).await
    }

    /// Kills node `id` if it runs and deletes its data dir; a restart then starts it empty.
    pub fn wipe(&mut self, id: u64) {
        let node = self.node_mut(id);
        node.kill();
        if let Err(e) = node.remove_data() {
            panic!("cannot delete node {id}'s data dir: {e}");
        }
    }

    /// Freezes node `id` with SIGSTOP: the process and its sockets stay, but it answers
    /// nothing (a hung node). It counts as not live until [`TestCluster::resume`]. A client
    /// waits out its deadline on it unless built with an attempt timeout
    /// (`client.with_attempt_timeout(..)`), which lets it fail over.
    pub fn pause(&mut self, id: u64) -> anyhow::Result<()> {
        self.node_mut(id).signal_stop(true)
    }

    /// Lets a paused node run again (SIGCONT).
    pub fn resume(&mut self, id: u64) -> anyhow::Result<()> {
        self.node_mut(id).signal_stop(false)
    }

    /// Starts a new node (the next id) on a new port with the cluster's config, and waits
    /// until it answers `/healthz` (behind its own proxy if the cluster is proxied). It is not
    /// in the membership: add it with `add_learner(id, raft_url(id))` and `change_membership`.
    pub async fn add_node(&mut self) -> anyhow::Result<u64> {
        let id = self.nodes.keys().max().map_or(1, |m| m + 1);
        let used: BTreeSet<u16> = self.nodes.values().map(|n| n.port).collect();
        let port = process::free_ports(1, &used)?[0];
        self.create_node(id, port)?;
        self.start_proxy(id).await?;
        self.spawn_and_wait(id).await?;
        Ok(id)
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        for n in self.nodes.values_mut() {
            n.kill();
            if panicking {
                eprintln!(
                    "--- node {} log ({}), last 40 lines:\n{}",
                    n.id,
                    n.log_path().display(),
                    tail(&n.log_path(), 40)
                );
            }
        }
        if std::env::var_os(KEEP_DIR_ENV).is_some() {
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!("sessync test cluster kept in {}", kept.display());
            }
        }
    }
}

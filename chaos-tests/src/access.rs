//! Where things are in a [`TestCluster`]: node ids and URLs, the API keys, ready-made clients,
//! and each node's files.

use std::path::{Path, PathBuf};

use sessync_client::Client;

use crate::cluster::TestCluster;
use crate::net::Faults;
use crate::process::{tail, Node};

impl TestCluster {
    /// Ids of every node the harness made, running or not, in order.
    pub fn node_ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// Ids of the nodes whose process runs and is not paused.
    pub fn live_node_ids(&self) -> Vec<u64> {
        self.nodes
            .values()
            .filter(|n| n.is_live())
            .map(|n| n.id)
            .collect()
    }

    /// Whether node `id`'s process runs and is not paused.
    pub fn is_live(&self, id: u64) -> bool {
        self.node(id).is_live()
    }

    /// Node `id`'s process id while it runs (to read its memory from `/proc`).
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.node(id).pid()
    }

    /// Node `id`'s base URL, `http://127.0.0.1:<port>` (its listen address and advertise URL;
    /// `https://` with TLS).
    ///
    /// # Panics
    /// If the cluster has no node `id` (so do the other methods taking an id).
    pub fn url(&self, id: u64) -> String {
        self.node(id).url()
    }

    /// Every node's URL, in id order.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.values().map(Node::url).collect()
    }

    /// The address the cluster knows node `id` by, its membership address: its proxy's URL
    /// when the cluster is proxied ([`crate::ClusterOptions::proxied`]), else
    /// [`TestCluster::url`]. Give it to `add_learner` for a node added with
    /// [`TestCluster::add_node`]. It is also the URL answers name the leader by, so a client
    /// over [`TestCluster::urls`] does not learn a proxied cluster's leader from them (its
    /// writes are forwarded by the node they reach).
    pub fn raft_url(&self, id: u64) -> String {
        match self.proxies.get(&id) {
            Some(p) => p.url(),
            None => self.url(id),
        }
    }

    /// Whether the nodes reach each other through proxies ([`crate::ClusterOptions::proxied`]).
    pub fn is_proxied(&self) -> bool {
        !self.proxies.is_empty()
    }

    /// The fault table of the links between the nodes (a handle: changes apply at once, to
    /// open connections too). Faults between a node and itself, or from clients (sender 0),
    /// are possible but not meant; see [`Faults`].
    ///
    /// # Panics
    /// If the cluster is not proxied: nothing would apply the faults, and a test that set them
    /// would silently test nothing.
    pub fn faults(&self) -> Faults {
        assert!(
            self.is_proxied(),
            "faults() needs a cluster started with ClusterOptions::proxied"
        );
        self.faults.clone()
    }

    /// The key with role `app`.
    pub fn app_key(&self) -> &str {
        &self.secrets.app_key
    }

    /// The key with role `admin`.
    pub fn admin_key(&self) -> &str {
        &self.secrets.admin_key
    }

    /// A client over `urls` with `key`; with TLS it trusts the cluster's CA and shows the
    /// harness's client certificate.
    pub fn client_with(&self, urls: Vec<String>, key: &str) -> Client {
        let mut b = Client::builder(urls, key);
        if let Some(t) = &self.tls {
            b = b
                .ca_certificates(t.ca_pem.clone())
                .client_certificate(t.client.cert_pem.clone(), &t.client.key_pem);
        }
        b.build().expect("loopback URLs and the test CA")
    }

    /// A client over every node (failover) with the app key.
    pub fn app_client(&self) -> Client {
        self.client_with(self.urls(), self.app_key())
    }

    /// A client over every node (failover) with the admin key.
    pub fn admin_client(&self) -> Client {
        self.client_with(self.urls(), self.admin_key())
    }

    /// A client that talks only to node `id` (one attempt, no failover) with the app key.
    pub fn app_client_for(&self, id: u64) -> Client {
        self.client_with(vec![self.url(id)], self.app_key())
            .pinned(0)
    }

    /// A client that talks only to node `id` (one attempt, no failover) with the admin key.
    pub fn admin_client_for(&self, id: u64) -> Client {
        self.client_with(vec![self.url(id)], self.admin_key())
            .pinned(0)
    }

    /// The cluster's temporary directory (a `node-<id>/` per node and `cluster.secret`).
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// The cluster secret file every node reads.
    pub fn secret_path(&self) -> PathBuf {
        self.root.join("cluster.secret")
    }

    /// Node `id`'s config file.
    pub fn config_path(&self, id: u64) -> PathBuf {
        self.node(id).config_path()
    }

    /// Node `id`'s data dir (RocksDB).
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.node(id).data_dir()
    }

    /// Node `id`'s log: stdout and stderr of every start, each after a marker line.
    pub fn log_path(&self, id: u64) -> PathBuf {
        self.node(id).log_path()
    }

    /// How many lines of node `id`'s whole log (every start) contain `needle`.
    pub fn log_count(&self, id: u64, needle: &str) -> usize {
        std::fs::read_to_string(self.log_path(id))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// The last `lines` lines of node `id`'s log.
    pub fn log_tail(&self, id: u64, lines: usize) -> String {
        tail(&self.log_path(id), lines)
    }
}

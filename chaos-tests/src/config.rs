//! The options of a test cluster and the TOML config file written for each node.
//!
//! The file follows the operators' contract ("Running a node" in the API spec). It is built as a
//! TOML table, so the test's policy lines and extra TOML are merged key by key over the
//! harness's defaults instead of being pasted in, and the result never has a duplicate key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use toml::{Table, Value};

/// What cluster to start. `ClusterOptions { nodes: 5, ..Default::default() }` for five nodes.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// How many nodes (ids 1..=nodes). Default 3.
    pub nodes: usize,
    /// The site name every node gets. Default `test`.
    pub site: String,
    /// Lines for the `[policy]` table, e.g. `"max_concurrent_sessions = 2\non_limit = \"deny\""`.
    /// Each key replaces the harness's default of that key (`idle_timeout = "15m"`,
    /// `max_lifetime = "8h"`, `max_concurrent_sessions = 3`, `on_limit = "block_new"`). Keep the
    /// node's rules in mind: `touch_interval` (default 2s) must stay below `idle_timeout`.
    pub policy_toml: String,
    /// Lines for the `[raft]` table, e.g. `"snapshot_after_logs = 40"`, merged the same way over
    /// the harness's fast timing (`heartbeat_interval = "100ms"`, `election_timeout_min =
    /// "500ms"`, `election_timeout_max = "1000ms"`).
    pub raft_toml: String,
    /// More TOML for every node's file, written as if at the top before any section. It is
    /// merged over the generated file: a top-level key replaces the generated one, a table
    /// (`[raft]`, `[limits]`, ...) is merged key by key, and arrays of tables (`[[api_keys]]`,
    /// `[[federation.peers]]`) are appended.
    pub extra_toml: String,
    /// TOML merged like `extra_toml`, after it: the federation peers [`crate::Sites`] writes.
    pub peers_toml: String,
    /// The nodes' ports (ids 1..=n in order); empty (default): free loopback ports are picked.
    /// [`crate::Sites`] picks them before either site starts, so each can name the other's.
    pub ports: Vec<u16>,
    /// Initialise the cluster with every node as a voter once all are up. Default true.
    pub init: bool,
    /// The node program to run; default `$SESSYNC_NODE_BIN`, else `sessync-node` next to the
    /// tests (see [`crate::node_binary`]).
    pub node_bin: Option<PathBuf>,
    /// TLS on every link: each node gets a certificate of this CA, serves HTTPS only, requires
    /// client certificates of it (from other nodes, peer sites and the harness's clients), and
    /// trusts it when it calls out. Default none (plain HTTP on loopback).
    pub tls: Option<crate::TestCa>,
    /// Put a [`crate::NodeProxy`] in front of every node (also those added later) and make
    /// the proxies' URLs the members' addresses, so every request between nodes (Raft RPC,
    /// read index, audit delivery, forwarded writes) passes the proxy of its target, where
    /// [`crate::TestCluster::faults`] can cut, delay or drop it per directed link. Clients
    /// still go straight to the nodes ([`crate::TestCluster::url`]); a node learner added to a
    /// proxied cluster must be given [`crate::TestCluster::raft_url`]. Plain HTTP only (not
    /// with `tls`). Default false.
    pub proxied: bool,
    /// Every node's file gets `[bootstrap]` with `expect` = `nodes` and the nodes 1..=`nodes`
    /// as `members`, so the cluster forms itself; [`TestCluster::start`] then calls no init
    /// (`init` is ignored). Nodes added later get the same section (they are not members).
    /// Not with `proxied`. Default false.
    ///
    /// [`TestCluster::start`]: crate::TestCluster::start
    pub bootstrap: bool,
    /// Start every node in [`TestCluster::start`]. False: only their files are written, and
    /// the test starts them ([`TestCluster::start_nodes`]), e.g. in an order of its own.
    /// Default true.
    ///
    /// [`TestCluster::start`]: crate::TestCluster::start
    /// [`TestCluster::start_nodes`]: crate::TestCluster::start_nodes
    pub spawn: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            nodes: 3,
            site: "test".into(),
            policy_toml: String::new(),
            raft_toml: String::new(),
            extra_toml: String::new(),
            peers_toml: String::new(),
            ports: Vec::new(),
            init: true,
            node_bin: None,
            tls: None,
            proxied: false,
            bootstrap: false,
            spawn: true,
        }
    }
}

/// The per-node facts that go into its config file.
pub(crate) struct NodeFile<'a> {
    pub id: u64,
    pub port: u16,
    pub data_dir: &'a Path,
    pub secret_file: &'a Path,
    /// This node's own extra TOML, merged last (see [`crate::TestCluster::set_node_toml`]).
    pub node_toml: &'a str,
    /// With TLS: the node's certificate, key and CA files.
    pub tls: Option<TlsFiles<'a>>,
    /// With [`ClusterOptions::bootstrap`]: the bootstrap members (node id → URL).
    pub bootstrap: Option<&'a BTreeMap<u64, String>>,
}

/// A node's TLS files.
pub(crate) struct TlsFiles<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
    pub ca: &'a Path,
}

/// The API keys' hashes, as the `[[api_keys]]` entries carry them.
pub(crate) struct KeyHashes<'a> {
    pub app_sha256: &'a str,
    pub admin_sha256: &'a str,
}

/// The harness's default `[policy]` lines.
const DEFAULT_POLICY: &str = r#"
idle_timeout = "15m"
max_lifetime = "8h"
max_concurrent_sessions = 3
on_limit = "block_new"
"#;

/// Fast Raft timing so elections in tests take about a second.
const DEFAULT_RAFT: &str = r#"
heartbeat_interval = "100ms"
election_timeout_min = "500ms"
election_timeout_max = "1000ms"
"#;

fn parse(what: &str, text: &str) -> anyhow::Result<Table> {
    text.parse::<Table>()
        .with_context(|| format!("{what} is not valid TOML:\n{text}"))
}

fn path_value(p: &Path) -> anyhow::Result<Value> {
    let s = p
        .to_str()
        .with_context(|| format!("path {} is not UTF-8", p.display()))?;
    Ok(Value::String(s.to_owned()))
}

fn key_entry(name: &str, sha256: &str, role: &str) -> Value {
    let mut t = Table::new();
    t.insert("name".into(), Value::String(name.into()));
    t.insert("sha256".into(), Value::String(sha256.into()));
    t.insert("role".into(), Value::String(role.into()));
    Value::Table(t)
}

/// Merges `over` into `base`: tables recursively, arrays of tables appended, anything else
/// replaced.
pub(crate) fn merge(base: &mut Table, over: Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (Some(Value::Array(b)), Value::Array(o))
                if b.iter().chain(&o).all(|v| matches!(v, Value::Table(_))) =>
            {
                b.extend(o)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// The config file of one node.
pub(crate) fn render(
    opts: &ClusterOptions,
    node: &NodeFile<'_>,
    keys: &KeyHashes<'_>,
) -> anyhow::Result<String> {
    let mut doc = Table::new();
    let addr = format!("127.0.0.1:{}", node.port);
    doc.insert("node_id".into(), Value::Integer(node.id as i64));
    doc.insert("site".into(), Value::String(opts.site.clone()));
    doc.insert("listen".into(), Value::String(addr.clone()));
    let scheme = if node.tls.is_some() { "https" } else { "http" };
    doc.insert(
        "advertise_url".into(),
        Value::String(format!("{scheme}://{addr}")),
    );
    if let Some(files) = &node.tls {
        let mut tls = Table::new();
        tls.insert("cert_file".into(), path_value(files.cert)?);
        tls.insert("key_file".into(), path_value(files.key)?);
        tls.insert("client_ca_file".into(), path_value(files.ca)?);
        tls.insert("ca_file".into(), path_value(files.ca)?);
        doc.insert("tls".into(), Value::Table(tls));
    }
    doc.insert("data_dir".into(), path_value(node.data_dir)?);
    doc.insert("cluster_secret_file".into(), path_value(node.secret_file)?);

    let mut policy = parse("the default policy", DEFAULT_POLICY)?;
    merge(
        &mut policy,
        parse("ClusterOptions::policy_toml", &opts.policy_toml)?,
    );
    doc.insert("policy".into(), Value::Table(policy));

    doc.insert(
        "api_keys".into(),
        Value::Array(vec![
            key_entry("app", keys.app_sha256, "app"),
            key_entry("admin", keys.admin_sha256, "admin"),
        ]),
    );
    let mut metrics = Table::new();
    metrics.insert("open".into(), Value::Boolean(true));
    doc.insert("metrics".into(), Value::Table(metrics));
    let mut raft = parse("the default raft timing", DEFAULT_RAFT)?;
    merge(
        &mut raft,
        parse("ClusterOptions::raft_toml", &opts.raft_toml)?,
    );
    doc.insert("raft".into(), Value::Table(raft));
    if let Some(members) = node.bootstrap {
        let mut boot = Table::new();
        boot.insert("expect".into(), Value::Integer(members.len() as i64));
        let list: Table = members
            .iter()
            .map(|(id, url)| (id.to_string(), Value::String(url.clone())))
            .collect();
        boot.insert("members".into(), Value::Table(list));
        doc.insert("bootstrap".into(), Value::Table(boot));
    }

    merge(
        &mut doc,
        parse("ClusterOptions::extra_toml", &opts.extra_toml)?,
    );
    merge(
        &mut doc,
        parse("ClusterOptions::peers_toml", &opts.peers_toml)?,
    );
    merge(&mut doc, parse("the node's own TOML", node.node_toml)?);
    toml::to_string(&doc).context("cannot write the node config as TOML")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn render_with(opts: &ClusterOptions, node_toml: &str) -> Table {
        let data = PathBuf::from("/tmp/x/node-2/data");
        let secret = PathBuf::from("/tmp/x/cluster.secret");
        let text = render(
            opts,
            &NodeFile {
                id: 2,
                port: 40123,
                data_dir: &data,
                secret_file: &secret,
                node_toml,
                tls: None,
                bootstrap: None,
            },
            &KeyHashes {
                app_sha256: "aa",
                admin_sha256: "bb",
            },
        )
        .unwrap();
        text.parse::<Table>()
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn defaults_follow_the_operators_contract() {
        let t = render_with(&ClusterOptions::default(), "");
        assert_eq!(t["node_id"].as_integer(), Some(2));
        assert_eq!(t["site"].as_str(), Some("test"));
        assert_eq!(t["listen"].as_str(), Some("127.0.0.1:40123"));
        assert_eq!(t["advertise_url"].as_str(), Some("http://127.0.0.1:40123"));
        assert_eq!(t["data_dir"].as_str(), Some("/tmp/x/node-2/data"));
        assert_eq!(
            t["cluster_secret_file"].as_str(),
            Some("/tmp/x/cluster.secret")
        );
        let p = t["policy"].as_table().unwrap();
        assert_eq!(p["idle_timeout"].as_str(), Some("15m"));
        assert_eq!(p["max_lifetime"].as_str(), Some("8h"));
        assert_eq!(p["max_concurrent_sessions"].as_integer(), Some(3));
        assert_eq!(p["on_limit"].as_str(), Some("block_new"));
        let keys = t["api_keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0]["role"].as_str(), Some("app"));
        assert_eq!(keys[0]["sha256"].as_str(), Some("aa"));
        assert_eq!(keys[1]["name"].as_str(), Some("admin"));
        assert_eq!(t["metrics"]["open"].as_bool(), Some(true));
        assert_eq!(t["raft"]["heartbeat_interval"].as_str(), Some("100ms"));
        assert_eq!(t["raft"]["election_timeout_max"].as_str(), Some("1000ms"));
    }

    #[test]
    fn policy_lines_replace_defaults_by_key() {
        let opts = ClusterOptions {
            policy_toml: "max_concurrent_sessions = 2\non_limit = \"deny\"".into(),
            ..Default::default()
        };
        let t = render_with(&opts, "");
        let p = t["policy"].as_table().unwrap();
        assert_eq!(p["max_concurrent_sessions"].as_integer(), Some(2));
        assert_eq!(p["on_limit"].as_str(), Some("deny"));
        assert_eq!(p["idle_timeout"].as_str(), Some("15m"));
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn raft_lines_merge_over_fast_timing() {
        let opts = ClusterOptions {
            raft_toml: "snapshot_after_logs = 40\nelection_timeout_max = \"2s\"".into(),
            ..Default::default()
        };
        let t = render_with(&opts, "");
        let r = t["raft"].as_table().unwrap();
        assert_eq!(r["snapshot_after_logs"].as_integer(), Some(40));
        assert_eq!(r["election_timeout_max"].as_str(), Some("2s"));
        assert_eq!(r["heartbeat_interval"].as_str(), Some("100ms"));
    }

    #[test]
    fn extra_toml_merges_and_node_toml_comes_last() {
        let opts = ClusterOptions {
            extra_toml: "site = \"other\"\n[raft]\nsnapshot_after_logs = 10\n\
                         [[api_keys]]\nname = \"ro\"\nsha256 = \"cc\"\nrole = \"app\"\n\
                         [[federation.peers]]\nname = \"b\"\nurls = [\"http://127.0.0.1:9\"]\n"
                .into(),
            ..Default::default()
        };
        let t = render_with(
            &opts,
            "[limits]\nrequest_timeout = \"2s\"\n[raft]\nsnapshot_after_logs = 20",
        );
        assert_eq!(t["site"].as_str(), Some("other"));
        assert_eq!(t["raft"]["snapshot_after_logs"].as_integer(), Some(20));
        assert_eq!(t["raft"]["heartbeat_interval"].as_str(), Some("100ms"));
        assert_eq!(t["api_keys"].as_array().unwrap().len(), 3);
        assert_eq!(t["federation"]["peers"][0]["name"].as_str(), Some("b"));
        assert_eq!(t["limits"]["request_timeout"].as_str(), Some("2s"));
    }

    #[test]
    fn bad_toml_is_named() {
        let opts = ClusterOptions {
            policy_toml: "max_concurrent_sessions = ".into(),
            ..Default::default()
        };
        let data = PathBuf::from("/d");
        let err = render(
            &opts,
            &NodeFile {
                id: 1,
                port: 1,
                data_dir: &data,
                secret_file: &data,
                node_toml: "",
                tls: None,
                bootstrap: None,
            },
            &KeyHashes {
                app_sha256: "a",
                admin_sha256: "b",
            },
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("policy_toml"), "{err:#}");
    }

    /// The file the harness writes is one the node's own config loader accepts, and means
    /// what the harness intends.
    #[test]
    fn the_config_crate_accepts_the_file() {
        use sessync_proto::{OnLimit, Role};

        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("node-1").join("data");
        let secret = dir.path().join("cluster.secret");
        std::fs::write(&secret, format!("{}\n", "ab".repeat(32))).unwrap();
        let opts = ClusterOptions {
            policy_toml: "max_concurrent_sessions = 2\non_limit = \"deny\"".into(),
            raft_toml: "snapshot_after_logs = 40".into(),
            ..Default::default()
        };
        let (app, admin) = ("the-app-key", "the-admin-key");
        let (app_sha, admin_sha) = (
            crate::secrets::sha256_hex(app),
            crate::secrets::sha256_hex(admin),
        );
        let text = render(
            &opts,
            &NodeFile {
                id: 1,
                port: 40999,
                data_dir: &data,
                secret_file: &secret,
                node_toml: "",
                tls: None,
                bootstrap: None,
            },
            &KeyHashes {
                app_sha256: &app_sha,
                admin_sha256: &admin_sha,
            },
        )
        .unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, &text).unwrap();
        let cfg = sessync_config::NodeConfig::load_with_env(&path, &[])
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(cfg.node_id, 1);
        assert_eq!(cfg.site.as_str(), "test");
        assert_eq!(cfg.listen.to_string(), "127.0.0.1:40999");
        assert_eq!(cfg.advertise_url, "http://127.0.0.1:40999");
        assert_eq!(cfg.data_dir, data);
        assert_eq!(cfg.policy.max_concurrent_sessions, 2);
        assert_eq!(cfg.policy.on_limit, OnLimit::Deny);
        assert_eq!(cfg.policy.idle_timeout, std::time::Duration::from_secs(900));
        assert_eq!(cfg.api_keys.len(), 2);
        assert_eq!(cfg.api_keys[0].sha256, sessync_config::hash_api_key(app));
        assert_eq!(cfg.api_keys[0].role, Role::App);
        assert_eq!(cfg.api_keys[1].sha256, sessync_config::hash_api_key(admin));
        assert_eq!(cfg.api_keys[1].role, Role::Admin);
        assert!(cfg.metrics.open);
        assert_eq!(
            cfg.raft.heartbeat_interval,
            std::time::Duration::from_millis(100)
        );
        assert_eq!(cfg.raft.snapshot_after_logs, 40);
    }
}

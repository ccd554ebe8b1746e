//! The shipped files parse: the spec's example, the commented template (as is, and with every
//! setting uncommented, which must give exactly the documented defaults), and the local 3-node
//! cluster of `examples/local-3`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{config_dir, write};
use sessync_config::{hash_api_key, NodeConfig, ENV_KEYS};
use sessync_proto::{OnLimit, Policy, Role};

fn crate_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The example of `shared/spec/api-v1.md`, "Running a node".
const SPEC_EXAMPLE: &str = r#"
node_id = 1                            # unique in the cluster, > 0
site = "site-a"                        # this cluster's name in the federation
listen = "127.0.0.1:7101"              # HTTP: the API, cluster management and Raft RPC
advertise_url = "http://127.0.0.1:7101"
data_dir = "data/node-1"               # RocksDB lives here; restart resumes from it
cluster_secret_file = "secrets/cluster"  # shared by every node of the site

[policy]
idle_timeout = "15m"
max_lifetime = "8h"
max_concurrent_sessions = 3
on_limit = "block_new"                 # deny | block_new | evict_oldest
max_clock_skew = "500ms"

[[api_keys]]
name = "webapp"
sha256 = "<hex sha256 of the key>"
role = "app"                           # app | admin

[[federation.peers]]
name = "site-b"
urls = ["http://127.0.0.1:7201", "http://127.0.0.1:7202"]
send_secret_file = "secrets/to-site-b"      # we sign with this
receive_secret_file = "secrets/from-site-b" # site-b signs with this
"#;

#[test]
fn spec_example_parses() {
    let dir = config_dir();
    let text = SPEC_EXAMPLE.replace(
        "<hex sha256 of the key>",
        &hex::encode(hash_api_key("webapp-key")),
    );
    let c = NodeConfig::from_toml_str(&text, dir.path(), &[]).unwrap();
    assert_eq!(c.node_id, 1);
    assert_eq!(c.site.as_str(), "site-a");
    assert_eq!(c.policy.idle_timeout, Duration::from_secs(900));
    assert_eq!(c.policy.max_lifetime, Duration::from_secs(8 * 3600));
    assert_eq!(c.policy.max_concurrent_sessions, 3);
    assert_eq!(c.policy.on_limit, OnLimit::BlockNew);
    assert_eq!(c.policy.max_clock_skew, Duration::from_millis(500));
    assert_eq!(c.api_keys[0].name, "webapp");
    assert_eq!(c.api_keys[0].sha256, hash_api_key("webapp-key"));
    assert_eq!(c.federation.peers[0].name.as_str(), "site-b");
    assert_eq!(c.federation.peers[0].urls.len(), 2);

    // Verbatim, only the placeholder hash is wrong.
    let path = write(dir.path(), "spec.toml", SPEC_EXAMPLE);
    let problems = NodeConfig::check_with_env(&path, &[]);
    let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["api_keys[0].sha256"]);
}

fn template() -> String {
    std::fs::read_to_string(crate_file("sessync.example.toml")).unwrap()
}

/// The template with every `#key = value` / `#[[table]]` line uncommented, except those of
/// `[tls]` (which would need certificates and https:// URLs; see `template_tls_section_loads`).
fn template_uncommented() -> String {
    uncomment(&template(), false)
}

fn uncomment(text: &str, with_tls: bool) -> String {
    let mut in_tls = false;
    text.lines()
        .map(|line| {
            if line.starts_with("#[") || line.starts_with('[') {
                in_tls = line.trim_start_matches('#') == "[tls]";
            }
            match line.strip_prefix('#') {
                Some(rest)
                    if (with_tls || !in_tls)
                        && rest.starts_with(|c: char| c.is_ascii_lowercase() || c == '[') =>
                {
                    rest
                }
                _ => line,
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn template_tls_section_loads() {
    let dir = config_dir();
    std::fs::create_dir(dir.path().join("tls")).unwrap();
    for f in ["node.crt", "node.key", "clients-ca.crt", "ca.crt"] {
        let pem = format!("-----BEGIN X-----\n{f}\n-----END X-----\n");
        std::fs::write(dir.path().join("tls").join(f), pem).unwrap();
    }
    let text = uncomment(&template(), true).replace("http://", "https://");
    let c = NodeConfig::from_toml_str(&text, dir.path(), &[]).unwrap();
    let tls = c.tls.expect("[tls] is set");
    assert!(String::from_utf8_lossy(&tls.cert_pem).contains("node.crt"));
    assert!(String::from_utf8_lossy(tls.ca_pem.as_deref().unwrap()).contains("ca.crt"));
    // The same file with http:// URLs names each one.
    let text = uncomment(&template(), true);
    let err = NodeConfig::from_toml_str(&text, dir.path(), &[]).unwrap_err();
    assert!(err.to_string().contains("https://"), "{err}");
}

#[test]
fn template_mentions_every_overridable_key() {
    let text = uncomment(&template(), true);
    for key in ENV_KEYS {
        let name = key.rsplit('.').next().unwrap();
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{name} = "))),
            "{key} is not documented in sessync.example.toml"
        );
    }
}

#[test]
fn template_parses_as_is() {
    let dir = config_dir();
    let c = NodeConfig::from_toml_str(&template(), dir.path(), &[]).unwrap();
    assert_eq!(c.policy, Policy::default());
    assert!(c.api_keys.is_empty());
    assert!(c.federation.peers.is_empty());
}

#[test]
fn template_documents_the_real_defaults() {
    let dir = config_dir();
    let defaults = NodeConfig::from_toml_str(&template(), dir.path(), &[]).unwrap();
    let all = NodeConfig::from_toml_str(&template_uncommented(), dir.path(), &[]).unwrap();
    assert_eq!(all.policy, defaults.policy);
    assert_eq!(all.metrics, defaults.metrics);
    assert_eq!(all.raft, defaults.raft);
    assert_eq!(all.limits, defaults.limits);
    assert_eq!(all.log, defaults.log);
    assert_eq!(all.api_keys.len(), 1);
    assert_eq!(all.api_keys[0].role, Role::App);
    assert_eq!(all.api_keys[0].sha256, [0; 32]);
    assert_eq!(all.federation.peers.len(), 1);
    assert_eq!(all.federation.peers[0].name.as_str(), "site-b");
}

#[test]
fn local_cluster_examples_load() {
    let dir = crate_file("examples/local-3");
    for n in 1..=3u64 {
        let path = dir.join(format!("node-{n}.toml"));
        let c = NodeConfig::load_with_env(&path, &[])
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(c.node_id, n);
        assert_eq!(c.site.as_str(), "local");
        assert_eq!(c.listen, format!("127.0.0.1:710{n}").parse().unwrap());
        assert_eq!(c.advertise_url, format!("http://127.0.0.1:710{n}"));
        assert_eq!(c.data_dir, dir.join(format!("data/node-{n}")));
        assert!(c.cluster_secret.len() >= 32);
        assert_eq!(c.policy.idle_timeout, Duration::from_secs(15 * 60));
        assert_eq!(c.policy.max_lifetime, Duration::from_secs(8 * 3600));
        assert_eq!(c.policy.max_concurrent_sessions, 3);
        assert_eq!(c.policy.on_limit, OnLimit::BlockNew);
        assert!(c.metrics.open);
        let boot = c.bootstrap.expect("the local cluster forms itself");
        assert_eq!(boot.expect, 3);
        assert_eq!(c.api_keys.len(), 2);
        assert_eq!(c.api_keys[0].name, "demo-app");
        assert_eq!(c.api_keys[0].role, Role::App);
        assert_eq!(c.api_keys[0].sha256, hash_api_key("demo-app-key-change-me"));
        assert_eq!(c.api_keys[1].name, "demo-admin");
        assert_eq!(c.api_keys[1].role, Role::Admin);
        assert_eq!(
            c.api_keys[1].sha256,
            hash_api_key("demo-admin-key-change-me")
        );

        // The start script moves the data elsewhere.
        let env = vec![(
            "SESSYNC_DATA_DIR".to_owned(),
            format!("/tmp/sessync-local/node-{n}"),
        )];
        let c = NodeConfig::load_with_env(&path, &env).unwrap();
        assert_eq!(
            c.data_dir,
            PathBuf::from(format!("/tmp/sessync-local/node-{n}"))
        );
    }
}

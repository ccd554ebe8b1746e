//! Helpers shared by the integration tests: a temporary config directory with secret files,
//! and environment lists.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// A cluster secret long enough to be accepted.
pub(crate) const CLUSTER_SECRET: &str = "cluster-secret-0123456789abcdef";

/// A temporary directory holding `secrets/cluster`, `secrets/tokens`, `secrets/to-site-b`,
/// `secrets/from-site-b` and `secrets/from-site-b.next`.
pub(crate) fn config_dir() -> TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).expect("secrets dir");
    std::fs::write(secrets.join("cluster"), format!("{CLUSTER_SECRET}\n")).expect("write");
    std::fs::write(secrets.join("tokens"), "token-secret-0123456789abcdef\n").expect("write");
    std::fs::write(secrets.join("to-site-b"), "to-site-b-secret-0123456789\n").expect("write");
    std::fs::write(secrets.join("to-site-c"), "to-site-c-secret-0123456789\n").expect("write");
    std::fs::write(secrets.join("from-site-b"), "from-site-b-secret-0123456789").expect("write");
    std::fs::write(
        secrets.join("from-site-b.next"),
        "from-site-b-next-0123456789\n",
    )
    .expect("write");
    dir
}

/// Writes `text` as `name` in `dir`, returning its path.
pub(crate) fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

/// An environment list from string pairs.
pub(crate) fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The smallest valid config.
pub(crate) const MINIMAL: &str = r#"
node_id = 1
site = "site-a"
listen = "127.0.0.1:7101"
advertise_url = "http://127.0.0.1:7101"
data_dir = "data/node-1"
cluster_secret_file = "secrets/cluster"
"#;

/// `MINIMAL` with `extra` appended.
pub(crate) fn minimal_with(extra: &str) -> String {
    format!("{MINIMAL}\n{extra}\n")
}

/// The keys `problems` name, in order.
pub(crate) fn keys(problems: &[sessync_config::Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.key.as_str()).collect()
}

/// Every problem `check` finds in a config file of `text`.
pub(crate) fn problems_of(text: &str) -> Vec<sessync_config::Problem> {
    let dir = config_dir();
    let path = write(dir.path(), "node.toml", text);
    sessync_config::NodeConfig::check_with_env(&path, &[])
}

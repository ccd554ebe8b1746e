//! Loading: values and defaults, duration forms, the process environment, relative path
//! resolution, secrets, and the errors that stop a load (`SESSYNC_*` overrides given
//! explicitly are in `env_overrides.rs`).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{config_dir, env, minimal_with, write, CLUSTER_SECRET, MINIMAL};
use sessync_config::{ConfigError, LogFormat, NodeConfig};
use sessync_proto::Policy;

#[test]
fn minimal_config_gets_every_default() {
    let dir = config_dir();
    let path = write(dir.path(), "node.toml", MINIMAL);
    let c = NodeConfig::load_with_env(&path, &[]).unwrap();
    assert_eq!(c.node_id, 1);
    assert_eq!(c.site.as_str(), "site-a");
    assert_eq!(c.listen, "127.0.0.1:7101".parse().unwrap());
    assert_eq!(c.advertise_url, "http://127.0.0.1:7101");
    assert_eq!(c.data_dir, dir.path().join("data/node-1"));
    assert_eq!(c.cluster_secret.expose(), CLUSTER_SECRET.as_bytes());
    assert_eq!(c.policy, Policy::default());
    assert!(c.api_keys.is_empty());
    assert!(c.federation.peers.is_empty());
    assert!(!c.metrics.open);
    assert_eq!(c.raft.heartbeat_interval, Duration::from_millis(250));
    assert_eq!(c.raft.election_timeout_min, Duration::from_secs(1));
    assert_eq!(c.raft.election_timeout_max, Duration::from_secs(2));
    assert_eq!(c.raft.snapshot_after_logs, 50_000);
    assert_eq!(c.raft.max_logs_kept_after_snapshot, 1000);
    assert_eq!(c.limits.request_timeout, Duration::from_secs(5));
    assert_eq!(c.limits.max_body_bytes, 16384);
    assert_eq!(c.log.level, "info");
    assert_eq!(c.log.format, LogFormat::Text);
}

#[test]
fn every_duration_form() {
    let dir = config_dir();
    let text = minimal_with(
        r#"
[policy]
max_clock_skew = "500ms"
touch_interval = "30s"
idle_timeout = "15m"
max_lifetime = "8h"
audit_retention = "7d"
retention = "1h 30m"
"#,
    );
    let c = NodeConfig::from_toml_str(&text, dir.path(), &[]).unwrap();
    assert_eq!(c.policy.max_clock_skew, Duration::from_millis(500));
    assert_eq!(c.policy.touch_interval, Duration::from_secs(30));
    assert_eq!(c.policy.idle_timeout, Duration::from_secs(15 * 60));
    assert_eq!(c.policy.max_lifetime, Duration::from_secs(8 * 3600));
    assert_eq!(c.policy.audit_retention, Duration::from_secs(7 * 86_400));
    assert_eq!(c.policy.retention, Duration::from_secs(5400));
}

#[test]
fn bad_duration_is_named() {
    let dir = config_dir();
    let text = minimal_with("[policy]\nidle_timeout = \"15x\"\n");
    let e = NodeConfig::from_toml_str(&text, dir.path(), &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"policy.idle_timeout: "15x" is not a duration (use 500ms, 30s, 15m, 8h, 7d)"#
    );
    assert_eq!(e.key(), Some("policy.idle_timeout"));

    let text = minimal_with("[raft]\nheartbeat_interval = 250\n");
    let e = NodeConfig::from_toml_str(&text, dir.path(), &[]).unwrap_err();
    assert_eq!(e.key(), Some("raft.heartbeat_interval"));
    assert!(e.to_string().contains("250 is not a duration"), "{e}");
}

#[test]
fn unknown_keys_are_named() {
    let dir = config_dir();
    let text = minimal_with("[policy]\nidel_timeout = \"15m\"\n");
    let e = NodeConfig::from_toml_str(&text, dir.path(), &[]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("unknown key `policy.idel_timeout`"),
        "{e}"
    );
    assert!(
        e.to_string().contains("did you mean `policy.idle_timeout`"),
        "{e}"
    );
    assert_eq!(e.key(), Some("policy.idel_timeout"));

    let text = format!("{MINIMAL}\ncolour = \"blue\"\n");
    let e = NodeConfig::from_toml_str(&text, dir.path(), &[]).unwrap_err();
    assert_eq!(e.to_string(), "unknown key `colour`");

    let text = minimal_with("[[api_keys]]\nname = \"a\"\nrole = \"app\"\nsha = \"x\"\n");
    let e = NodeConfig::from_toml_str(&text, dir.path(), &[]).unwrap_err();
    assert_eq!(e.key(), Some("api_keys[0].sha"), "{e}");

    let text = minimal_with("[tsl]\ncert = \"x\"\n");
    let e = NodeConfig::from_toml_str(&text, dir.path(), &[]).unwrap_err();
    assert_eq!(e.to_string(), "unknown key `tsl` (did you mean `tls`?)");

    let text = minimal_with("[tls]\ncert = \"x\"\n");
    let e = NodeConfig::from_toml_str(&text, dir.path(), &[]).unwrap_err();
    assert!(e.to_string().starts_with("unknown key `tls.cert`"), "{e}");
}

#[test]
fn bad_values_are_named() {
    let dir = config_dir();
    let cases: &[(&str, &str, &str)] = &[
        ("node_id = 0", "node_id", "node_id: must be > 0"),
        (
            "node_id = -3",
            "node_id",
            "node_id: -3 must not be negative",
        ),
        ("node_id = \"one\"", "node_id", "not a whole number"),
        ("site = \"Site A\"", "site", "lowercase"),
        (
            "listen = \"localhost:7101\"",
            "listen",
            "not an IP address and port",
        ),
        (
            "advertise_url = \"127.0.0.1:7101\"",
            "advertise_url",
            "http:// or https://",
        ),
        ("data_dir = \"\"", "data_dir", "data_dir: must not be empty"),
    ];
    for (line, key, needle) in cases {
        let name = line.split(' ').next().unwrap();
        let text: String = MINIMAL
            .lines()
            .map(|l| {
                if l.starts_with(&format!("{name} ")) {
                    *line
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let e = NodeConfig::from_toml_str(&text, dir.path(), &[]).unwrap_err();
        assert_eq!(e.key(), Some(*key), "{line}: {e}");
        assert!(e.to_string().contains(needle), "{line}: {e}");
    }
    let e = NodeConfig::from_toml_str(
        &minimal_with("[policy]\non_limit = \"queue\""),
        dir.path(),
        &[],
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"policy.on_limit: "queue" is not one of deny, block_new, evict_oldest"#
    );
}

#[test]
fn required_keys_are_named() {
    let dir = config_dir();
    let e = NodeConfig::from_toml_str("site = \"a\"", dir.path(), &[]).unwrap_err();
    assert_eq!(e.to_string(), "node_id: is required");
}

#[test]
fn missing_secret_is_named() {
    let dir = config_dir();
    let text = MINIMAL.replace("secrets/cluster", "secrets/missing");
    let e = NodeConfig::from_toml_str(&text, dir.path(), &[]).unwrap_err();
    let expected = format!(
        "cluster_secret_file: cannot read {}: No such file or directory",
        dir.path().join("secrets/missing").display()
    );
    assert_eq!(e.to_string(), expected);
    assert_eq!(e.key(), Some("cluster_secret_file"));

    std::fs::write(dir.path().join("secrets/empty"), "\n").unwrap();
    let text = MINIMAL.replace("secrets/cluster", "secrets/empty");
    let e = NodeConfig::from_toml_str(&text, dir.path(), &[]).unwrap_err();
    assert!(e.to_string().ends_with("secrets/empty is empty"), "{e}");

    std::fs::write(dir.path().join("secrets/short"), "too-short\n").unwrap();
    let text = MINIMAL.replace("secrets/cluster", "secrets/short");
    let e = NodeConfig::from_toml_str(&text, dir.path(), &[]).unwrap_err();
    assert!(e.to_string().contains("at least 16 bytes"), "{e}");

    let text = MINIMAL.replace("cluster_secret_file = \"secrets/cluster\"", "");
    let e = NodeConfig::from_toml_str(&text, dir.path(), &[]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cluster_secret_file: is required"),
        "{e}"
    );
}

#[test]
fn relative_paths_follow_the_file_and_env_paths_the_working_directory() {
    let dir = config_dir();
    let sub = dir.path().join("etc");
    std::fs::create_dir(&sub).unwrap();
    let text = MINIMAL.replace("secrets/cluster", "../secrets/cluster");
    let path = write(&sub, "node.toml", &text);
    let c = NodeConfig::load_with_env(&path, &[]).unwrap();
    assert_eq!(c.data_dir, sub.join("data/node-1"));

    let c = NodeConfig::load_with_env(&path, &env(&[("SESSYNC_DATA_DIR", "var/node-9")])).unwrap();
    assert_eq!(c.data_dir, PathBuf::from("var/node-9"));

    // An absolute path stays as it is.
    let abs = dir.path().join("abs-data");
    let text = text.replace("data/node-1", abs.to_str().unwrap());
    let c = NodeConfig::from_toml_str(&text, Path::new("/nowhere"), &[]);
    // The secret path is relative, so it resolves under /nowhere and is missing.
    assert_eq!(c.unwrap_err().key(), Some("cluster_secret_file"));
    let c = NodeConfig::from_toml_str(&text, &sub, &[]).unwrap();
    assert_eq!(c.data_dir, abs);
}

#[test]
#[allow(clippy::result_large_err)] // the closure's error type is figment's
fn process_environment_is_read_by_load() {
    figment::Jail::expect_with(|jail| {
        jail.create_dir("secrets")?;
        jail.create_file("secrets/cluster", CLUSTER_SECRET)?;
        jail.create_file("node.toml", MINIMAL)?;
        jail.set_env("SESSYNC_POLICY_IDLE_TIMEOUT", "30s");
        jail.set_env("SESSYNC_NODE_ID", "3");
        jail.set_env("SESSYNC_ENDPOINTS", "http://127.0.0.1:7101");
        jail.set_env("SESSYNC_API_KEY", "whatever");
        let c = NodeConfig::load(Path::new("node.toml")).expect("loads");
        assert_eq!(c.policy.idle_timeout, Duration::from_secs(30));
        assert_eq!(c.node_id, 3);
        // The config file's directory is "" here: paths stay relative to the working directory.
        assert_eq!(c.data_dir, PathBuf::from("data/node-1"));
        assert!(NodeConfig::check(Path::new("node.toml")).is_empty());
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)] // the closure's error type is figment's
fn missing_secret_message_with_relative_config_path() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("node.toml", MINIMAL)?;
        let e = NodeConfig::load(Path::new("node.toml")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cluster_secret_file: cannot read secrets/cluster: No such file or directory"
        );
        Ok(())
    });
}

#[test]
fn unreadable_or_malformed_file() {
    let dir = config_dir();
    let missing = dir.path().join("nope.toml");
    let e = NodeConfig::load_with_env(&missing, &[]).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }), "{e:?}");
    assert_eq!(e.key(), None);
    assert!(e.to_string().contains("No such file or directory"), "{e}");

    let e = NodeConfig::from_toml_str("node_id = = 1", dir.path(), &[]).unwrap_err();
    assert!(matches!(e, ConfigError::Syntax { .. }), "{e:?}");
    assert!(e.to_string().contains("line 1"), "{e}");
}

#[test]
fn advertise_url_defaults_from_listen_and_loses_trailing_slash() {
    let dir = config_dir();
    let text = MINIMAL.replace("advertise_url = \"http://127.0.0.1:7101\"", "");
    let c = NodeConfig::from_toml_str(&text, dir.path(), &[]).unwrap();
    assert_eq!(c.advertise_url, "http://127.0.0.1:7101");

    let wildcard = text.replace("127.0.0.1:7101", "0.0.0.0:7101");
    let e = NodeConfig::from_toml_str(&wildcard, dir.path(), &[]).unwrap_err();
    assert_eq!(e.key(), Some("advertise_url"));

    let text = MINIMAL.replace("http://127.0.0.1:7101", "http://10.0.0.1:7101//");
    let c = NodeConfig::from_toml_str(&text, dir.path(), &[]).unwrap();
    assert_eq!(c.advertise_url, "http://10.0.0.1:7101");
}

#[test]
fn secrets_do_not_leak_through_debug() {
    let dir = config_dir();
    let c = NodeConfig::from_toml_str(MINIMAL, dir.path(), &[]).unwrap();
    let printed = format!("{c:?} {c:#?} {}", c.cluster_secret);
    assert!(!printed.contains(CLUSTER_SECRET), "{printed}");
    assert!(printed.contains("<redacted>"));
}

/// Tokens are random now: the token secret of earlier versions is accepted and ignored (its
/// file is not even read), and named for the node to warn about.
#[test]
fn a_token_secret_of_an_earlier_version_is_accepted_and_ignored() {
    let dir = config_dir();
    let c = NodeConfig::from_toml_str(MINIMAL, dir.path(), &[]).unwrap();
    assert!(c.deprecated.is_empty());
    for file in ["secrets/tokens", "secrets/none"] {
        let text = format!("token_secret_file = \"{file}\"\n{MINIMAL}");
        let c = NodeConfig::from_toml_str(&text, dir.path(), &[]).unwrap();
        assert_eq!(c.deprecated, ["token_secret_file"]);
    }
    let e = env(&[("SESSYNC_TOKEN_SECRET", "from-the-environment-0123456789")]);
    let c = NodeConfig::from_toml_str(MINIMAL, dir.path(), &e).unwrap();
    assert_eq!(c.deprecated, ["SESSYNC_TOKEN_SECRET"]);
    let printed = format!("{c:?}");
    assert!(!printed.contains("from-the-environment"), "{printed}");
    // The variable is a known one (a node reports unknown ones as misspelt).
    assert!(sessync_config::unknown_vars(["SESSYNC_TOKEN_SECRET"]).is_empty());
}

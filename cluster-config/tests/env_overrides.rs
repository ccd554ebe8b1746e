//! `SESSYNC_<SECTION>_<KEY>` overrides given to the loader: policy, top-level and federation
//! keys; unrelated and unknown variables; peers only in the file; bad values named with their
//! variable; the cluster secret from the environment.

mod common;

use std::time::Duration;

use common::{config_dir, env, minimal_with, write, MINIMAL};
use sessync_config::{LogFormat, NodeConfig};

#[test]
fn env_overrides_policy_and_top_level_keys() {
    let dir = config_dir();
    let path = write(
        dir.path(),
        "node.toml",
        &minimal_with("[policy]\nidle_timeout = \"15m\""),
    );
    let vars = env(&[
        ("SESSYNC_POLICY_IDLE_TIMEOUT", "30s"),
        ("SESSYNC_POLICY_ON_LIMIT", "evict_oldest"),
        ("SESSYNC_NODE_ID", "7"),
        ("SESSYNC_SITE", "site-z"),
        ("SESSYNC_ADVERTISE_URL", "https://n7.example.com/"),
        ("SESSYNC_RAFT_HEARTBEAT_INTERVAL", "100ms"),
        ("SESSYNC_LIMITS_REQUEST_TIMEOUT", "2s"),
        ("SESSYNC_LIMITS_MAX_BODY_BYTES", "1024"),
        ("SESSYNC_LIMITS_MAX_EVENT_STREAMS", "40"),
        ("SESSYNC_LIMITS_MAX_EVENT_STREAMS_PER_KEY", "4"),
        ("SESSYNC_METRICS_OPEN", "true"),
        ("SESSYNC_LOG_LEVEL", "warn,sessync_node=debug"),
        ("SESSYNC_LOG_FORMAT", "json"),
        // Variables of the CLI and unrelated ones are ignored.
        (
            "SESSYNC_ENDPOINTS",
            "http://127.0.0.1:7101,http://127.0.0.1:7102",
        ),
        ("SESSYNC_API_KEY", "demo-admin-key-change-me"),
        ("SESSYNC_SOMETHING_ELSE", "x"),
        ("HOME", "/root"),
    ]);
    let c = NodeConfig::load_with_env(&path, &vars).unwrap();
    assert_eq!(c.policy.idle_timeout, Duration::from_secs(30));
    assert_eq!(c.policy.on_limit, sessync_proto::OnLimit::EvictOldest);
    assert_eq!(c.node_id, 7);
    assert_eq!(c.site.as_str(), "site-z");
    assert_eq!(c.advertise_url, "https://n7.example.com");
    assert_eq!(c.raft.heartbeat_interval, Duration::from_millis(100));
    assert_eq!(c.limits.request_timeout, Duration::from_secs(2));
    assert_eq!(c.limits.max_body_bytes, 1024);
    assert_eq!(c.limits.max_event_streams, 40);
    assert_eq!(c.limits.max_event_streams_per_key, 4);
    assert!(c.metrics.open);
    assert_eq!(c.log.level, "warn,sessync_node=debug");
    assert_eq!(c.log.format, LogFormat::Json);
}

#[test]
fn unrelated_sessync_variable_is_ignored() {
    let dir = config_dir();
    let vars = env(&[("SESSYNC_ENDPOINTS", "http://127.0.0.1:7101")]);
    let c = NodeConfig::from_toml_str(MINIMAL, dir.path(), &vars).unwrap();
    assert_eq!(c.node_id, 1);
}

#[test]
fn sessync_federation_variables_override_the_federation_section() {
    let dir = config_dir();
    let vars = env(&[
        ("SESSYNC_FEDERATION_OUTBOX_LIMIT", "7"),
        ("SESSYNC_FEDERATION_RETRY_MAX", "2s"),
        ("SESSYNC_FEDERATION_SEND_TIMEOUT", "1500ms"),
    ]);
    let c = NodeConfig::from_toml_str(
        &minimal_with("[federation]\noutbox_limit = 100"),
        dir.path(),
        &vars,
    )
    .unwrap();
    assert_eq!(c.federation.outbox_limit, 7);
    assert_eq!(c.federation.retry_max, Duration::from_secs(2));
    assert_eq!(c.federation.send_timeout, Duration::from_millis(1500));
    let bad = env(&[("SESSYNC_FEDERATION_OUTBOX_LIMIT", "lots")]);
    let e = NodeConfig::from_toml_str(MINIMAL, dir.path(), &bad).unwrap_err();
    assert!(
        e.to_string().contains("SESSYNC_FEDERATION_OUTBOX_LIMIT"),
        "{e}"
    );
}

#[test]
fn unknown_sessync_variables_are_named_for_the_node_to_report() {
    let names = [
        "SESSYNC_POLICY_IDEL_TIMEOUT",
        "SESSYNC_POLICY_IDLE_TIMEOUT",
        "SESSYNC_CLUSTER_SECRET",
        "SESSYNC_ENDPOINTS",
        "SESSYNC_API_KEY",
        "SESSYNC_FEDERATION_PEERS",
        "HOME",
    ];
    // SESSYNC_FEDERATION_PEERS is not unknown: it is refused (below), not ignored.
    assert_eq!(
        sessync_config::unknown_vars(names),
        [
            "SESSYNC_POLICY_IDEL_TIMEOUT",
            "SESSYNC_ENDPOINTS",
            "SESSYNC_API_KEY"
        ]
    );
}

#[test]
fn a_variable_for_federation_peers_is_refused_saying_they_are_set_in_the_file() {
    let dir = config_dir();
    let with_peer = minimal_with(
        "[[federation.peers]]\nname = \"site-b\"\nurls = [\"http://127.0.0.1:7201\"]\n\
         send_secret_file = \"secrets/to-site-b\"\nreceive_secret_file = \"secrets/from-site-b\"",
    );
    let c = NodeConfig::from_toml_str(&with_peer, dir.path(), &[]).unwrap();
    assert_eq!(c.federation.peers.len(), 1);
    for (var, key) in [
        ("SESSYNC_FEDERATION_PEERS", "federation.peers"),
        ("sessync_federation_peers", "federation.peers"),
        ("SESSYNC_FEDERATION_PEERS_0_URLS", "federation.peers"),
        ("SESSYNC_API_KEYS", "api_keys"),
    ] {
        for text in [MINIMAL, with_peer.as_str()] {
            let vars = env(&[(var, r#"[{name = "site-b", urls = ["https://b:7101"]}]"#)]);
            let e = NodeConfig::from_toml_str(text, dir.path(), &vars).unwrap_err();
            assert_eq!(e.key(), Some(key), "{e}");
            let m = e.to_string();
            assert!(
                m.contains(
                    "arrays of tables such as federation peers can only be set in the config file"
                ),
                "{m}"
            );
            assert!(m.contains(var), "names the variable: {m}");
        }
        // `config check` lists it the same way.
        let path = write(dir.path(), "node.toml", MINIMAL);
        let problems = NodeConfig::check_with_env(&path, &env(&[(var, "x")]));
        assert!(problems.iter().any(|p| p.key == key), "{problems:?}");
    }
}

#[test]
fn bad_env_value_names_key_and_variable() {
    let dir = config_dir();
    let vars = env(&[("SESSYNC_POLICY_IDLE_TIMEOUT", "15x")]);
    let e = NodeConfig::from_toml_str(MINIMAL, dir.path(), &vars).unwrap_err();
    assert_eq!(e.key(), Some("policy.idle_timeout"));
    assert!(
        e.to_string()
            .ends_with("(set by SESSYNC_POLICY_IDLE_TIMEOUT)"),
        "{e}"
    );

    let vars = env(&[("SESSYNC_NODE_ID", "0")]);
    let e = NodeConfig::from_toml_str(MINIMAL, dir.path(), &vars).unwrap_err();
    assert_eq!(
        e.to_string(),
        "node_id: must be > 0 (set by SESSYNC_NODE_ID)"
    );
}

#[test]
fn cluster_secret_from_env_takes_precedence() {
    let dir = config_dir();
    let secret = "env-secret-0123456789abcdef";
    let text = MINIMAL.replace("cluster_secret_file = \"secrets/cluster\"", "");
    let vars = env(&[("SESSYNC_CLUSTER_SECRET", &format!("{secret}\n"))]);
    let c = NodeConfig::from_toml_str(&text, dir.path(), &vars).unwrap();
    assert_eq!(c.cluster_secret.expose(), secret.as_bytes());

    // Over a file too (the file is then not read).
    let text = MINIMAL.replace("secrets/cluster", "secrets/missing");
    let c = NodeConfig::from_toml_str(&text, dir.path(), &vars).unwrap();
    assert_eq!(c.cluster_secret.expose(), secret.as_bytes());

    let vars = env(&[("SESSYNC_CLUSTER_SECRET", "short")]);
    let e = NodeConfig::from_toml_str(MINIMAL, dir.path(), &vars).unwrap_err();
    assert_eq!(e.key(), Some("SESSYNC_CLUSTER_SECRET"));
    assert!(!e.to_string().contains("short"), "the secret leaked: {e}");

    let vars = env(&[("SESSYNC_CLUSTER_SECRET_FILE", "/nonexistent/secret")]);
    let e = NodeConfig::from_toml_str(MINIMAL, dir.path(), &vars).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cluster_secret_file: cannot read /nonexistent/secret: No such file or directory \
         (set by SESSYNC_CLUSTER_SECRET_FILE)"
    );
}

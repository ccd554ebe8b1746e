//! Validation: `check` listing every problem at once, rules between values, API keys, TLS,
//! limits (federation peers are in `federation.rs`).

mod common;

use std::time::Duration;

use common::{config_dir, keys, minimal_with, problems_of, write, MINIMAL};
use sessync_config::{hash_api_key, NodeConfig};
use sessync_proto::Role;

#[test]
fn check_returns_every_problem() {
    let text = r#"
node_id = 0
site = "site-a"
listen = "localhost:7101"
data_dir = "data/node-1"
cluster_secret_file = "secrets/missing"
colour = "blue"

[policy]
idle_timeout = "15x"
idel_timeout = "15m"
max_lifetime = "1m"

[[api_keys]]
name = "webapp"
sha256 = "not-a-hash"
role = "app"

[[api_keys]]
name = "webapp"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
role = "root"

[raft]
election_timeout_max = "500ms"
"#;
    let problems = problems_of(text);
    assert_eq!(
        keys(&problems),
        [
            // Unknown keys first (a table's after its sub-tables'), then the rest in file order.
            "policy.idel_timeout",
            "colour",
            "node_id",
            "listen",
            "cluster_secret_file",
            "policy.idle_timeout",
            "api_keys[0].sha256",
            "api_keys[1].role",
            "api_keys[1].name",
            "raft.election_timeout_max",
        ],
        "{problems:#?}"
    );
    // max_lifetime is not compared with an idle_timeout that could not be read.
    for p in &problems {
        assert!(p.message.contains(&p.key), "{p:?}");
    }
    assert_eq!(problems[2].to_string(), "node_id: must be > 0");
    assert_eq!(
        problems[8].message,
        r#"api_keys[1].name: "webapp" is also the name of api_keys[0]"#
    );
}

#[test]
fn check_of_a_good_file_is_empty_and_load_agrees() {
    let dir = config_dir();
    let path = write(dir.path(), "node.toml", MINIMAL);
    assert!(NodeConfig::check_with_env(&path, &[]).is_empty());
    assert!(NodeConfig::load_with_env(&path, &[]).is_ok());
}

#[test]
fn check_reports_an_unreadable_file() {
    let dir = config_dir();
    let problems = NodeConfig::check_with_env(&dir.path().join("none.toml"), &[]);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].key, "");
    assert!(problems[0].message.starts_with("cannot read config file"));
}

/// Reading `/dev/zero` as a secret never ended: the node hung at start (found by the
/// config_parsing fuzz target). Files a config names are read only if regular and bounded.
#[test]
fn a_secret_file_that_is_a_device_is_refused_not_read_forever() {
    let text = MINIMAL.replace("secrets/cluster", "/dev/zero");
    let problems = problems_of(&text);
    assert_eq!(keys(&problems), ["cluster_secret_file"], "{problems:?}");
    assert!(
        problems[0]
            .message
            .contains("/dev/zero: not a regular file"),
        "{}",
        problems[0].message
    );
}

#[test]
fn policy_rules() {
    let p = problems_of(&minimal_with("[policy]\nidle_timeout = \"0s\""));
    assert_eq!(keys(&p), ["policy.idle_timeout"]);

    let p = problems_of(&minimal_with(
        "[policy]\nidle_timeout = \"1h\"\nmax_lifetime = \"30m\"",
    ));
    assert_eq!(keys(&p), ["policy.max_lifetime"]);
    assert!(
        p[0].message.contains("shorter than idle_timeout (1h)"),
        "{p:?}"
    );

    let p = problems_of(&minimal_with(
        "[policy]\nidle_timeout = \"10s\"\ntouch_interval = \"10s\"",
    ));
    assert_eq!(keys(&p), ["policy.touch_interval"]);

    // Equal lifetime and idle timeout are fine; so is no limit.
    let dir = config_dir();
    let text = minimal_with(
        "[policy]\nidle_timeout = \"1h\"\nmax_lifetime = \"1h\"\nmax_concurrent_sessions = 0",
    );
    let c = NodeConfig::from_toml_str(&text, dir.path(), &[]).unwrap();
    assert_eq!(c.policy.max_concurrent_sessions, 0);
}

#[test]
fn a_short_idle_timeout_needs_no_touch_interval_of_its_own() {
    let dir = config_dir();
    let short = minimal_with("[policy]\nidle_timeout = \"1s\"");
    let c = NodeConfig::from_toml_str(&short, dir.path(), &[]).expect("accepted");
    assert_eq!(
        c.policy.touch_interval,
        Duration::from_millis(100),
        "a tenth"
    );
    // A long idle timeout keeps the default touch interval.
    let long = minimal_with("[policy]\nidle_timeout = \"1h\"");
    let c = NodeConfig::from_toml_str(&long, dir.path(), &[]).unwrap();
    assert_eq!(c.policy.touch_interval, Duration::from_secs(2));
    // A touch_interval that is set is still checked against the idle timeout.
    let p = problems_of(&minimal_with(
        "[policy]\nidle_timeout = \"1s\"\ntouch_interval = \"2s\"",
    ));
    assert_eq!(keys(&p), ["policy.touch_interval"]);
}

#[test]
fn durations_have_an_upper_bound_instead_of_overflowing() {
    let p = problems_of(&minimal_with(
        "[limits]\nrequest_timeout = \"500000years\"\n[policy]\nretention = \"101years\"",
    ));
    let mut found = keys(&p);
    found.sort_unstable();
    assert_eq!(found, ["limits.request_timeout", "policy.retention"]);
    assert!(
        p.iter().all(|p| p.message.contains("longest duration")),
        "{p:?}"
    );
    let dir = config_dir();
    let ok = minimal_with("[policy]\nretention = \"99years\"");
    assert!(NodeConfig::from_toml_str(&ok, dir.path(), &[]).is_ok());
}

#[test]
fn raft_and_limits_rules() {
    let p = problems_of(&minimal_with(
        "[raft]\nheartbeat_interval = \"1s\"\nelection_timeout_min = \"1s\"",
    ));
    assert_eq!(keys(&p), ["raft.election_timeout_min"]);

    let p = problems_of(&minimal_with(
        "[raft]\nelection_timeout_min = \"2s\"\nelection_timeout_max = \"2s\"\nsnapshot_after_logs = 0",
    ));
    assert_eq!(
        keys(&p),
        ["raft.election_timeout_max", "raft.snapshot_after_logs"]
    );
    let p = problems_of(&minimal_with(
        "[raft]\ninstall_snapshot_timeout = \"500ms\"",
    ));
    assert_eq!(keys(&p), ["raft.install_snapshot_timeout"]);

    let p = problems_of(&minimal_with(
        "[limits]\nrequest_timeout = \"0ms\"\nmax_body_bytes = 0\n[log]\nformat = \"xml\"\nlevel = \"\"",
    ));
    assert_eq!(
        keys(&p),
        [
            "limits.request_timeout",
            "limits.max_body_bytes",
            "log.level",
            "log.format"
        ]
    );

    let p = problems_of(&minimal_with("[metrics]\nopen = \"yes\""));
    assert_eq!(keys(&p), ["metrics.open"]);
}

#[test]
fn api_keys_parse_and_duplicates_are_refused() {
    let dir = config_dir();
    let admin = hex::encode(hash_api_key("admin-key"));
    let app = hex::encode(hash_api_key("app-key"));
    let text = minimal_with(&format!(
        "[[api_keys]]\nname = \"ops\"\nsha256 = \"{}\"\nrole = \"admin\"\n\n\
         [[api_keys]]\nname = \"webapp\"\nsha256 = \"{app}\"\nrole = \"app\"\n",
        admin.to_uppercase()
    ));
    let c = NodeConfig::from_toml_str(&text, dir.path(), &[]).unwrap();
    assert_eq!(c.api_keys.len(), 2);
    assert_eq!(c.api_keys[0].name, "ops");
    assert_eq!(c.api_keys[0].sha256, hash_api_key("admin-key"));
    assert_eq!(c.api_keys[0].role, Role::Admin);
    assert_eq!(c.api_keys[1].role, Role::App);

    let text = minimal_with(&format!(
        "[[api_keys]]\nname = \"a\"\nsha256 = \"{app}\"\nrole = \"app\"\n\n\
         [[api_keys]]\nname = \"b\"\nsha256 = \"{app}\"\nrole = \"admin\"\n\n\
         [[api_keys]]\nname = \"c\"\nsha256 = \"abcd\"\n"
    ));
    let p = problems_of(&text);
    assert_eq!(
        keys(&p),
        [
            "api_keys[1].sha256",
            "api_keys[2].sha256",
            "api_keys[2].role"
        ]
    );
    assert_eq!(
        p[1].message,
        "api_keys[2].sha256: must be 64 hex characters (the SHA-256 of the key: \
         `printf %s KEY | sha256sum`), not 4 characters"
    );

    let p = problems_of(&minimal_with("[api_keys]\nname = \"a\""));
    assert_eq!(keys(&p), ["api_keys"]);
    assert!(p[0].message.contains("[[api_keys]]"), "{p:?}");
}

#[test]
fn durations_survive_a_round_trip_through_the_template_units() {
    // "1day" and "7days" (humantime's own rendering) are accepted like "1d" and "7d".
    let dir = config_dir();
    let text = minimal_with("[policy]\nretention = \"1day\"\naudit_retention = \"7days\"");
    let c = NodeConfig::from_toml_str(&text, dir.path(), &[]).unwrap();
    assert_eq!(c.policy.retention, Duration::from_secs(86_400));
    assert_eq!(c.policy.audit_retention, Duration::from_secs(7 * 86_400));
}

#[test]
fn a_node_reachable_from_other_hosts_refuses_plain_http_unless_allowed() {
    let open = r#"
node_id = 1
site = "site-a"
listen = "0.0.0.0:7101"
advertise_url = "http://10.0.0.1:7101"
data_dir = "data/node-1"
cluster_secret_file = "secrets/cluster"
"#;
    let problems = problems_of(open);
    assert_eq!(keys(&problems), ["listen"]);
    assert!(
        problems[0].message.contains("allow_plaintext"),
        "{problems:?}"
    );
    assert!(problems_of(&format!("allow_plaintext = true\n{open}")).is_empty());
    // Loopback needs neither.
    assert!(problems_of(MINIMAL).is_empty());
}

#[test]
fn tls_needs_its_files_and_https_urls() {
    let dir = config_dir();
    let pem = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n";
    write(dir.path(), "node.crt", pem);
    write(dir.path(), "node.key", pem);
    write(dir.path(), "not-pem.txt", "hello");
    let check = |text: &str| NodeConfig::check_with_env(&write(dir.path(), "n.toml", text), &[]);

    let problems = check(&minimal_with("[tls]\nkey_file = \"node.key\""));
    assert_eq!(keys(&problems), ["tls.cert_file"]);
    let problems = check(&minimal_with(
        "[tls]\ncert_file = \"node.crt\"\nkey_file = \"node.key\"",
    ));
    assert_eq!(keys(&problems), ["advertise_url"]);
    assert!(problems[0].message.contains("https://"), "{problems:?}");

    let problems = check(&minimal_with(
        "[tls]\ncert_file = \"not-pem.txt\"\nkey_file = \"missing.key\"",
    ));
    assert!(keys(&problems).contains(&"tls.cert_file"), "{problems:?}");
    assert!(keys(&problems).contains(&"tls.key_file"), "{problems:?}");

    let good = MINIMAL.replace("http://", "https://")
        + "\n[tls]\ncert_file = \"node.crt\"\nkey_file = \"node.key\"\n";
    assert!(check(&good).is_empty(), "{:?}", check(&good));
    let c = NodeConfig::load_with_env(&write(dir.path(), "n.toml", &good), &[]).unwrap();
    let tls = c.tls.unwrap();
    assert!(tls.client_ca_pem.is_none() && tls.ca_pem.is_none());
    // The key never prints.
    assert!(!format!("{:?}", tls.key_pem).contains("CERTIFICATE"));

    // Without advertise_url, TLS makes the default https://.
    let no_adv: String = good
        .lines()
        .filter(|l| !l.starts_with("advertise_url"))
        .collect::<Vec<_>>()
        .join("\n");
    let c = NodeConfig::load_with_env(&write(dir.path(), "n.toml", &no_adv), &[]).unwrap();
    assert_eq!(c.advertise_url, "https://127.0.0.1:7101");
}

#[test]
fn connection_limits_have_defaults_and_refuse_zero() {
    let dir = config_dir();
    let c = NodeConfig::load_with_env(&write(dir.path(), "n.toml", MINIMAL), &[]).unwrap();
    assert_eq!(c.limits.header_timeout, Duration::from_secs(10));
    assert_eq!(c.limits.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.limits.max_connections, 1024);
    assert_eq!(c.limits.max_connections_per_source, 512);
    let problems = problems_of(&minimal_with(
        "[limits]\nheader_timeout = \"0s\"\nmax_concurrent_requests = 0",
    ));
    assert_eq!(
        keys(&problems),
        ["limits.header_timeout", "limits.max_concurrent_requests"]
    );
    let problems = problems_of(&minimal_with(
        "[limits]\nmax_connections = 100\nmax_connections_per_source = 101",
    ));
    assert_eq!(keys(&problems), ["limits.max_connections_per_source"]);
    // Unset, the per-source bound never exceeds a smaller max_connections.
    let dir = config_dir();
    let path = write(
        dir.path(),
        "n.toml",
        &format!("{MINIMAL}\n[limits]\nmax_connections = 1\n"),
    );
    let c = NodeConfig::load_with_env(&path, &[]).unwrap();
    assert_eq!(c.limits.max_connections_per_source, 1);
    assert_eq!(c.limits.max_event_streams, 1);
    assert_eq!(c.limits.max_event_streams_per_key, 1);
}

#[test]
fn event_stream_limits_have_defaults_and_refuse_zero_or_more_than_the_bound_above() {
    let dir = config_dir();
    let c = NodeConfig::load_with_env(&write(dir.path(), "n.toml", MINIMAL), &[]).unwrap();
    assert_eq!(c.limits.max_event_streams, 256);
    assert_eq!(c.limits.max_event_streams_per_key, 16);
    let problems = problems_of(&minimal_with(
        "[limits]\nmax_event_streams = 0\nmax_event_streams_per_key = 0",
    ));
    assert_eq!(
        keys(&problems),
        [
            "limits.max_event_streams",
            "limits.max_event_streams_per_key"
        ]
    );
    let problems = problems_of(&minimal_with(
        "[limits]\nmax_connections = 100\nmax_event_streams = 101",
    ));
    assert_eq!(keys(&problems), ["limits.max_event_streams"]);
    assert!(
        problems[0].to_string().contains("max_connections (100)"),
        "{problems:?}"
    );
    let problems = problems_of(&minimal_with(
        "[limits]\nmax_event_streams = 8\nmax_event_streams_per_key = 9",
    ));
    assert_eq!(keys(&problems), ["limits.max_event_streams_per_key"]);
    assert!(
        problems[0].to_string().contains("max_event_streams (8)"),
        "{problems:?}"
    );
    // Unset, the per-key bound never exceeds a smaller node bound.
    let path = write(
        dir.path(),
        "m.toml",
        &format!("{MINIMAL}\n[limits]\nmax_event_streams = 4\n"),
    );
    let c = NodeConfig::load_with_env(&path, &[]).unwrap();
    assert_eq!(c.limits.max_event_streams_per_key, 4);
}

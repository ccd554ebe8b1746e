//! `[bootstrap]`: the member list or DNS name, `expect`, and the node id from the host name;
//! every bad value names its key.

mod common;

use std::collections::BTreeMap;

use common::{config_dir, env, minimal_with, MINIMAL};
use sessync_config::{BootstrapConfig, BootstrapMembers, NodeConfig};

const MEMBERS: &str = r#"members = { 1 = "http://127.0.0.1:7101", 2 = "http://127.0.0.1:7102", 3 = "http://127.0.0.1:7103" }"#;

fn load(text: &str, vars: &[(&str, &str)]) -> Result<NodeConfig, sessync_config::ConfigError> {
    let dir = config_dir();
    NodeConfig::from_toml_str(text, dir.path(), &env(vars))
}

/// `MINIMAL` without its `node_id` line, then `extra`.
fn without_node_id(extra: &str) -> String {
    let text: Vec<&str> = MINIMAL
        .lines()
        .filter(|l| !l.starts_with("node_id"))
        .collect();
    format!("{}\n{extra}\n", text.join("\n"))
}

#[test]
fn member_list_and_dns_load() {
    let c = load(
        &minimal_with(&format!("[bootstrap]\nexpect = 3\n{MEMBERS}")),
        &[],
    )
    .unwrap();
    let listed: BTreeMap<u64, String> = (1..=3)
        .map(|i| (i, format!("http://127.0.0.1:710{i}")))
        .collect();
    assert_eq!(
        c.bootstrap,
        Some(BootstrapConfig {
            expect: 3,
            members: BootstrapMembers::Listed(listed),
        })
    );
    let c = load(
        &minimal_with("[bootstrap]\nexpect = 3\ndns = \"sessync-peers.default.svc:7101\""),
        &[],
    )
    .unwrap();
    assert_eq!(
        c.bootstrap.unwrap().members,
        BootstrapMembers::Dns {
            host: "sessync-peers.default.svc".into(),
            port: 7101
        }
    );
    // From the environment.
    let c = load(
        MINIMAL,
        &[
            ("SESSYNC_BOOTSTRAP_EXPECT", "5"),
            ("SESSYNC_BOOTSTRAP_DNS", "peers:7101"),
        ],
    )
    .unwrap();
    assert_eq!(c.bootstrap.unwrap().expect, 5);
    // Without [bootstrap], none.
    assert_eq!(load(MINIMAL, &[]).unwrap().bootstrap, None);
}

/// A node not among the listed members is allowed (a fourth node with the same file): it
/// never initialises and joins when it is added.
#[test]
fn a_node_outside_the_member_list_loads() {
    let text = minimal_with(&format!("[bootstrap]\nexpect = 3\n{MEMBERS}"))
        .replace("node_id = 1", "node_id = 4")
        .replace("127.0.0.1:7101\"\ndata_dir", "127.0.0.1:7104\"\ndata_dir");
    let c = load(&text, &[]).unwrap();
    assert_eq!(c.node_id, 4);
    assert_eq!(c.advertise_url, "http://127.0.0.1:7104");
}

#[test]
fn bad_bootstrap_values_name_their_key() {
    let cases: &[(&str, &str, &str)] = &[
        // Missing member list.
        ("expect = 3", "bootstrap.members", "is required"),
        // Expect mismatch.
        (
            &format!("expect = 2\n{MEMBERS}"),
            "bootstrap.expect",
            "lists 3 members",
        ),
        (
            "expect = 0\ndns = \"peers:7101\"",
            "bootstrap.expect",
            "at least 1",
        ),
        (MEMBERS, "bootstrap.expect", "is required"),
        (
            &format!("expect = 3\n{MEMBERS}\ndns = \"peers:7101\""),
            "bootstrap.dns",
            "not both",
        ),
        ("expect = 3\ndns = \"peers\"", "bootstrap.dns", "DNS name and port"),
        (
            "expect = 1\nmembers = { x = \"http://127.0.0.1:7101\" }",
            "bootstrap.members.x",
            "node id > 0",
        ),
        (
            "expect = 1\nmembers = { 1 = \"127.0.0.1:7101\" }",
            "bootstrap.members.1",
            "http:// or https://",
        ),
        // This node is not the member its id names.
        (
            "expect = 1\nmembers = { 1 = \"http://127.0.0.1:7109\" }",
            "bootstrap.members.1",
            "advertise_url is",
        ),
        // This node's URL listed as another member.
        (
            "expect = 2\nmembers = { 2 = \"http://127.0.0.1:7101\", 3 = \"http://127.0.0.1:7103\" }",
            "bootstrap.members.2",
            "this node is not member 2",
        ),
        ("expect = 3\nmemebrs = 1", "bootstrap.memebrs", "unknown key"),
    ];
    for (section, key, needle) in cases {
        let text = minimal_with(&format!("[bootstrap]\n{section}"));
        let e = load(&text, &[]).unwrap_err();
        assert_eq!(e.key(), Some(*key), "{section}: {e}");
        assert!(e.to_string().contains(needle), "{section}: {e}");
    }
}

#[test]
fn node_id_from_the_host_names_ordinal() {
    let section = format!("[bootstrap]\nexpect = 3\nnode_id_from_hostname = true\n{MEMBERS}");
    let text = without_node_id(&section).replace("7101\"\ndata_dir", "7103\"\ndata_dir");
    let c = load(&text, &[("HOSTNAME", "sessync-2")]).unwrap();
    assert_eq!(c.node_id, 3);
    let c = load(
        &text,
        &[(
            "HOSTNAME",
            "sessync-2.sessync-peers.default.svc.cluster.local",
        )],
    )
    .unwrap();
    assert_eq!(c.node_id, 3);
    // From the environment, without any member list.
    let c = load(
        &without_node_id(""),
        &[
            ("HOSTNAME", "db-0"),
            ("SESSYNC_BOOTSTRAP_NODE_ID_FROM_HOSTNAME", "true"),
        ],
    )
    .unwrap();
    assert_eq!(c.node_id, 1);
    assert_eq!(c.bootstrap, None);

    // Bad host name ordinal.
    for host in ["sessync", "sessync-x", "sessync-"] {
        let e = load(&text, &[("HOSTNAME", host)]).unwrap_err();
        assert_eq!(
            e.key(),
            Some("bootstrap.node_id_from_hostname"),
            "{host}: {e}"
        );
        assert!(e.to_string().contains("-<ordinal>"), "{host}: {e}");
    }
    // node_id set too, and disagreeing.
    let text = minimal_with("[bootstrap]\nnode_id_from_hostname = true");
    let e = load(&text, &[("HOSTNAME", "sessync-2")]).unwrap_err();
    assert_eq!(e.key(), Some("node_id"), "{e}");
    assert!(e.to_string().contains("gives 3"), "{e}");
    // Agreeing is fine.
    let c = load(&text, &[("HOSTNAME", "sessync-0")]).unwrap();
    assert_eq!(c.node_id, 1);
    // Without the flag, node_id is still required.
    let e = load(&without_node_id(""), &[("HOSTNAME", "sessync-0")]).unwrap_err();
    assert_eq!(e.to_string(), "node_id: is required");
}

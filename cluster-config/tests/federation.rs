//! Federation peers in the config: parsed with their secrets (never shown by Debug), one send
//! secret never serving two peers, problems named by key, duplicate names refused.

mod common;

use common::{config_dir, keys, minimal_with, problems_of};
use sessync_config::NodeConfig;

const PEERS: &str = r#"
[[federation.peers]]
name = "site-b"
urls = ["http://127.0.0.1:7201/", "http://127.0.0.1:7202"]
send_secret_file = "secrets/to-site-b"
receive_secret_file = "secrets/from-site-b"

[[federation.peers]]
name = "site-c"
urls = ["https://c.example.com"]
send_secret_file = "secrets/to-site-c"
receive_secret_files = ["secrets/from-site-b", "secrets/from-site-b.next"]
"#;

#[test]
fn federation_peers_parse() {
    let dir = config_dir();
    let c = NodeConfig::from_toml_str(&minimal_with(PEERS), dir.path(), &[]).unwrap();
    let peers = &c.federation.peers;
    assert_eq!(peers.len(), 2);
    assert_eq!(peers[0].name.as_str(), "site-b");
    assert_eq!(
        peers[0].urls,
        ["http://127.0.0.1:7201", "http://127.0.0.1:7202"]
    );
    assert_eq!(
        peers[0].send_secret.expose(),
        b"to-site-b-secret-0123456789"
    );
    assert_eq!(peers[0].receive_secrets.len(), 1);
    assert_eq!(
        peers[0].receive_secrets[0].expose(),
        b"from-site-b-secret-0123456789"
    );
    assert_eq!(peers[1].receive_secrets.len(), 2);
    assert_eq!(
        peers[1].receive_secrets[1].expose(),
        b"from-site-b-next-0123456789"
    );
    let printed = format!("{c:?}");
    assert!(!printed.contains("secret-0123456789"), "{printed}");
}

/// One send secret for two peers would let either peer sign requests as this site to the
/// other: refused, naming the second peer's key and the first peer.
#[test]
fn one_send_secret_for_two_peers_is_refused() {
    let shared = PEERS.replace("secrets/to-site-c", "secrets/to-site-b");
    let p = problems_of(&minimal_with(&shared));
    assert_eq!(keys(&p), ["federation.peers[1].send_secret_file"], "{p:?}");
    assert!(
        p[0].message
            .contains("same secret as peers[0] (\"site-b\")"),
        "{p:?}"
    );
    assert!(
        !p[0].message.contains("secret-0123456789"),
        "no secret in the message"
    );
}

#[test]
fn federation_problems_are_named() {
    let text = minimal_with(
        r#"
[federation]
retries = 3

[[federation.peers]]
name = "site-a"
urls = []
send_secret_file = "secrets/none"
receive_secret_file = "secrets/from-site-b"
receive_secret_files = ["secrets/from-site-b"]

[[federation.peers]]
name = "site-b"
urls = ["http://ok:1", "tcp://bad"]
send_secret_file = "secrets/to-site-b"

[[federation.peers]]
name = "site-b"
urls = ["http://b2"]
send_secret_file = "secrets/to-site-b"
receive_secret_files = ["secrets/from-site-b", "secrets/from-site-b", "secrets/from-site-b.next"]
"#,
    );
    let p = problems_of(&text);
    assert_eq!(
        keys(&p),
        [
            "federation.retries",
            "federation.peers[0].name",
            "federation.peers[0].urls",
            "federation.peers[0].send_secret_file",
            "federation.peers[0].receive_secret_files",
            "federation.peers[1].urls[1]",
            "federation.peers[1].receive_secret_file",
            "federation.peers[2].receive_secret_files",
        ],
        "{p:#?}"
    );
    assert!(p[1].message.contains("own site"), "{p:?}");
}

#[test]
fn duplicate_peer_names_are_refused() {
    let more = PEERS.replace("name = \"site-c\"", "name = \"site-d\"");
    let text = minimal_with(&format!("{PEERS}\n{more}"));
    let p = problems_of(&text);
    assert_eq!(keys(&p), ["federation.peers[2].name"], "{p:#?}");
    assert!(
        p[0].message
            .contains("also the name of federation.peers[0]"),
        "{p:?}"
    );
}

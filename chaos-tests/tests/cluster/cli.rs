//! The real `sessyncctl` binary against a real 3-node cluster: every session, user and audit
//! command in both output modes, with exit codes, and the global key and endpoint options.
//! The offline commands and exit code 3 are in `cli_offline.rs`.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use sessync_chaos_tests::{ClusterOptions, TestCluster};

use crate::ctl::{ctl, Run};

/// A cluster's endpoints and keys as `sessyncctl` arguments.
struct Cli {
    endpoints: String,
    app: String,
    admin: String,
}

impl Cli {
    fn new(cluster: &TestCluster) -> Self {
        Self {
            endpoints: cluster.urls().join(","),
            app: cluster.app_key().to_owned(),
            admin: cluster.admin_key().to_owned(),
        }
    }

    /// Runs with the app key (from the environment) and `--output json|table`.
    fn app(&self, json: bool, args: &[&str]) -> anyhow::Result<Run> {
        self.with_key(&self.app, json, args)
    }

    /// Runs with the admin key (from the environment).
    fn admin(&self, json: bool, args: &[&str]) -> anyhow::Result<Run> {
        self.with_key(&self.admin, json, args)
    }

    fn with_key(&self, key: &str, json: bool, args: &[&str]) -> anyhow::Result<Run> {
        let mut all = vec!["--timeout", "10s", "--output"];
        all.push(if json { "json" } else { "table" });
        all.extend_from_slice(args);
        ctl(
            &[
                ("SESSYNC_ENDPOINTS", &self.endpoints),
                ("SESSYNC_API_KEY", key),
            ],
            &all,
        )
    }
}

/// The first cell of the first table row (the session id of a session table).
fn first_cell(table: &str) -> anyhow::Result<String> {
    let row = table.lines().nth(1).context("no table row")?;
    Ok(row.split_whitespace().next().unwrap_or_default().to_owned())
}

/// A table's column headers (separated by two or more spaces).
fn headers(table: &str) -> Vec<String> {
    table
        .lines()
        .next()
        .unwrap_or_default()
        .split("  ")
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn session_commands_in_both_output_modes() -> anyhow::Result<()> {
    let cluster = TestCluster::start(ClusterOptions::default()).await?;
    let cli = Cli::new(&cluster);

    // create, table: the session row and its token.
    let r = cli
        .app(
            false,
            &[
                "sessions",
                "create",
                "--user",
                "alice",
                "--device-name",
                "laptop",
            ],
        )?
        .expect(0)?;
    assert_eq!(
        headers(&r.out),
        [
            "SESSION",
            "USER",
            "STATE",
            "REASON",
            "DEVICE",
            "CREATED",
            "LAST SEEN",
            "IDLE ENDS",
            "EXPIRES"
        ]
    );
    let first = first_cell(&r.out)?;
    assert!(first.starts_with("s_"), "{}", r.out);
    assert!(r.out.contains("alice  active  -       laptop"), "{}", r.out);
    let token = r
        .out
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .context("no token line")?
        .to_owned();

    // create, json: one object; the idempotency key answers the same session again.
    let args = [
        "sessions",
        "create",
        "--user",
        "alice",
        "--device-name",
        "phone",
        "--device-id",
        "d-1",
        "--user-agent",
        "ua/1",
        "--ip",
        "10.0.0.7",
        "--origin",
        "web",
        "--idempotency-key",
        "k-1",
    ];
    let created = cli.app(true, &args)?.expect(0)?.json()?;
    let second = created["session"]["session_id"]
        .as_str()
        .context("id")?
        .to_owned();
    assert_eq!(created["session"]["device"]["id"], "d-1");
    assert_eq!(created["session"]["device"]["ip"], "10.0.0.7");
    assert_eq!(created["session"]["device"]["user_agent"], "ua/1");
    assert_eq!(created["session"]["origin"], "web");
    let again = cli.app(true, &args)?.expect(0)?.json()?;
    assert_eq!(again["session"]["session_id"], second.as_str());
    // The replay hands out a fresh token (the first one keeps working).
    assert_ne!(again["token"], created["token"]);
    let second_token = again["token"].as_str().context("token")?.to_owned();

    // get.
    let r = cli.app(false, &["sessions", "get", &first])?.expect(0)?;
    assert_eq!(first_cell(&r.out)?, first);
    assert!(r.out.contains("laptop"), "{}", r.out);
    let v = cli
        .app(true, &["sessions", "get", &second])?
        .expect(0)?
        .json()?;
    assert_eq!(v["session_id"], second.as_str());
    assert_eq!(v["state"], "active");
    let missing = "s_00000000000000000000000000000000";
    let r = cli.app(false, &["sessions", "get", missing])?.expect(1)?;
    assert!(r.err.contains("sessions get"), "{}", r.err);

    // validate: linearizable with touch, then local without touch (bounded wait for the
    // replica the first endpoint holds).
    let r = cli
        .app(false, &["sessions", "validate", &token])?
        .expect(0)?;
    assert!(r.out.starts_with("valid\n"), "{}", r.out);
    assert!(r.out.contains("seconds until idle end:"), "{}", r.out);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = cli.app(
            true,
            &[
                "sessions",
                "validate",
                &second_token,
                "--no-touch",
                "--local",
            ],
        )?;
        if r.code == 0 {
            let v = r.json()?;
            assert_eq!(v["valid"], true);
            assert_eq!(v["session"]["session_id"], second.as_str());
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "local validate: {} {}",
            r.out,
            r.err
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // touch.
    let r = cli.app(false, &["sessions", "touch", &first])?.expect(0)?;
    assert!(r.out.contains("seconds until session end:"), "{}", r.out);
    let v = cli
        .app(true, &["sessions", "touch", &second])?
        .expect(0)?
        .json()?;
    assert!(v["seconds_until_idle_end"].as_u64().is_some(), "{v}");

    // list: both sessions, newest first.
    let r = cli
        .app(false, &["sessions", "list", "--user", "alice"])?
        .expect(0)?;
    assert_eq!(r.out.lines().count(), 3, "{}", r.out);
    assert!(
        r.out.contains(&first) && r.out.contains(&second),
        "{}",
        r.out
    );
    let lines = cli
        .app(true, &["sessions", "list", "--user", "alice"])?
        .expect(0)?
        .json_lines()?;
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["session_id"], second.as_str());

    // users active (admin): the server's idle wording.
    let r = cli.admin(false, &["users", "active"])?.expect(0)?;
    assert_eq!(headers(&r.out), ["USER", "SESSIONS", "LAST SEEN", "IDLE"]);
    let mut rows = r.out.lines().skip(1);
    let alice = rows
        .find(|l| l.starts_with("alice "))
        .context("no alice row")?;
    assert!(
        alice.contains("  2  ") && alice.ends_with(" sec"),
        "{alice}"
    );
    let users = cli
        .admin(true, &["users", "active"])?
        .expect(0)?
        .json_lines()?;
    let alice = users
        .iter()
        .find(|u| u["user_id"] == "alice")
        .context("alice")?;
    assert_eq!(alice["sessions"], 2);
    assert!(alice["idle"].as_str().context("idle")?.ends_with("sec"));
    // An app key may not list users: 403 is a failure, not unavailability.
    cli.app(false, &["users", "active"])?.expect(1)?;

    // verify: keep the first, the second ends superseded; targets are reported.
    let r = cli
        .app(
            false,
            &["sessions", "verify", "--user", "alice", "--session", &first],
        )?
        .expect(0)?;
    assert_eq!(
        r.out,
        format!("verified {first}; ended 1 other session(s)\n")
    );
    let v = cli
        .app(
            true,
            &[
                "sessions",
                "verify",
                "--user",
                "alice",
                "--targets",
                "eu,us",
            ],
        )?
        .expect(0)?
        .json()?;
    assert_eq!(v["verified"], first.as_str());
    assert_eq!(v["ended"], 0);
    assert_eq!(v["fanout"]["eu"], "unknown_site");
    assert_eq!(v["fanout"]["us"], "unknown_site");
    let v = cli
        .app(true, &["sessions", "get", &second])?
        .expect(0)?
        .json()?;
    assert_eq!(v["end_reason"], "superseded");

    // validate an ended session: the answer, and exit 1.
    let r = cli
        .app(false, &["sessions", "validate", &second_token])?
        .expect(1)?;
    assert_eq!(r.out, "not valid: superseded\n");
    let v = cli
        .app(true, &["sessions", "validate", &second_token])?
        .expect(1)?
        .json()?;
    assert_eq!(v["valid"], false);

    // invalidate: one session, then all of a user's, with targets.
    let bob = cli
        .app(true, &["sessions", "create", "--user", "bob"])?
        .expect(0)?
        .json()?;
    let bob_id = bob["session"]["session_id"]
        .as_str()
        .context("id")?
        .to_owned();
    cli.app(true, &["sessions", "create", "--user", "bob"])?
        .expect(0)?;
    let v = cli
        .app(
            true,
            &[
                "sessions",
                "invalidate",
                "--user",
                "bob",
                "--session",
                &bob_id,
            ],
        )?
        .expect(0)?
        .json()?;
    assert_eq!(v["ended"], 1);
    let r = cli
        .app(
            false,
            &["sessions", "invalidate", "--user", "bob", "--targets", "eu"],
        )?
        .expect(0)?;
    assert_eq!(
        r.out,
        "ended 1 session(s)\nTARGET  FANOUT\neu      unknown_site\n"
    );

    // end: twice (idempotent), table then json.
    let r = cli.app(false, &["sessions", "end", &first])?.expect(0)?;
    assert!(r.out.contains("ended  logout"), "{}", r.out);
    let v = cli
        .app(true, &["sessions", "end", &first])?
        .expect(0)?
        .json()?;
    assert_eq!(v["state"], "ended");
    let all = cli
        .app(true, &["sessions", "list", "--user", "alice", "--all"])?
        .expect(0)?
        .json_lines()?;
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|s| s["state"] == "ended"));
    let r = cli
        .app(false, &["sessions", "list", "--user", "alice"])?
        .expect(0)?;
    assert_eq!(r.out.lines().count(), 1, "only the header: {}", r.out);

    // audit (admin): filters by user, kind, limit and time.
    let r = cli
        .admin(false, &["audit", "list", "--user", "alice"])?
        .expect(0)?;
    assert!(r.out.starts_with("SEQ  AT"), "{}", r.out);
    assert!(r.out.contains("session_created"), "{}", r.out);
    assert!(r.out.contains("verify"), "{}", r.out);
    let events = cli
        .admin(
            true,
            &[
                "audit",
                "list",
                "--user",
                "bob",
                "--kind",
                "session_created",
                "--limit",
                "1",
            ],
        )?
        .expect(0)?
        .json_lines()?;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["kind"], "session_created");
    assert_eq!(events[0]["user_id"], "bob");
    let later = cli
        .admin(true, &["audit", "list", "--since", "2999-01-01T00:00:00Z"])?
        .expect(0)?;
    assert_eq!(later.out, "");
    cli.admin(false, &["audit", "list", "--since", "yesterday"])?
        .expect(2)?;

    // Usage errors are 2.
    cli.app(false, &["sessions", "create"])?.expect(2)?;
    cli.app(false, &["sessions", "get", "not/an/id"])?
        .expect(2)?;
    cluster.check_no_crashes()
}

#[tokio::test(flavor = "multi_thread")]
async fn key_file_and_flags_reach_the_cluster() -> anyhow::Result<()> {
    let cluster = TestCluster::start(ClusterOptions::default()).await?;
    let dir = tempfile::tempdir()?;
    let key_file = dir.path().join("admin.key");
    std::fs::write(&key_file, format!("{}\n", cluster.admin_key()))?;
    let endpoints = cluster.urls().join(",");
    let r = ctl(
        &[],
        &[
            "--endpoints",
            &endpoints,
            "--api-key-file",
            key_file.to_str().context("path")?,
            "users",
            "active",
        ],
    )?
    .expect(0)?;
    assert!(r.out.starts_with("USER"), "{}", r.out);
    // A wrong key given with --api-key is refused: exit 1.
    ctl(
        &[],
        &[
            "--endpoints",
            &endpoints,
            "--api-key",
            "wrong",
            "users",
            "active",
        ],
    )?
    .expect(1)?;
    cluster.check_no_crashes()
}

/// `sessyncctl policy set` changes the keys given on every node, keeps the others, is refused
/// to an app key and for a value the node refuses, and `policy show` shows what is in force.
#[tokio::test(flavor = "multi_thread")]
async fn policy_set_changes_the_replicated_policy() -> anyhow::Result<()> {
    let cluster = TestCluster::start(ClusterOptions::default()).await?;
    let cli = Cli::new(&cluster);
    let set = cli
        .admin(
            true,
            &[
                "policy",
                "set",
                "--idle-timeout",
                "30m",
                "--max-concurrent-sessions",
                "5",
            ],
        )?
        .expect(0)?
        .json()?;
    assert_eq!(set["idle_timeout"], "30m", "{set}");
    assert_eq!(set["max_concurrent_sessions"], 5, "{set}");
    assert_eq!(
        set["max_lifetime"], "8h",
        "the other keys keep theirs: {set}"
    );
    // Every node enforces it (reads are linearizable on any node).
    for id in cluster.node_ids() {
        let config = cluster.admin_client_for(id).config().await?;
        let policy = config.policy.context("a replicated policy")?;
        assert_eq!(policy.max_concurrent_sessions, 5, "node {id}");
        assert_eq!(
            policy.idle_timeout,
            Duration::from_secs(30 * 60),
            "node {id}"
        );
    }
    let shown = cli.admin(false, &["policy", "show"])?.expect(0)?;
    assert!(shown.out.contains("30m"), "{}", shown.out);
    // An app key may not change it; a value the node refuses is named.
    cli.app(false, &["policy", "set", "--idle-timeout", "1h"])?
        .expect(1)?;
    let bad = cli
        .admin(false, &["policy", "set", "--touch-interval", "2h"])?
        .expect(1)?;
    assert!(bad.err.contains("touch_interval"), "{}", bad.err);
    cluster.check_no_crashes()
}

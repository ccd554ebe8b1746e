//! The real `sessyncctl` binary without a cluster: `config check` on the example and on a
//! broken file, `keys new` in both output modes, and exit code 3 when no endpoint answers.

use std::path::PathBuf;

use anyhow::Context;

use crate::ctl::ctl;

#[test]
fn closed_port_is_unavailable() -> anyhow::Result<()> {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let url = format!("http://127.0.0.1:{port}");
    for (json, args) in [
        (false, vec!["sessions", "list", "--user", "alice"]),
        (true, vec!["users", "active"]),
        (false, vec!["audit", "list"]),
    ] {
        let mut all = vec!["--endpoints", &url, "--api-key", "k", "--timeout", "2s"];
        all.extend(["--output", if json { "json" } else { "table" }]);
        all.extend(args);
        let r = ctl(&[], &all)?.expect(3)?;
        assert!(r.out.is_empty(), "{}", r.out);
        assert!(r.err.starts_with("error: "), "{}", r.err);
    }
    Ok(())
}

#[test]
fn config_check_offline() -> anyhow::Result<()> {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../cluster-config/examples/local-3/node-1.toml");
    let example = example.to_str().context("path")?;
    let r = ctl(&[], &["config", "check", example])?.expect(0)?;
    assert_eq!(r.out, "ok\n");
    let r = ctl(&[], &["--output", "json", "config", "check", example])?.expect(0)?;
    assert_eq!(r.json()?["ok"], true);

    let dir = tempfile::tempdir()?;
    let broken = dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        "node_id = \"one\"\nsite = \"test\"\n[policy]\nidle_timeout = \"soon\"\n",
    )?;
    let broken = broken.to_str().context("path")?;
    let r = ctl(&[], &["config", "check", broken])?.expect(1)?;
    assert!(
        r.out.lines().any(|l| l.starts_with("node_id: ")),
        "{}",
        r.out
    );
    assert!(
        r.out
            .lines()
            .any(|l| l.starts_with("policy.idle_timeout: ")),
        "{}",
        r.out
    );
    assert!(
        r.out.lines().any(|l| l.starts_with("listen: ")),
        "{}",
        r.out
    );
    assert!(!r.out.contains("ok\n"), "{}", r.out);
    let problems = ctl(&[], &["--output", "json", "config", "check", broken])?
        .expect(1)?
        .json_lines()?;
    let keys: Vec<&str> = problems.iter().filter_map(|p| p["key"].as_str()).collect();
    assert!(keys.contains(&"node_id"), "{keys:?}");
    assert!(keys.contains(&"policy.idle_timeout"), "{keys:?}");
    ctl(&[], &["config", "check"])?.expect(2)?;
    Ok(())
}

#[test]
fn keys_new_prints_a_key_and_its_config_block() -> anyhow::Result<()> {
    let r = ctl(&[], &["keys", "new", "--role", "admin", "--name", "ops"])?.expect(0)?;
    let key = r
        .out
        .lines()
        .find_map(|l| l.strip_prefix("key: "))
        .context("no key line")?;
    assert_eq!(key.len(), 64, "{key}");
    let hash = hex::encode(sessync_config::hash_api_key(key));
    let block = format!("[[api_keys]]\nname = \"ops\"\nsha256 = \"{hash}\"\nrole = \"admin\"\n");
    assert!(r.out.ends_with(&block), "{}", r.out);

    let v = ctl(&[], &["--output", "json", "keys", "new", "--role", "app"])?
        .expect(0)?
        .json()?;
    let key = v["key"].as_str().context("key")?;
    assert_eq!(v["sha256"], hex::encode(sessync_config::hash_api_key(key)));
    assert_eq!(v["role"], "app");
    let parsed: toml::Value = toml::from_str(v["toml"].as_str().context("toml")?)?;
    assert_eq!(parsed["api_keys"][0]["role"].as_str(), Some("app"));
    ctl(&[], &["keys", "new", "--role", "root"])?.expect(2)?;
    Ok(())
}

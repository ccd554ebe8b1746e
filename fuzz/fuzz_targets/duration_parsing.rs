//! Fuzz target `duration_parsing`: the durations and times sessync reads from text, the way
//! each reader takes them:
//! - the policy's durations in JSON (`sessync_proto::policy::humantime_serde_compat`, and the
//!   optional ones of `PolicyUpdate`), which are also how the policy is written in the Raft log;
//! - a config key's duration (`[policy] retention = "..."` through `NodeConfig::from_toml_str`,
//!   which trims, parses with humantime and bounds it to 100 years);
//! - cluster time in RFC 3339 (`Timestamp`, as in query parameters such as `since`), and the
//!   arithmetic and renderings done with a duration (`Timestamp::plus`, `human_idle`).
//!
//! Besides "never panics", it checks: the JSON reader and humantime agree; a duration written
//! by the node (humantime's format) reads back as the same duration; the config accepts exactly
//! the durations humantime reads (trimmed) up to its bound; a time written in RFC 3339 reads
//! back as the same millisecond.

#![no_main]

use std::path::Path;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};
use sessync_config::{NodeConfig, CLUSTER_SECRET_VAR};
use sessync_proto::policy::{humantime_serde_compat, MAX_POLICY_DURATION};
use sessync_proto::time::{human_idle, Timestamp};
use sessync_proto::PolicyUpdate;

/// A duration as the policy writes it in JSON.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Written {
    #[serde(with = "humantime_serde_compat")]
    d: Duration,
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push('\t'),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `[policy] retention` a config with `retention = s` loads with, or `None` if it refuses.
fn config_retention(s: &str) -> Option<Duration> {
    let text = format!(
        "node_id = 1\nsite = \"site-a\"\nlisten = \"127.0.0.1:7000\"\n\
         data_dir = \"/nonexistent/sessync-fuzz/data\"\n[policy]\nretention = {}\n",
        toml_string(s)
    );
    let env = [(
        CLUSTER_SECRET_VAR.to_owned(),
        "fuzz-cluster-secret-0123456789abcdef".to_owned(),
    )];
    match NodeConfig::from_toml_str(&text, Path::new("/nonexistent"), &env) {
        Ok(c) => Some(c.policy.retention),
        Err(e) => {
            assert_eq!(e.key(), Some("policy.retention"), "{text:?}: {e}");
            None
        }
    }
}

fuzz_target!(|s: &str| {
    let parsed = humantime::parse_duration(s).ok();
    let json = serde_json::json!({ "d": s });
    let read = serde_json::from_value::<Written>(json.clone())
        .ok()
        .map(|w| w.d);
    assert_eq!(read, parsed, "the JSON reader and humantime disagree");
    let update = serde_json::json!({ "idle_timeout": s });
    let update = serde_json::from_value::<PolicyUpdate>(update).ok();
    assert_eq!(update.map(|u| u.idle_timeout), parsed.map(Some));

    if let Some(d) = parsed {
        let written = serde_json::to_value(Written { d }).expect("a duration is written");
        let again: Written = serde_json::from_value(written.clone())
            .unwrap_or_else(|e| panic!("{d:?} written as {written} does not read back: {e}"));
        assert_eq!(
            again.d, d,
            "{d:?} written as {written} reads back different"
        );
        let t = Timestamp(1_800_000_000_000);
        let _ = (t.plus(d), t.minus(d), t.plus(d).since(t), human_idle(d));
    }

    let trimmed = humantime::parse_duration(s.trim()).ok();
    let want = trimmed.filter(|d| *d <= MAX_POLICY_DURATION);
    assert_eq!(
        config_retention(s),
        want,
        "the config and humantime disagree"
    );

    if let Ok(t) = Timestamp::parse_rfc3339(s) {
        let shown = t.to_rfc3339();
        if t.0 <= Timestamp::MAX_RFC3339 {
            let again = Timestamp::parse_rfc3339(&shown)
                .unwrap_or_else(|e| panic!("{t:?} shown as {shown} does not read back: {e}"));
            assert_eq!(again, t, "{s:?} shown as {shown}");
        }
        let _ = (t.to_string(), serde_json::to_string(&t));
    }
});

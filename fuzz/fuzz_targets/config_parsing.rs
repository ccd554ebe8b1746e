//! Fuzz target `config_parsing`: a node's config text, read by
//! `sessync_config::NodeConfig::from_toml_str` (the path `NodeConfig::load` takes after reading
//! the file: TOML, `SESSYNC_*` overrides, every key read and checked), with the cluster secret
//! given as `SESSYNC_CLUSTER_SECRET` so that a config can pass without any file.
//!
//! The input is the TOML text, then optionally a NUL byte and more `NAME=value` lines of
//! environment. Besides "never panics", it checks that a config that loads holds a policy
//! `Policy::check` accepts (the file is held to the API's rules).
//!
//! The config reads the files it names (secrets, TLS PEM files). An input naming an existing
//! file that is not a small regular one (`/dev/zero`, a FIFO, a directory's huge neighbour) is
//! skipped: reading an endless device is not a parsing defect, and it would hang the run.
//! Relative paths resolve against a directory that does not exist.

#![no_main]

use std::path::Path;

use figment::providers::{Format, Toml};
use figment::value::{Dict, Value};
use figment::Figment;
use libfuzzer_sys::fuzz_target;
use sessync_config::{NodeConfig, CLUSTER_SECRET_VAR};

/// Where relative paths in the text start from: absent, so they name no file.
const BASE_DIR: &str = "/nonexistent/sessync-fuzz";

/// Largest file an input may name: secrets and PEM files are far smaller.
const MAX_NAMED_FILE: u64 = 64 * 1024;

/// Whether `s`, taken as a path the way the config takes it (from the file: against
/// [`BASE_DIR`]; from the environment: as it is), names something unsafe to read.
fn names_unsafe_file(s: &str) -> bool {
    [Path::new(BASE_DIR).join(s), Path::new(s).to_path_buf()]
        .iter()
        .any(|path| match std::fs::metadata(path) {
            Ok(m) => !m.is_file() || m.len() > MAX_NAMED_FILE,
            Err(_) => false,
        })
}

fn any_unsafe_file(v: &Value) -> bool {
    match v {
        Value::String(_, s) => names_unsafe_file(s),
        Value::Array(_, a) => a.iter().any(any_unsafe_file),
        Value::Dict(_, d) => d.values().any(any_unsafe_file),
        _ => false,
    }
}

fuzz_target!(|bytes: &[u8]| {
    let (text, env_text) = match bytes.iter().position(|b| *b == 0) {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (bytes, &[][..]),
    };
    let (Ok(text), Ok(env_text)) = (std::str::from_utf8(text), std::str::from_utf8(env_text))
    else {
        return;
    };
    let mut env = vec![(
        CLUSTER_SECRET_VAR.to_owned(),
        "fuzz-cluster-secret-0123456789abcdef".to_owned(),
    )];
    env.extend(
        env_text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    if env.iter().any(|(_, v)| names_unsafe_file(v)) {
        return;
    }
    if let Ok(dict) = Figment::from(Toml::string(text)).extract::<Dict>() {
        if dict.values().any(any_unsafe_file) {
            return;
        }
    }
    match NodeConfig::from_toml_str(text, Path::new(BASE_DIR), &env) {
        Ok(config) => {
            if let Err(e) = config.policy.check() {
                panic!("the config loads, but its policy fails the API's check: {e}");
            }
            let _ = format!("{config:?}");
        }
        Err(e) => {
            let _ = (e.to_string(), e.key().map(str::to_owned));
        }
    }
});

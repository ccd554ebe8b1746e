//! Environment overrides: `SESSYNC_<SECTION>_<KEY>` overrides `[section] key` and
//! `SESSYNC_<KEY>` a top-level key; `SESSYNC_CLUSTER_SECRET` gives the cluster secret itself.
//!
//! Only the names listed in [`ENV_KEYS`] are taken. A variable for one of the arrays of tables
//! (`SESSYNC_FEDERATION_PEERS`, `SESSYNC_API_KEYS`, or one under them such as
//! `SESSYNC_FEDERATION_PEERS_0_URLS`) is refused: the load fails, naming the key and the
//! variable and saying these are set in the config file only, since a node that silently
//! ignored it would run without the peers or keys its operator meant to give. Every other
//! variable, `SESSYNC_*` ones of the CLI (`SESSYNC_ENDPOINTS`, `SESSYNC_API_KEY`) included, is
//! ignored, and [`unknown_vars`] names the `SESSYNC_*` ones so a node can report them. The
//! process environment is
//! read through figment's `Env` provider with a `filter_map` over those names; an explicit list
//! (for tests, or a caller that has its own environment) goes through the same mapping. Values
//! stay strings here; the reader converts them (`"30s"`, `"true"`, `"3"`) like file values.

use std::collections::BTreeMap;

use figment::providers::Env;
use figment::value::{Dict, Map, Value};
use figment::{Error, Metadata, Profile, Provider};

/// The keys an environment variable may override, dotted as in the file. Arrays (`api_keys`,
/// `federation.peers`) are not overridable: a peer is configured in the file.
pub const ENV_KEYS: &[&str] = &[
    "node_id",
    "site",
    "listen",
    "advertise_url",
    "data_dir",
    "cluster_secret_file",
    "token_secret_file",
    "policy.idle_timeout",
    "policy.max_lifetime",
    "policy.max_concurrent_sessions",
    "policy.on_limit",
    "policy.max_clock_skew",
    "policy.touch_interval",
    "policy.retention",
    "policy.audit_retention",
    "policy.max_blocked_sessions",
    "policy.audit_max_events",
    "policy.audit_max_bytes",
    "policy.idempotency_window",
    "raft.heartbeat_interval",
    "raft.election_timeout_min",
    "raft.election_timeout_max",
    "raft.snapshot_after_logs",
    "raft.max_logs_kept_after_snapshot",
    "raft.install_snapshot_timeout",
    "limits.request_timeout",
    "limits.max_body_bytes",
    "limits.header_timeout",
    "limits.body_timeout",
    "limits.idle_timeout",
    "limits.max_connections",
    "limits.max_connections_per_source",
    "limits.max_concurrent_requests",
    "limits.max_event_streams",
    "limits.max_event_streams_per_key",
    "limits.failure_report_interval",
    "allow_plaintext",
    "tls.cert_file",
    "tls.key_file",
    "tls.client_ca_file",
    "tls.ca_file",
    "federation.timestamp_window",
    "federation.outbox_limit",
    "federation.retry_initial",
    "federation.retry_max",
    "federation.send_timeout",
    "federation.outbox_max_age",
    "federation.max_received_per_peer",
    "metrics.open",
    "log.level",
    "log.format",
    "bootstrap.expect",
    "bootstrap.dns",
    "bootstrap.node_id_from_hostname",
];

/// The arrays of tables, which only the config file sets ([`FILE_ONLY_REASON`]).
const FILE_ONLY_KEYS: &[&str] = &["federation.peers", "api_keys"];

/// Why a variable for one of [`FILE_ONLY_KEYS`] is refused.
pub const FILE_ONLY_REASON: &str =
    "arrays of tables such as federation peers can only be set in the config file";

/// The variable that holds the cluster secret itself; it takes precedence over
/// `cluster_secret_file`.
pub const CLUSTER_SECRET_VAR: &str = "SESSYNC_CLUSTER_SECRET";

/// The variable that held the token secret itself in earlier versions: accepted and ignored
/// (tokens are random now; see [`crate::NodeConfig::deprecated`]).
pub const TOKEN_SECRET_VAR: &str = "SESSYNC_TOKEN_SECRET";

/// The variable `bootstrap.node_id_from_hostname` reads the host name from first (the system's
/// host name when it is unset).
pub const HOSTNAME_VAR: &str = "HOSTNAME";

/// The variable that overrides `key`: `policy.idle_timeout` → `SESSYNC_POLICY_IDLE_TIMEOUT`.
pub fn env_var_name(key: &str) -> String {
    format!("SESSYNC_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// The `SESSYNC_*` names among `names` that a node does not read (not an override of
/// [`ENV_KEYS`], nor [`CLUSTER_SECRET_VAR`]): a misspelt override, or a variable meant for another
/// program (`sessyncctl`'s `SESSYNC_ENDPOINTS`). A node reports them at start and ignores them.
pub fn unknown_vars<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    names
        .into_iter()
        .filter(|n| n.to_ascii_uppercase().starts_with("SESSYNC_"))
        .filter(|n| {
            key_for_var(n).is_none()
                && file_only_key_for_var(n).is_none()
                && !n.trim().eq_ignore_ascii_case(CLUSTER_SECRET_VAR)
                && !n.trim().eq_ignore_ascii_case(TOKEN_SECRET_VAR)
        })
        .map(str::to_owned)
        .collect()
}

/// [`unknown_vars`] of the process environment.
pub fn unknown_process_vars() -> Vec<String> {
    let names: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .collect();
    unknown_vars(names.iter().map(String::as_str))
}

/// The key a variable overrides, if it is one of ours (names compare case-insensitively).
fn key_for_var(var: &str) -> Option<&'static str> {
    ENV_KEYS
        .iter()
        .copied()
        .find(|key| env_var_name(key).eq_ignore_ascii_case(var.trim()))
}

/// The array of tables a variable would set (`SESSYNC_FEDERATION_PEERS`, or one under it such
/// as `SESSYNC_FEDERATION_PEERS_0_URLS`), if it is one of those.
fn file_only_key_for_var(var: &str) -> Option<&'static str> {
    let var = var.trim().to_ascii_uppercase();
    FILE_ONLY_KEYS.iter().copied().find(|key| {
        let name = env_var_name(key);
        var.strip_prefix(&name)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('_'))
    })
}

/// The overrides found in an environment. No `Debug`: it holds the cluster secret.
#[derive(Clone, Default)]
pub(crate) struct Overrides {
    /// Overridden key → (variable name, value).
    values: BTreeMap<&'static str, (String, String)>,
    /// Arrays of tables a variable tried to set → that variable: refused at load.
    refused: BTreeMap<&'static str, String>,
    /// `SESSYNC_CLUSTER_SECRET`, if set. Never printed.
    cluster_secret: Option<String>,
    /// `SESSYNC_TOKEN_SECRET`, if set (only whether it is, is used). Never printed.
    token_secret: Option<String>,
    /// `HOSTNAME`, if set.
    hostname: Option<String>,
}

impl Overrides {
    /// Reads the process environment through figment's `Env` provider.
    pub(crate) fn from_process() -> Self {
        let env = Env::raw().filter_map(|var| key_for_var(var.as_str()).map(Into::into));
        let mut values = BTreeMap::new();
        for (key, value) in env.iter() {
            if let Some(key) = ENV_KEYS.iter().copied().find(|k| *k == key.as_str()) {
                values.insert(key, (env_var_name(key), value));
            }
        }
        let cluster_secret = std::env::var(CLUSTER_SECRET_VAR).ok();
        let token_secret = std::env::var(TOKEN_SECRET_VAR).ok();
        let hostname = std::env::var(HOSTNAME_VAR).ok();
        let mut refused = BTreeMap::new();
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            refuse(&mut refused, &name);
        }
        Overrides {
            values,
            refused,
            cluster_secret,
            token_secret,
            hostname,
        }
    }

    /// Takes the overrides from an explicit list of `(name, value)` pairs; later pairs win.
    pub(crate) fn from_pairs(env: &[(String, String)]) -> Self {
        let mut values = BTreeMap::new();
        let mut refused = BTreeMap::new();
        let mut cluster_secret = None;
        let mut token_secret = None;
        let mut hostname = None;
        for (var, value) in env {
            refuse(&mut refused, var);
            if var.trim() == HOSTNAME_VAR {
                hostname = Some(value.clone());
            } else if var.trim().eq_ignore_ascii_case(CLUSTER_SECRET_VAR) {
                cluster_secret = Some(value.clone());
            } else if var.trim().eq_ignore_ascii_case(TOKEN_SECRET_VAR) {
                token_secret = Some(value.clone());
            } else if let Some(key) = key_for_var(var) {
                values.insert(key, (var.trim().to_owned(), value.clone()));
            }
        }
        Overrides {
            values,
            refused,
            cluster_secret,
            token_secret,
            hostname,
        }
    }

    /// The host name: `HOSTNAME` if set and not empty, else the system's (Linux:
    /// `/proc/sys/kernel/hostname`, what gethostname(2) returns).
    pub(crate) fn hostname(&self) -> Option<String> {
        self.hostname
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|h| h.trim().to_owned())
                    .filter(|h| !h.is_empty())
            })
    }

    /// The variable that set `key` (or tried to, for an array of tables), if one did.
    pub(crate) fn var_for(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(|(var, _)| var.as_str())
            .or_else(|| self.refused.get(key).map(String::as_str))
    }

    /// The value of `SESSYNC_CLUSTER_SECRET`, if set.
    pub(crate) fn cluster_secret(&self) -> Option<&str> {
        self.cluster_secret.as_deref()
    }

    /// The value of `SESSYNC_TOKEN_SECRET`, if set.
    pub(crate) fn token_secret(&self) -> Option<&str> {
        self.token_secret.as_deref()
    }
}

/// The overrides as a figment provider, merged over the file.
impl Provider for Overrides {
    fn metadata(&self) -> Metadata {
        Metadata::named("SESSYNC_* environment variable(s)")
    }

    /// The overridden values; and in place of an array of tables a variable tried to set, a
    /// string saying why it was refused, which the reader then refuses as not an array of
    /// tables, naming the key and (through [`Overrides::var_for`]) the variable.
    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let mut dict = Dict::new();
        let refused = self
            .refused
            .keys()
            .map(|key| (*key, format!("a variable: {FILE_ONLY_REASON}")));
        let values = self
            .values
            .iter()
            .map(|(key, (_, value))| (*key, value.trim().to_owned()));
        for (key, value) in values.chain(refused) {
            if let Value::Dict(_, nested) = figment::util::nest(key, Value::from(value)) {
                dict = merge(dict, nested);
            }
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// Records `var` in `refused` if it would set an array of tables (the first such variable
/// per key is named).
fn refuse(refused: &mut BTreeMap<&'static str, String>, var: &str) {
    if let Some(key) = file_only_key_for_var(var) {
        refused.entry(key).or_insert_with(|| var.trim().to_owned());
    }
}

/// Merges two nested dicts, `b` winning on leaves.
fn merge(mut a: Dict, b: Dict) -> Dict {
    for (k, v) in b {
        let merged = match (a.remove(&k), v) {
            (Some(Value::Dict(_, old)), Value::Dict(tag, new)) => Value::Dict(tag, merge(old, new)),
            (_, v) => v,
        };
        a.insert(k, merged);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn names_map_both_ways_and_are_unambiguous() {
        assert_eq!(
            env_var_name("policy.idle_timeout"),
            "SESSYNC_POLICY_IDLE_TIMEOUT"
        );
        assert_eq!(env_var_name("node_id"), "SESSYNC_NODE_ID");
        for key in ENV_KEYS {
            assert_eq!(key_for_var(&env_var_name(key)), Some(*key));
        }
        let mut names: Vec<_> = ENV_KEYS.iter().map(|k| env_var_name(k)).collect();
        names.push(CLUSTER_SECRET_VAR.to_owned());
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count, "two keys share a variable name");
    }

    #[test]
    fn unrelated_variables_are_ignored() {
        let o = Overrides::from_pairs(&pairs(&[
            ("SESSYNC_ENDPOINTS", "http://a,http://b"),
            ("SESSYNC_API_KEY", "k"),
            ("PATH", "/bin"),
            ("SESSYNC_POLICY_IDLE_TIMEOUT", "30s"),
        ]));
        assert_eq!(o.values.len(), 1);
        assert_eq!(
            o.var_for("policy.idle_timeout"),
            Some("SESSYNC_POLICY_IDLE_TIMEOUT")
        );
        let data = o.data().unwrap();
        let dict = &data[&Profile::Default];
        assert_eq!(
            dict["policy"]
                .find_ref("idle_timeout")
                .and_then(Value::as_str),
            Some("30s")
        );
    }

    #[test]
    fn sections_merge() {
        let o = Overrides::from_pairs(&pairs(&[
            ("SESSYNC_RAFT_HEARTBEAT_INTERVAL", "100ms"),
            ("SESSYNC_RAFT_SNAPSHOT_AFTER_LOGS", "10"),
            ("SESSYNC_CLUSTER_SECRET", "s3cr3t-s3cr3t-s3cr3t"),
        ]));
        let data = o.data().unwrap();
        let raft = &data[&Profile::Default]["raft"];
        assert!(raft.find_ref("heartbeat_interval").is_some());
        assert!(raft.find_ref("snapshot_after_logs").is_some());
        assert_eq!(o.cluster_secret(), Some("s3cr3t-s3cr3t-s3cr3t"));
    }
}

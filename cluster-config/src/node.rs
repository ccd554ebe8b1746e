//! Loading a node's config: the entry points on [`NodeConfig`] (`load`, `check`, …) and the
//! top-level keys. The file and the `SESSYNC_*` overrides are merged with figment, then the
//! tree is read key by key so that every problem is found, not just the first.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml};
use figment::value::Dict;
use figment::Figment;

use crate::env::{Overrides, CLUSTER_SECRET_VAR, TOKEN_SECRET_VAR};
use crate::error::{ConfigError, Problem};
use crate::model::{BootstrapMembers, NodeConfig};
use crate::reader::{Ctx, Read, Table};
use crate::secret::{secret_from_value, Secret};
use crate::{api_keys, bootstrap, federation, sections, tls, validate};

impl NodeConfig {
    /// Loads the config file at `path` under the process environment's `SESSYNC_*` overrides.
    /// Relative paths in the file are resolved against the file's directory.
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        load_file(path, Overrides::from_process())
    }

    /// Like [`NodeConfig::load`], with the environment given as `(name, value)` pairs instead
    /// of read from the process.
    pub fn load_with_env(path: &Path, env: &[(String, String)]) -> Result<NodeConfig, ConfigError> {
        load_file(path, Overrides::from_pairs(env))
    }

    /// Every problem with the config file at `path` (unknown keys, bad values, missing or
    /// short secrets, …) under the process environment; empty when `load` would succeed.
    pub fn check(path: &Path) -> Vec<Problem> {
        check_file(path, Overrides::from_process())
    }

    /// Like [`NodeConfig::check`], with the environment given explicitly (pass `&[]` to check
    /// the file alone).
    pub fn check_with_env(path: &Path, env: &[(String, String)]) -> Vec<Problem> {
        check_file(path, Overrides::from_pairs(env))
    }

    /// Parses config text; relative paths in it are resolved against `base_dir`.
    pub fn from_toml_str(
        toml: &str,
        base_dir: &Path,
        env: &[(String, String)],
    ) -> Result<NodeConfig, ConfigError> {
        first(build(
            toml,
            "config text",
            base_dir,
            Overrides::from_pairs(env),
        ))
    }
}

fn load_file(path: &Path, env: Overrides) -> Result<NodeConfig, ConfigError> {
    let text = read_config(path)?;
    first(build(
        &text,
        &path.display().to_string(),
        &base_dir(path),
        env,
    ))
}

fn check_file(path: &Path, env: Overrides) -> Vec<Problem> {
    let result = read_config(path)
        .map_err(|e| vec![e])
        .and_then(|text| build(&text, &path.display().to_string(), &base_dir(path), env));
    match result {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(Problem::from).collect(),
    }
}

fn first(result: Result<NodeConfig, Vec<ConfigError>>) -> Result<NodeConfig, ConfigError> {
    result.map_err(|problems| {
        problems
            .into_iter()
            .next()
            .unwrap_or_else(|| ConfigError::invalid("", "the config is incomplete (no detail)"))
    })
}

fn read_config(path: &Path) -> Result<String, ConfigError> {
    let read = |message: String| ConfigError::Read {
        path: path.to_owned(),
        message,
    };
    let bytes = crate::files::read_bounded(path, crate::files::MAX_CONFIG_BYTES).map_err(read)?;
    String::from_utf8(bytes).map_err(|_| read("not UTF-8 text".to_owned()))
}

/// The directory relative paths in the file at `path` start from.
fn base_dir(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Merges the text (from `origin`) and the overrides, then reads every key; all problems on
/// failure.
fn build(
    text: &str,
    origin: &str,
    base_dir: &Path,
    env: Overrides,
) -> Result<NodeConfig, Vec<ConfigError>> {
    let figment = Figment::from(Toml::string(text)).merge(env.clone());
    let dict: Dict = figment.extract().map_err(|e| {
        let message = e.to_string();
        let message = message.trim_end().trim_end_matches("in TOML source string");
        vec![ConfigError::Syntax {
            origin: origin.to_owned(),
            message: message.trim_end().to_owned(),
        }]
    })?;
    let ctx = Ctx::new(env, base_dir.to_owned());
    let config = top_level(Table::root(dict, &ctx));
    let problems = ctx.into_problems();
    match config {
        Some(config) if problems.is_empty() => Ok(config),
        _ => Err(problems),
    }
}

/// Reads the top-level keys, then each section, then reports keys nobody read.
fn top_level(mut t: Table<'_>) -> Option<NodeConfig> {
    let node_id = t.whole::<u64>("node_id");
    let boot = bootstrap::bootstrap(t.table("bootstrap"));
    let node_id = bootstrap::node_id(&t, node_id, boot.as_ref());
    let site = t.string("site").require(&t, "site");
    let site = t.validate("site", site, |s| validate::site_name(&s));
    let listen = t.string("listen").require(&t, "listen");
    let listen = t.validate("listen", listen, |l| validate::listen_addr(&l));
    let allow_plaintext = t.flag("allow_plaintext").or(false);
    let tls = tls::tls(t.table("tls"));
    let scheme = if matches!(tls, Some(Some(_))) {
        "https"
    } else {
        "http"
    };
    let advertise_url = advertise_url(&mut t, listen, scheme);
    let data_dir = t.file("data_dir").require(&t, "data_dir");
    let data_dir = t.validate("data_dir", data_dir, |d| {
        if d.exists() && !d.is_dir() {
            Err(format!("{} exists and is not a directory", d.display()))
        } else {
            Ok(d)
        }
    });
    let cluster_secret = cluster_secret(&mut t);
    let deprecated = deprecated(&mut t);

    let policy = sections::policy(t.table("policy"));
    let keys = t.tables("api_keys");
    let api_keys = api_keys::api_keys(keys);
    let federation = federation::federation(t.table("federation"), site.as_ref());
    let metrics = sections::metrics(t.table("metrics"));
    let raft = sections::raft(t.table("raft"));
    let limits = sections::limits(t.table("limits"));
    let log = sections::log(t.table("log"));
    if let (Some(listen), Some(tls), Some(allow_plaintext)) = (listen, &tls, allow_plaintext) {
        let mut urls: Vec<(String, &str)> = Vec::new();
        if let Some(url) = &advertise_url {
            urls.push(("advertise_url".to_owned(), url));
        }
        if let Some(Some(BootstrapMembers::Listed(members))) =
            boot.as_ref().map(|b| b.config.as_ref().map(|c| &c.members))
        {
            for (id, url) in members {
                urls.push((format!("bootstrap.members.{id}"), url));
            }
        }
        for (i, peer) in federation.iter().flat_map(|f| f.peers.iter()).enumerate() {
            for (j, url) in peer.urls.iter().enumerate() {
                urls.push((format!("federation.peers[{i}].urls[{j}]"), url));
            }
        }
        tls::check_links(&t, listen, tls.is_some(), allow_plaintext, &urls);
    }
    if let (Some(Some(b)), Some(id), Some(url)) = (
        boot.as_ref().map(|b| b.config.as_ref()),
        node_id,
        &advertise_url,
    ) {
        bootstrap::check_self(&t, b, id, url);
    }
    let ctx = t.ctx();
    t.finish();
    if ctx.has_problems() {
        return None;
    }
    Some(NodeConfig {
        node_id: node_id?,
        site: site?,
        listen: listen?,
        advertise_url: advertise_url?,
        data_dir: data_dir?,
        cluster_secret: cluster_secret?,
        deprecated,
        policy: policy?,
        api_keys: api_keys?,
        federation: federation?,
        metrics: metrics?,
        raft: raft?,
        limits: limits?,
        log: log?,
        tls: tls?,
        allow_plaintext: allow_plaintext?,
        bootstrap: boot?.config,
    })
}

/// `advertise_url`; when absent, `<scheme>://<listen>` unless `listen` is a wildcard address.
fn advertise_url(t: &mut Table<'_>, listen: Option<SocketAddr>, scheme: &str) -> Option<String> {
    match t.string("advertise_url") {
        Read::Got(url) => t.validate("advertise_url", Some(url), |u| validate::base_url(&u)),
        Read::Bad => None,
        Read::Missing => match listen {
            Some(addr) if addr.ip().is_unspecified() => {
                t.invalid(
                    "advertise_url",
                    format!("is required when listen ({addr}) is a wildcard address"),
                );
                None
            }
            Some(addr) => Some(format!("{scheme}://{addr}")),
            None => None,
        },
    }
}

/// The settings of earlier versions present that this one accepts and ignores, by name (never
/// a value): the token secret (`token_secret_file`, `SESSYNC_TOKEN_SECRET`), which idempotent
/// creates' tokens were derived with; every token is random now. Accepted, and its file not
/// read, so a config an earlier version took still starts a node.
fn deprecated(t: &mut Table<'_>) -> Vec<&'static str> {
    let mut found = Vec::new();
    if !t.string("token_secret_file").is_missing() {
        found.push("token_secret_file");
    }
    if t.ctx().env.token_secret().is_some() {
        found.push(TOKEN_SECRET_VAR);
    }
    found
}

/// The cluster secret: `SESSYNC_CLUSTER_SECRET` if set, else the content of
/// `cluster_secret_file`.
fn cluster_secret(t: &mut Table<'_>) -> Option<Secret> {
    let file = t.file("cluster_secret_file");
    if let Some(value) = t.ctx().env.cluster_secret() {
        return match secret_from_value(value) {
            Ok(secret) => Some(secret),
            Err(message) => {
                t.ctx().invalid(CLUSTER_SECRET_VAR, message);
                None
            }
        };
    }
    match file {
        Read::Got(path) => federation::secret(t, "cluster_secret_file", &path),
        Read::Missing => {
            t.invalid(
                "cluster_secret_file",
                format!("is required (or set {CLUSTER_SECRET_VAR} to the secret itself)"),
            );
            None
        }
        Read::Bad => None,
    }
}

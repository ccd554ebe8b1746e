//! Parses and validates a sessync node's TOML configuration (`shared/spec/api-v1.md`, "Running
//! a node").
//!
//! [`NodeConfig::load`] reads the file, applies `SESSYNC_*` environment overrides, reads the
//! secret files and checks every value; any problem stops it with a [`ConfigError`] naming the
//! key. [`NodeConfig::check`] returns every [`Problem`] at once, for `sessyncctl config check`.
//!
//! - [`model`]: the loaded config and its sections' structs and defaults.
//! - [`env`]: which environment variables override which keys.
//! - [`secret`]: the [`Secret`] type and how secret files are read.
//! - [`error`]: [`ConfigError`] and [`Problem`].
//! - `node` (entry points), `reader` and `convert` (walking the tree), `sections`, `api_keys`,
//!   `federation`, `bootstrap`, `validate`: reading and checking each part.
//!
//! `sessync.example.toml` next to this crate documents every key.

// A test reads best as one scenario, however long.
#![cfg_attr(test, allow(clippy::too_many_lines))]

mod api_keys;
mod bootstrap;
mod convert;
pub mod env;
pub mod error;
mod federation;
mod files;
pub mod model;
mod node;
mod reader;
pub mod secret;
mod sections;
mod tls;
mod validate;

pub use api_keys::hash_api_key;
pub use env::{
    env_var_name, unknown_process_vars, unknown_vars, CLUSTER_SECRET_VAR, ENV_KEYS,
    TOKEN_SECRET_VAR,
};
pub use error::{ConfigError, Problem};
pub use federation::MAX_RECEIVE_SECRETS;
pub use model::{
    ApiKey, BootstrapConfig, BootstrapMembers, FederationConfig, Limits, LogConfig, LogFormat,
    MetricsConfig, NodeConfig, PeerConfig, RaftTuning, TlsConfig,
};
pub use secret::{Secret, MIN_SECRET_BYTES};
pub use validate::MAX_KEY_NAME_BYTES;

//! What can be wrong with a config: [`ConfigError`] (what `load` stops at) and [`Problem`]
//! (one entry of the full list that `check` returns).
//!
//! Every error about a setting names its key in dotted form (`policy.idle_timeout`,
//! `api_keys[1].sha256`, `federation.peers[0].urls[2]`), both in the message and as a field.

use std::fmt;
use std::path::PathBuf;

/// Why a config could not be loaded. Each variant's message names the file or the key at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The config file itself could not be read.
    #[error("cannot read config file {}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    /// The text is not valid TOML (the message carries the line and column).
    #[error("{origin} is not valid TOML: {message}")]
    Syntax {
        /// The file's path, or `config text` for [`crate::NodeConfig::from_toml_str`].
        origin: String,
        message: String,
    },
    /// A key that sessync does not know, e.g. a misspelt one.
    #[error("unknown key `{key}`{}", did_you_mean(suggestion.as_deref()))]
    UnknownKey {
        key: String,
        /// A known key of the same table with a similar spelling.
        suggestion: Option<String>,
    },
    /// A missing, malformed or inconsistent value, or an unreadable secret.
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

fn did_you_mean(suggestion: Option<&str>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}

impl ConfigError {
    /// A problem with the value of `key`.
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The dotted key at fault; `None` when the whole file is (unreadable, or not TOML).
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Read { .. } | ConfigError::Syntax { .. } => None,
            ConfigError::UnknownKey { key, .. } | ConfigError::Invalid { key, .. } => Some(key),
        }
    }

    /// Problems with the file as a whole and unknown keys come first: they are usually the cause
    /// of the others (a misspelt required key is also reported missing).
    pub(crate) fn rank(&self) -> u8 {
        match self {
            ConfigError::Read { .. } | ConfigError::Syntax { .. } => 0,
            ConfigError::UnknownKey { .. } => 1,
            ConfigError::Invalid { .. } => 2,
        }
    }
}

/// One problem found by [`crate::NodeConfig::check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key at fault (`policy.idle_timeout`, `api_keys[1].sha256`); empty when the
    /// problem is with the file as a whole.
    pub key: String,
    /// The whole sentence, naming the key, exactly as `load` would report it.
    pub message: String,
}

impl From<&ConfigError> for Problem {
    fn from(e: &ConfigError) -> Self {
        Problem {
            key: e.key().unwrap_or_default().to_owned(),
            message: e.to_string(),
        }
    }
}

impl From<ConfigError> for Problem {
    fn from(e: ConfigError) -> Self {
        Problem::from(&e)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_key() {
        let e = ConfigError::invalid("node_id", "must be > 0");
        assert_eq!(e.to_string(), "node_id: must be > 0");
        assert_eq!(e.key(), Some("node_id"));

        let e = ConfigError::UnknownKey {
            key: "policy.idel_timeout".into(),
            suggestion: Some("policy.idle_timeout".into()),
        };
        assert_eq!(
            e.to_string(),
            "unknown key `policy.idel_timeout` (did you mean `policy.idle_timeout`?)"
        );
        let p = Problem::from(&e);
        assert_eq!(p.key, "policy.idel_timeout");
        assert_eq!(p.to_string(), e.to_string());

        let e = ConfigError::Syntax {
            origin: "node.toml".into(),
            message: "x".into(),
        };
        assert_eq!(e.to_string(), "node.toml is not valid TOML: x");
        assert_eq!(e.key(), None);
        assert_eq!(Problem::from(e).key, "");
    }
}

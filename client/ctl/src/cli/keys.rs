//! `sessyncctl keys new`: a fresh random API key and the `[[api_keys]]` block (with the key's
//! sha256, never the key itself) to paste into every node's config.

use std::io::Write;

use clap::{Subcommand, ValueEnum};
use serde_json::json;
use sessync_config::hash_api_key;

use super::output::{json_line, OutputFormat};

/// `sessyncctl keys` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Print a new random API key (32 random bytes, hex) and its config block.
    New {
        /// What the key may do.
        #[arg(long, value_enum)]
        role: KeyRole,
        /// The key's name in the config and the audit log (default: `ROLE-` and 8 hex digits
        /// of its hash).
        #[arg(long)]
        name: Option<String>,
    },
}

/// The roles an API key can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeyRole {
    /// Session endpoints.
    App,
    /// Everything, cluster management included.
    Admin,
}

impl KeyRole {
    fn as_str(self) -> &'static str {
        match self {
            KeyRole::App => "app",
            KeyRole::Admin => "admin",
        }
    }
}

/// Runs one keys subcommand, printing to `out`; needs no cluster.
pub(super) fn run(
    cmd: KeysCommand,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::New { role, name } => {
            let key = hex::encode(rand::random::<[u8; 32]>());
            let block = NewKey::new(key, role, name);
            if format == OutputFormat::Json {
                json_line(
                    out,
                    &json!({
                        "name": block.name,
                        "role": role.as_str(),
                        "key": block.key,
                        "sha256": block.sha256,
                        "toml": block.toml(),
                    }),
                )?;
            } else {
                writeln!(out, "key: {}", block.key)?;
                writeln!(
                    out,
                    "\n# Add to the config of every node (the key itself stays with its user):"
                )?;
                out.write_all(block.toml().as_bytes())?;
            }
        }
    }
    Ok(())
}

/// A generated key with its name, role and hash.
struct NewKey {
    key: String,
    name: String,
    role: KeyRole,
    sha256: String,
}

impl NewKey {
    fn new(key: String, role: KeyRole, name: Option<String>) -> Self {
        let sha256 = hex::encode(hash_api_key(&key));
        let name = name.unwrap_or_else(|| format!("{}-{}", role.as_str(), &sha256[..8]));
        Self {
            key,
            name,
            role,
            sha256,
        }
    }

    /// The `[[api_keys]]` block.
    fn toml(&self) -> String {
        let mut name = String::new();
        toml_string(&self.name, &mut name);
        format!(
            "[[api_keys]]\nname = {name}\nsha256 = \"{}\"\nrole = \"{}\"\n",
            self.sha256,
            self.role.as_str()
        )
    }
}

/// `s` as a TOML basic string.
fn toml_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_has_the_hash_not_the_key() {
        let k = NewKey::new("demo-app-key-change-me".into(), KeyRole::App, None);
        assert_eq!(
            k.sha256,
            "7dd315a9dbd5d1a31d7e2d196495cdc4874275b9e37456699116f8059c781a47"
        );
        assert_eq!(
            k.toml(),
            "[[api_keys]]\nname = \"app-7dd315a9\"\n\
             sha256 = \"7dd315a9dbd5d1a31d7e2d196495cdc4874275b9e37456699116f8059c781a47\"\n\
             role = \"app\"\n"
        );
        let k = NewKey::new("x".into(), KeyRole::Admin, Some("ops \"a\"".into()));
        assert!(k.toml().contains("name = \"ops \\\"a\\\"\"\nsha256"));
        assert!(k.toml().ends_with("role = \"admin\"\n"));
    }

    #[test]
    fn fresh_keys_differ() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        let cmd = || KeysCommand::New {
            role: KeyRole::App,
            name: None,
        };
        run(cmd(), OutputFormat::Json, &mut a).unwrap();
        run(cmd(), OutputFormat::Json, &mut b).unwrap();
        let a: serde_json::Value = serde_json::from_slice(&a).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(a["key"].as_str().unwrap().len(), 64);
        assert_ne!(a["key"], b["key"]);
    }
}

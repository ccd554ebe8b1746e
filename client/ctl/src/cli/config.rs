//! `sessyncctl config check FILE`: validates a node config file offline, with the same checks
//! (and the same `SESSYNC_*` environment overrides) the node applies when it starts.

use std::io::Write;
use std::path::PathBuf;

use anyhow::bail;
use clap::Subcommand;
use serde_json::json;
use sessync_config::{NodeConfig, Problem};

use super::output::{json_line, OutputFormat};

/// `sessyncctl config` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Check a node config file; prints every problem with its key and exits 1 if any.
    Check {
        /// The node's TOML config file.
        file: PathBuf,
    },
}

/// Runs one config subcommand, printing to `out`; needs no cluster.
pub(super) fn run(
    cmd: ConfigCommand,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::Check { file } => {
            let problems = NodeConfig::check(&file);
            out.write_all(render_problems(&problems, format)?.as_bytes())?;
            if !problems.is_empty() {
                bail!("{}: {} problem(s)", file.display(), problems.len());
            }
        }
    }
    Ok(())
}

/// `ok`, or one line per problem starting with its key, `KEY: ...` (`(file)` when the whole
/// file is at fault).
fn render_problems(problems: &[Problem], format: OutputFormat) -> anyhow::Result<String> {
    let mut out = Vec::new();
    if format == OutputFormat::Json {
        if problems.is_empty() {
            json_line(&mut out, &json!({"ok": true}))?;
        }
        for p in problems {
            json_line(&mut out, &json!({"key": p.key, "message": p.message}))?;
        }
    } else if problems.is_empty() {
        writeln!(out, "ok")?;
    } else {
        for p in problems {
            if p.key.is_empty() {
                writeln!(out, "(file): {}", p.message)?;
            } else if p.message.starts_with(&format!("{}:", p.key)) {
                // The message already names its key.
                writeln!(out, "{}", p.message)?;
            } else {
                writeln!(out, "{}: {}", p.key, p.message)?;
            }
        }
    }
    Ok(String::from_utf8(out)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_rendering() {
        assert_eq!(render_problems(&[], OutputFormat::Table).unwrap(), "ok\n");
        assert_eq!(
            render_problems(&[], OutputFormat::Json).unwrap(),
            "{\"ok\":true}\n"
        );
        let p = vec![
            Problem {
                key: "policy.idle_timeout".into(),
                message: "policy.idle_timeout: is not a duration".into(),
            },
            Problem {
                key: "site".into(),
                message: "missing".into(),
            },
            Problem {
                key: String::new(),
                message: "not TOML".into(),
            },
        ];
        assert_eq!(
            render_problems(&p, OutputFormat::Table).unwrap(),
            "policy.idle_timeout: is not a duration\nsite: missing\n(file): not TOML\n"
        );
    }
}

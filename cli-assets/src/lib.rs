//! Man pages and shell completions of the sessync binaries, written by the binaries themselves
//! from their own clap commands (as ripgrep does), so the packaged pages always match the code.
//!
//! Each binary calls [`generate_if_requested`] first thing in `main`: when its first argument
//! is `--generate KIND` (KIND one of `man`, `complete-bash`, `complete-zsh`, `complete-fish`),
//! the asset is written to standard output and the binary exits; otherwise nothing happens and
//! the binary parses its command line as usual. `scripts/package.sh` uses it to build the
//! package's man pages and completions. The option is left out of `--help`.

use std::ffi::OsString;
use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Arg, ValueEnum};
use clap_complete::Shell;

/// The option that asks for an asset.
pub const OPTION: &str = "--generate";

/// What `--generate` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Asset {
    /// A roff man page (section 1).
    Man,
    /// A bash completion script.
    CompleteBash,
    /// A zsh completion script.
    CompleteZsh,
    /// A fish completion script.
    CompleteFish,
}

/// If this process's first argument is `--generate`, writes the asset asked for of `cmd` to
/// standard output and returns the exit code (2 with clap's message for a bad or missing
/// KIND); otherwise `None`.
pub fn generate_if_requested(cmd: clap::Command) -> Option<ExitCode> {
    let request = requested(cmd.get_name(), std::env::args_os())?;
    let asset = match request {
        Ok(asset) => asset,
        Err(e) => {
            let _ = e.print();
            return Some(ExitCode::from(2));
        }
    };
    let mut out = io::stdout().lock();
    match write(asset, cmd, &mut out).and_then(|()| out.flush()) {
        Ok(()) => Some(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("{OPTION}: cannot write the {asset:?} asset: {e}");
            Some(ExitCode::FAILURE)
        }
    }
}

/// The asset a command line (program name first) asks for: `None` unless its first argument
/// is `--generate` or `--generate=...`; an error when KIND is missing or unknown or other
/// arguments follow.
fn requested(
    name: &str,
    args: impl IntoIterator<Item = OsString>,
) -> Option<Result<Asset, clap::Error>> {
    let args: Vec<OsString> = args.into_iter().collect();
    let first = args.get(1)?.to_str()?;
    if first != OPTION && !first.starts_with(&format!("{OPTION}=")) {
        return None;
    }
    let parser = clap::Command::new("generate")
        .bin_name(name.to_owned())
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(
            Arg::new("generate")
                .long("generate")
                .value_name("KIND")
                .required(true)
                .value_parser(clap::builder::EnumValueParser::<Asset>::new()),
        );
    Some(parser.try_get_matches_from(args).map(|m| {
        *m.get_one::<Asset>("generate")
            .expect("a required argument is present")
    }))
}

/// Writes `asset` of `cmd` to `out`.
pub fn write(asset: Asset, mut cmd: clap::Command, out: &mut dyn Write) -> io::Result<()> {
    let shell = match asset {
        Asset::Man => return clap_mangen::Man::new(cmd).render(out),
        Asset::CompleteBash => Shell::Bash,
        Asset::CompleteZsh => Shell::Zsh,
        Asset::CompleteFish => Shell::Fish,
    };
    let name = cmd.get_name().to_owned();
    clap_complete::generate(shell, &mut cmd, name, out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> clap::Command {
        clap::Command::new("toyctl")
            .about("A toy for the tests.")
            .arg(Arg::new("config").long("config").value_name("FILE"))
            .subcommand(clap::Command::new("status").about("Show the status."))
    }

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn rendered(asset: Asset) -> String {
        let mut out = Vec::new();
        write(asset, toy(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn only_a_first_generate_argument_is_a_request() {
        assert!(requested("toyctl", args(&["toyctl"])).is_none());
        assert!(requested("toyctl", args(&["toyctl", "--config", "x.toml"])).is_none());
        assert!(requested("toyctl", args(&["toyctl", "status", "--generate", "man"])).is_none());
        assert!(requested("toyctl", args(&["toyctl", "--generated"])).is_none());
        let kind = |list: &[&str]| requested("toyctl", args(list)).unwrap().unwrap();
        assert_eq!(kind(&["toyctl", "--generate", "man"]), Asset::Man);
        assert_eq!(
            kind(&["toyctl", "--generate=complete-bash"]),
            Asset::CompleteBash
        );
        assert_eq!(
            kind(&["toyctl", "--generate", "complete-zsh"]),
            Asset::CompleteZsh
        );
        assert_eq!(
            kind(&["toyctl", "--generate", "complete-fish"]),
            Asset::CompleteFish
        );
    }

    #[test]
    fn a_bad_request_is_a_usage_error_naming_the_kinds() {
        for bad in [
            &["toyctl", "--generate"][..],
            &["toyctl", "--generate", "html"],
            &["toyctl", "--generate", "man", "--config", "x.toml"],
        ] {
            let err = requested("toyctl", args(bad)).unwrap().unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
        let err = requested("toyctl", args(&["toyctl", "--generate", "html"]))
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(err.contains("complete-fish"), "{err}");
    }

    #[test]
    fn every_asset_names_the_command_and_its_options() {
        let man = rendered(Asset::Man);
        assert!(man.starts_with(".ie"), "{man}");
        assert!(man.contains(".TH toyctl 1"), "{man}");
        assert!(man.contains("config"), "{man}");
        let bash = rendered(Asset::CompleteBash);
        assert!(bash.contains("complete -F _toyctl"), "{bash}");
        assert!(bash.contains("--config"), "{bash}");
        let zsh = rendered(Asset::CompleteZsh);
        assert!(zsh.starts_with("#compdef toyctl"), "{zsh}");
        let fish = rendered(Asset::CompleteFish);
        assert!(fish.contains("complete -c toyctl"), "{fish}");
        assert!(fish.contains("status"), "{fish}");
    }
}

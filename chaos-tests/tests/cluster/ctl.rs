//! Running the real `sessyncctl` binary from a test: finding it, bounding each run, and
//! reading its exit code, stdout (as text or JSON lines) and stderr.
//!
//! The binary is `$SESSYNC_CTL_BIN`, or `sessyncctl` next to the test executable's directory
//! (build it first: `cargo build --release -p sessync-client`).

// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use serde_json::Value;

/// Longest any one CLI run may take (its own call deadline is `--timeout 10s`).
const RUN_LIMIT: Duration = Duration::from_secs(30);

/// `$SESSYNC_CTL_BIN`, else `sessyncctl` in `target/<profile>/` for a test executable at
/// `target/<profile>/deps/<test>`.
pub(crate) fn ctl_binary() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("SESSYNC_CTL_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let name = format!("sessyncctl{}", std::env::consts::EXE_SUFFIX);
    for dir in exe.ancestors().skip(1).take(2) {
        if dir.join(&name).is_file() {
            return Ok(dir.join(&name));
        }
    }
    bail!("sessyncctl is missing: run `cargo build --release -p sessync-ctl` first")
}

/// One finished run: exit code, stdout, stderr.
pub(crate) struct Run {
    pub code: i32,
    pub out: String,
    pub err: String,
}

impl Run {
    /// The run, if it exited with `code`.
    pub(crate) fn expect(self, code: i32) -> anyhow::Result<Run> {
        ensure!(
            self.code == code,
            "exit code {} (wanted {code})\nstdout:\n{}\nstderr:\n{}",
            self.code,
            self.out,
            self.err
        );
        Ok(self)
    }

    /// Stdout as JSON lines, each one object.
    pub(crate) fn json_lines(&self) -> anyhow::Result<Vec<Value>> {
        self.out
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).with_context(|| format!("line {l:?}"))?;
                ensure!(v.is_object(), "not an object: {l}");
                Ok(v)
            })
            .collect()
    }

    /// The only JSON line.
    pub(crate) fn json(&self) -> anyhow::Result<Value> {
        let mut lines = self.json_lines()?;
        ensure!(lines.len() == 1, "wanted one line, got {}", self.out);
        Ok(lines.remove(0))
    }
}

/// Runs `sessyncctl` with `env` and `args`, killing it if it outlives [`RUN_LIMIT`].
pub(crate) fn ctl(env: &[(&str, &str)], args: &[&str]) -> anyhow::Result<Run> {
    let mut cmd = Command::new(ctl_binary()?);
    cmd.env_remove("SESSYNC_ENDPOINTS")
        .env_remove("SESSYNC_API_KEY")
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("cannot start sessyncctl")?;
    let mut pipe_out = child.stdout.take().context("stdout")?;
    let mut pipe_err = child.stderr.take().context("stderr")?;
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe_out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe_err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            bail!("sessyncctl {args:?} ran longer than {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Run {
        code: status.code().unwrap_or(-1),
        out: out.join().unwrap_or_default(),
        err: err.join().unwrap_or_default(),
    })
}

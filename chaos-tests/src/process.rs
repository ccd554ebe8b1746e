//! One node process: where the `sessync-node` binary is, free loopback ports, and a node's
//! files, spawn, kill, pause and log.
//!
//! Each node lives in `<cluster dir>/node-<id>/` with `config.toml`, `data/` and `node.log`;
//! stdout and stderr of every start are appended to the log, after a marker line.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;

use anyhow::{bail, Context};

/// Environment variable naming the node binary to run instead of the one next to the tests.
pub const NODE_BIN_ENV: &str = "SESSYNC_NODE_BIN";
/// Environment variable giving the nodes' `RUST_LOG` (default `info`).
pub const NODE_LOG_ENV: &str = "SESSYNC_TEST_NODE_LOG";

/// Finds `sessync-node`: `$SESSYNC_NODE_BIN`, else `target/<profile>/sessync-node` for a test
/// executable at `target/<profile>/deps/<test>`.
pub fn node_binary() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os(NODE_BIN_ENV) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("{NODE_BIN_ENV}={} is not a file", p.display());
        }
        return Ok(p);
    }
    let exe = std::env::current_exe().context("cannot find the test executable's path")?;
    let name = format!("sessync-node{}", std::env::consts::EXE_SUFFIX);
    let mut looked = Vec::new();
    for dir in exe.ancestors().skip(1).take(2) {
        let candidate = dir.join(&name);
        if candidate.is_file() {
            return Ok(candidate);
        }
        looked.push(candidate.display().to_string());
    }
    bail!(
        "the sessync-node binary is missing (looked at {}). Build it in the same profile and \
         target dir as the tests first, e.g. `cargo build -p sessync-node` before `cargo test`, \
         or `cargo build --release -p sessync-node` before `cargo test --release`; or set \
         {NODE_BIN_ENV} to its path",
        looked.join(", ")
    )
}

/// `n` distinct free loopback ports, none in `avoid`. Each is found by binding 127.0.0.1:0;
/// the listeners are held until all are chosen, then released for the nodes to bind.
pub(crate) fn free_ports(n: usize, avoid: &BTreeSet<u16>) -> anyhow::Result<Vec<u16>> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    let mut tries = 0;
    while ports.len() < n {
        tries += 1;
        if tries > 100 * (n + 1) {
            bail!("cannot find {n} free loopback ports");
        }
        let l = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
        let port = l.local_addr()?.port();
        if !avoid.contains(&port) && !ports.contains(&port) {
            ports.push(port);
        }
        held.push(l);
    }
    Ok(ports)
}

/// The last `lines` lines of a file, or a note that it cannot be read.
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let mut text = String::new();
    match File::open(path) {
        Ok(mut f) => {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            // Enough for the tail of any sane log without reading a huge file whole.
            let from = len.saturating_sub(256 * 1024);
            if f.seek(SeekFrom::Start(from)).is_ok() {
                let mut buf = Vec::new();
                let _ = f.read_to_end(&mut buf);
                text = String::from_utf8_lossy(&buf).into_owned();
            }
        }
        Err(e) => return format!("(cannot read {}: {e})", path.display()),
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Debian's libfaketime (package `libfaketime`, installed by `scripts/setup.sh`).
pub(crate) fn libfaketime() -> anyhow::Result<PathBuf> {
    let lib = Path::new("/usr/lib");
    let found = fs::read_dir(lib)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.is_file());
    found.ok_or_else(|| {
        anyhow::anyhow!("libfaketime is not installed (apt-get install libfaketime): no /usr/lib/*/faketime/libfaketime.so.1")
    })
}

/// What the harness knows of one node.
pub(crate) struct Node {
    pub id: u64,
    pub port: u16,
    pub dir: PathBuf,
    /// Whether it serves HTTPS.
    pub https: bool,
    /// This node's own extra TOML (see `TestCluster::set_node_toml`).
    pub node_toml: String,
    /// libfaketime's offset for this node's wall clock (see `TestCluster::set_clock_offset`).
    pub clock_offset: Option<String>,
    /// Whether the node runs under libfaketime with its offset read from [`Node::clock_file`]
    /// at every clock reading, so a test steps its wall clock while it runs (see
    /// `TestCluster::step_clock`).
    pub steppable_clock: bool,
    child: Mutex<Option<Child>>,
    paused: bool,
    starts: u32,
}

impl Node {
    /// A node whose files will live in `dir` (serving HTTPS if `https`); nothing is created
    /// or started yet.
    pub(crate) fn new(id: u64, port: u16, dir: PathBuf, https: bool) -> Self {
        Self {
            id,
            port,
            dir,
            https,
            node_toml: String::new(),
            clock_offset: None,
            steppable_clock: false,
            child: Mutex::new(None),
            paused: false,
            starts: 0,
        }
    }

    /// `http://127.0.0.1:<port>` (`https://` with TLS).
    pub(crate) fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The node's TLS certificate, key and CA files (written when TLS is on).
    pub(crate) fn tls_paths(&self) -> (PathBuf, PathBuf, PathBuf) {
        (
            self.dir.join("node.crt"),
            self.dir.join("node.key"),
            self.dir.join("ca.crt"),
        )
    }

    /// The file libfaketime reads a steppable clock's offset from (`+600`, `-30`, `+0`).
    pub(crate) fn clock_file(&self) -> PathBuf {
        self.dir.join("faketime.rc")
    }

    /// Sets a steppable clock's offset (libfaketime's format: `+600` is ten minutes ahead); the
    /// running process reads it at its next clock reading. Written whole, then renamed, so the
    /// process never reads half a line.
    pub(crate) fn write_clock_file(&self, offset: &str) -> anyhow::Result<()> {
        let tmp = self.dir.join("faketime.rc.tmp");
        std::fs::write(&tmp, format!("{offset}\n"))?;
        std::fs::rename(&tmp, self.clock_file())?;
        Ok(())
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub(crate) fn config_path(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    pub(crate) fn log_path(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    fn child(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the process runs and is not paused: it should answer.
    pub(crate) fn is_live(&self) -> bool {
        !self.paused && self.is_running()
    }

    /// Whether the process exists and has not exited (paused counts as running).
    pub(crate) fn is_running(&self) -> bool {
        match self.child().as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// How the process ended, if it exited on its own (a kill by the harness forgets it).
    pub(crate) fn exited(&self) -> Option<ExitStatus> {
        self.child()
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Starts the process with its config file. Returns the log's length before the start, so
    /// the caller can read what this start wrote.
    pub(crate) fn spawn(&mut self, bin: &Path) -> anyhow::Result<u64> {
        self.kill();
        self.starts += 1;
        let log_path = self.log_path();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        writeln!(
            log,
            "===== harness: start #{} of node {} ({}) =====",
            self.starts,
            self.id,
            self.url()
        )?;
        let offset = log.metadata()?.len();
        let mut cmd = Command::new(bin);
        cmd.arg("--config")
            .arg(self.config_path())
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SESSYNC_") {
                cmd.env_remove(key);
            }
        }
        let level = std::env::var(NODE_LOG_ENV).unwrap_or_else(|_| "info".into());
        cmd.env("RUST_LOG", level).env("RUST_BACKTRACE", "1");
        if let Some(offset) = &self.clock_offset {
            // Only the wall clock moves: timers and timeouts (the monotonic clock) stay true.
            cmd.env("LD_PRELOAD", libfaketime()?)
                .env("FAKETIME", offset)
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        } else if self.steppable_clock {
            // The offset comes from the file, read again at every clock reading (`FAKETIME`
            // would take priority over it, so it is not set).
            if !self.clock_file().exists() {
                self.write_clock_file("+0")?;
            }
            cmd.env("LD_PRELOAD", libfaketime()?)
                .env("FAKETIME_TIMESTAMP_FILE", self.clock_file())
                .env("FAKETIME_NO_CACHE", "1")
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
                .env_remove("FAKETIME");
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {} for node {}", bin.display(), self.id))?;
        *self.child() = Some(child);
        self.paused = false;
        Ok(offset)
    }

    /// What the log holds from byte `offset` on.
    pub(crate) fn log_since(&self, offset: u64) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(self.log_path()) {
            if f.seek(SeekFrom::Start(offset)).is_ok() {
                let mut buf = Vec::new();
                let _ = f.read_to_end(&mut buf);
                text = String::from_utf8_lossy(&buf).into_owned();
            }
        }
        text
    }

    /// The process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child().as_ref().map(Child::id)
    }

    /// SIGTERM (the way an operator or systemd stops a node) and waits up to `within` for it
    /// to exit; SIGKILL after that. Its exit status, or `None` if it had to be killed or was
    /// not running.
    pub(crate) async fn terminate(
        &mut self,
        within: std::time::Duration,
    ) -> anyhow::Result<Option<ExitStatus>> {
        let Some(pid) = self.pid() else {
            return Ok(None);
        };
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .context("cannot run kill")?;
        if !status.success() {
            bail!("kill -TERM {pid} failed: {status}");
        }
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if let Some(exit) = self.exited() {
                let _ = self.child().take();
                self.paused = false;
                return Ok(Some(exit));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.kill();
        Ok(None)
    }

    /// SIGKILL and reap, if running; a no-op otherwise.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.paused = false;
    }

    /// Sends SIGSTOP (`pause`) or SIGCONT (`resume`) to the running process.
    pub(crate) fn signal_stop(&mut self, stop: bool) -> anyhow::Result<()> {
        let pid = match self.child().as_ref() {
            Some(c) => c.id(),
            None => bail!("node {} is not running", self.id),
        };
        let sig = if stop { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .arg(sig)
            .arg(pid.to_string())
            .status()
            .context("cannot run kill")?;
        if !status.success() {
            bail!("kill {sig} {pid} failed: {status}");
        }
        self.paused = stop;
        Ok(())
    }

    /// Deletes the data dir (the process must not be running).
    pub(crate) fn remove_data(&self) -> std::io::Result<()> {
        match fs::remove_dir_all(self.data_dir()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_avoid_the_given_ones() {
        let first = free_ports(3, &BTreeSet::new()).unwrap();
        assert_eq!(first.len(), 3);
        let set: BTreeSet<u16> = first.iter().copied().collect();
        assert_eq!(set.len(), 3);
        let more = free_ports(3, &set).unwrap();
        assert!(more.iter().all(|p| !set.contains(p)));
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        fs::write(&p, "a\nb\nc\nd\n").unwrap();
        assert_eq!(tail(&p, 2), "c\nd");
        assert_eq!(tail(&p, 10), "a\nb\nc\nd");
        assert!(tail(&dir.path().join("none"), 3).contains("cannot read"));
    }

    #[test]
    fn spawn_logs_and_kill_reaps() {
        // `sh` stands in for the node: it prints its arguments and lingers.
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("fake-node");
        fs::write(&script, "#!/bin/sh\necho \"args: $*\"\nexec sleep 30\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let mut node = Node::new(7, 1, dir.path().to_path_buf(), false);
        let offset = node.spawn(&script).unwrap();
        assert!(node.is_live());
        let mut seen = String::new();
        for _ in 0..100 {
            seen = node.log_since(offset);
            if seen.contains("args:") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(seen.contains("args: --config"), "{seen}");
        assert!(tail(&node.log_path(), 5).contains("harness: start #1 of node 7"));
        node.signal_stop(true).unwrap();
        assert!(!node.is_live() && node.is_running());
        node.signal_stop(false).unwrap();
        assert!(node.is_live());
        node.kill();
        assert!(!node.is_running());
        assert!(node.exited().is_none());
    }
}

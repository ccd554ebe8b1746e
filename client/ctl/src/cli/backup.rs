//! `sessyncctl backup save FILE` (a consistent backup of a serving cluster, `GET /v1/backup`)
//! and `sessyncctl backup verify FILE` (offline: header, length, checksum). A save writes
//! `FILE.partial`, checks every byte against the header as it arrives, syncs, and only then
//! renames it to FILE: a FILE that exists is a whole, checked backup.

use std::io::{BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::json;
use sessync_client::Client;
use sessync_proto::backup::{self, BackupHeader};

use super::output::{json_line, OutputFormat, Table};

/// How long a save waits at least for the node to start sending.
const SAVE_START: std::time::Duration = std::time::Duration::from_secs(600);

/// `sessyncctl backup` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum BackupCommand {
    /// Take a backup from the cluster while it serves (an admin key) and write it to FILE.
    Save {
        /// Where to write the backup (refused if it exists, unless --force).
        file: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Check a backup file offline: its header, its length and its checksum.
    Verify {
        /// The backup file.
        file: PathBuf,
    },
}

/// Runs one backup subcommand; `client` is made only for a save.
pub(super) async fn run(
    client: impl FnOnce() -> anyhow::Result<Client>,
    cmd: BackupCommand,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match cmd {
        BackupCommand::Save { file, force } => {
            if file.exists() && !force {
                bail!("{} exists; give --force to replace it", file.display());
            }
            let started = Instant::now();
            // The node writes the whole backup before it answers: seconds for a large state.
            let c = client()?;
            let c = c.clone().with_timeout(c.timeout().max(SAVE_START));
            let header = save(&c, &file).await?;
            let took = started.elapsed();
            render(&header, &file, Some(took.as_millis()), format, out)
        }
        BackupCommand::Verify { file } => {
            let f = std::fs::File::open(&file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            let mut shown = Shown::new("verifying");
            let header = backup::verify(&mut BufReader::with_capacity(1 << 20, f), |d, t| {
                shown.at(d, t)
            })
            .with_context(|| format!("{} is not a good backup", file.display()))?;
            render(&header, &file, None, format, out)
        }
    }
}

/// Streams a backup into `file` through `file.partial`.
async fn save(client: &Client, file: &Path) -> anyhow::Result<BackupHeader> {
    let mut partial = file.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let written = async {
        let mut backup = client.backup().await.context("cannot start a backup")?;
        let mut f = std::fs::File::create(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?;
        f.write_all(&backup.header.line())?;
        let mut shown = Shown::new("receiving");
        let total = backup.header.snapshot_bytes;
        let mut done = 0;
        while let Some(chunk) = backup.next_chunk().await.context("the backup failed")? {
            f.write_all(&chunk)?;
            done += chunk.len() as u64;
            shown.at(done, total);
        }
        shown.at(done, total);
        f.sync_all()?;
        anyhow::Ok(backup.header)
    }
    .await;
    match written {
        Ok(header) => {
            std::fs::rename(&partial, file).with_context(|| {
                format!("cannot rename {} to {}", partial.display(), file.display())
            })?;
            Ok(header)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn render(
    h: &BackupHeader,
    file: &Path,
    took_ms: Option<u128>,
    format: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if format == OutputFormat::Json {
        let mut v = serde_json::to_value(h)?;
        v["file"] = json!(file.display().to_string());
        if let Some(ms) = took_ms {
            v["took_ms"] = json!(ms);
        }
        return json_line(out, &v);
    }
    let mut t = Table::new(["field", "value"]);
    let mut row = |k: &str, v: String| t.row([k.to_owned(), v]);
    row("file", file.display().to_string());
    row("cluster_id", h.cluster_id.clone());
    row("site", h.site.to_string());
    row(
        "taken on node",
        format!("{} (version {})", h.node_id, h.version),
    );
    row("index", h.index.to_string());
    row("term", h.term.to_string());
    row("cluster_time", h.cluster_time.to_string());
    row("content digest", h.digest.clone());
    row(
        "snapshot",
        format!("{} bytes, sha256 {}", h.snapshot_bytes, h.sha256),
    );
    if let Some(ms) = took_ms {
        row("took", format!("{ms} ms"));
    }
    writeln!(out, "{}", t.render().trim_end())?;
    Ok(())
}

/// Progress of a long transfer on stderr: redrawn on a terminal, a line each quarter otherwise.
struct Shown {
    what: &'static str,
    tty: bool,
    next: u64,
}

impl Shown {
    fn new(what: &'static str) -> Self {
        Shown {
            what,
            tty: std::io::stderr().is_terminal(),
            next: 0,
        }
    }

    fn at(&mut self, done: u64, total: u64) {
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        if pct < self.next {
            return;
        }
        let mib = |b: u64| b as f64 / f64::from(1 << 20);
        let line = format!(
            "{}: {:.1} of {:.1} MiB ({pct}%)",
            self.what,
            mib(done),
            mib(total)
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
            if pct >= 100 {
                let _ = writeln!(err);
            }
            self.next = pct + 1;
        } else {
            let _ = writeln!(err, "{line}");
            self.next = pct + 25;
        }
        let _ = err.flush();
    }
}

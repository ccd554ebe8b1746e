//! Where snapshot files live, and the open file openraft streams a snapshot through.
//!
//! `<data dir>/snapshots/` holds one `<snapshot id>.snap` per kept snapshot (the current one;
//! while an install is under way, also the one being installed) and the temporary files of
//! builds (`build-<n>.tmp`) and transfers (`recv-<n>.tmp`) in progress. A file becomes a
//! `.snap` only complete and synced, by a rename the directory's sync makes durable; anything
//! else in the directory is left over from a crash and removed when the store opens.
//!
//! [`SnapshotFile`] is openraft's `SnapshotData`: the sender reads it in chunks
//! (`snapshot_max_chunk_size`), the receiver writes the chunks into one made by
//! [`SnapshotDir::begin_receiving`]. It remembers its path, so an install can tell a file it
//! received (renamed into place) from any other (copied).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::{Mutex, MutexGuard};
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

use super::snapshot_format::SnapshotError;

/// The extension of a complete snapshot file.
const SNAP: &str = ".snap";
/// The extension of a file still being written.
const TMP: &str = ".tmp";

/// Temporary names differ within a process; a crash's leftovers are removed at open.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// What a temporary file is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Temp {
    /// A snapshot being built (or converted from the old format).
    Build,
    /// A snapshot arriving from the leader, or copied in for an install.
    Recv,
    /// A backup being written (`backup`).
    Backup,
}

impl Temp {
    fn prefix(self) -> &'static str {
        match self {
            Temp::Build => "build-",
            Temp::Recv => "recv-",
            Temp::Backup => "backup-",
        }
    }
}

/// The snapshots directory of one store. Cheap to clone.
#[derive(Clone, Debug)]
pub(super) struct SnapshotDir {
    path: Arc<PathBuf>,
    /// Serializes making a snapshot current (a build's save, an install) and reading which one
    /// is, so a build that finishes late never replaces a newer installed snapshot and no file
    /// is removed while another step still needs it.
    save: Arc<Mutex<()>>,
}

impl SnapshotDir {
    /// The snapshots directory of the store at `data_dir`, created if missing.
    pub(super) fn open(data_dir: &Path) -> io::Result<Self> {
        let path = data_dir.join("snapshots");
        std::fs::create_dir_all(&path)?;
        Ok(Self {
            path: Arc::new(path),
            save: Arc::default(),
        })
    }

    /// Taken while a snapshot is made current or looked up (see `save`).
    pub(super) fn lock(&self) -> MutexGuard<'_, ()> {
        self.save.lock()
    }

    /// The file of snapshot `id`. Ids arrive from the network, so only the ids this node makes
    /// (`<term>-<node>-<index>`, `empty`) name a file: nothing can point outside the directory.
    pub(super) fn file_of(&self, id: &str) -> Result<PathBuf, SnapshotError> {
        let ok = !id.is_empty()
            && id.len() <= 100
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(SnapshotError::BadId(id.to_owned()));
        }
        Ok(self.path.join(format!("{id}{SNAP}")))
    }

    /// A new temporary file name of `kind`.
    pub(super) fn temp(&self, kind: Temp) -> PathBuf {
        let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
        self.path.join(format!("{}{n}{TMP}", kind.prefix()))
    }

    /// Whether `path` is a transfer's file in this directory (an install may rename it).
    pub(super) fn is_received(&self, path: &Path) -> bool {
        path.parent() == Some(self.path.as_path()) && has_kind(path, Temp::Recv)
    }

    /// A new file for a snapshot arriving from the leader. Only one transfer runs at a time (the
    /// state machine's task serves them in turn), so a transfer's file left by one the leader
    /// gave up is removed here.
    pub(super) fn begin_receiving(&self) -> io::Result<SnapshotFile> {
        self.remove_temps(Temp::Recv);
        let path = self.temp(Temp::Recv);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(SnapshotFile::new(file, path))
    }

    /// Makes the complete, synced `temp` the file `to`: renamed, and the directory synced so the
    /// rename survives a crash.
    pub(super) fn publish(&self, temp: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(temp, to)?;
        File::open(self.path.as_path())?.sync_all()
    }

    /// Removes every snapshot file but `keep`'s (a snapshot no longer current; one a sender
    /// still reads stays readable through its open handle).
    pub(super) fn remove_snapshots_except(&self, keep: Option<&Path>) {
        self.remove_where(|p| p.extension().is_some_and(|e| e == "snap") && Some(p) != keep);
    }

    /// Removes the temporary files of `kind`.
    pub(super) fn remove_temps(&self, kind: Temp) {
        self.remove_where(|p| has_kind(p, kind));
    }

    fn remove_where(&self, mut doomed: impl FnMut(&Path) -> bool) {
        let entries = match std::fs::read_dir(self.path.as_path()) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(dir = %self.path.display(), error = %e, "cannot list snapshots");
                return;
            }
        };
        for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
            if doomed(&path) {
                // A file that stays only costs disk until the next try: not worth failing for.
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(file = %path.display(), error = %e, "cannot remove old snapshot file");
                }
            }
        }
    }
}

fn has_kind(path: &Path, kind: Temp) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(kind.prefix()) && n.ends_with(TMP))
}

/// A snapshot file open for openraft: read in chunks when sent, written in chunks when received.
#[derive(Debug)]
pub(crate) struct SnapshotFile {
    file: tokio::fs::File,
    path: PathBuf,
}

impl SnapshotFile {
    pub(super) fn new(file: File, path: PathBuf) -> Self {
        Self {
            file: tokio::fs::File::from_std(file),
            path,
        }
    }

    /// The file (once every write in flight has finished) and the path it was opened at.
    pub(super) async fn into_parts(self) -> (File, PathBuf) {
        (self.file.into_std().await, self.path)
    }
}

impl AsyncRead for SnapshotFile {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_read(cx, buf)
    }
}

impl AsyncWrite for SnapshotFile {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().file).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_shutdown(cx)
    }
}

impl AsyncSeek for SnapshotFile {
    fn start_seek(self: Pin<&mut Self>, position: io::SeekFrom) -> io::Result<()> {
        Pin::new(&mut self.get_mut().file).start_seek(position)
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Pin::new(&mut self.get_mut().file).poll_complete(cx)
    }
}

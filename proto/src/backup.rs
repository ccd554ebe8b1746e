//! The backup file (`GET /v1/backup`, `sessyncctl backup save`): one JSON header line saying
//! what the backup holds, then the snapshot it holds, byte for byte.
//!
//! The header names the cluster and site it was taken from, the committed log index and term
//! it is consistent at, the cluster time then, the digest of the state's content (which a
//! restored node recomputes), and the length and SHA-256 of the snapshot that follows. The
//! node's snapshot format is the node's business; everything here only needs the header and a
//! byte count, so the CLI verifies a backup without the node's code. [`Check`] verifies a
//! backup as it streams by (a save checks what it writes; `backup verify` reads the file).

use std::io::{BufRead, Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{SiteName, Timestamp};

/// The `kind` every backup header carries.
pub const KIND: &str = "sessync-backup";
/// The header format this build writes and reads.
pub const FORMAT: u32 = 1;
/// The longest header line read.
pub const MAX_HEADER: usize = 64 * 1024;
/// The media type of `GET /v1/backup`'s answer.
pub const MEDIA_TYPE: &str = "application/vnd.sessync.backup";

/// What a backup holds: the first line of the file, as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupHeader {
    /// Always [`KIND`].
    pub kind: String,
    /// Always [`FORMAT`] for this build.
    pub format: u32,
    /// The cluster it was taken from.
    pub cluster_id: String,
    /// The site (cluster name) it was taken from.
    pub site: SiteName,
    /// The node that wrote it.
    pub node_id: u64,
    /// The version of that node.
    pub version: String,
    /// The applied (and committed) log index the state is consistent at.
    pub index: u64,
    /// The term of that entry.
    pub term: u64,
    /// The cluster time of that state.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub cluster_time: Timestamp,
    /// SHA-256 of the state's content (sessions, audit, federation, policy, clock), the
    /// `content_digest` of `GET /cluster/digest` on a node at that index; a restore recomputes it.
    pub digest: String,
    /// How many bytes of snapshot follow the header line.
    pub snapshot_bytes: u64,
    /// SHA-256 of those bytes, hex.
    pub sha256: String,
}

/// Why a file is not a good backup.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("not a sessync backup: {0}")]
    NotABackup(String),
    #[error("backup format {found} is not one this version reads (it reads {FORMAT})")]
    Format { found: u32 },
    #[error("the backup is truncated: {got} of its {expected} snapshot bytes are there")]
    Truncated { got: u64, expected: u64 },
    #[error("the backup has bytes after its {expected} snapshot bytes: not one complete backup")]
    Trailing { expected: u64 },
    #[error("checksum mismatch: the header says sha256 {expected}, the snapshot bytes hash to {found}: the file is damaged")]
    Checksum { expected: String, found: String },
    #[error("cannot read the backup: {0}")]
    Io(#[from] std::io::Error),
}

impl BackupHeader {
    /// The header line, newline included.
    pub fn line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }

    /// Reads and checks the header line at the start of `input`.
    pub fn read(input: &mut impl BufRead) -> Result<Self, BackupError> {
        let mut line = Vec::new();
        input
            .take(MAX_HEADER as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Err(BackupError::NotABackup("the file is empty".into()));
        }
        if line.last() != Some(&b'\n') {
            return Err(BackupError::NotABackup(format!(
                "no header line within its first {MAX_HEADER} bytes"
            )));
        }
        Self::parse(&line)
    }

    /// Parses and checks a header line.
    pub fn parse(line: &[u8]) -> Result<Self, BackupError> {
        #[derive(Deserialize)]
        struct Probe {
            kind: String,
            format: u32,
        }
        let probe: Probe = serde_json::from_slice(line)
            .map_err(|e| BackupError::NotABackup(format!("the first line is no header: {e}")))?;
        if probe.kind != KIND {
            return Err(BackupError::NotABackup(format!(
                "its header's kind is {:?}, not {KIND:?}",
                probe.kind
            )));
        }
        if probe.format != FORMAT {
            return Err(BackupError::Format {
                found: probe.format,
            });
        }
        serde_json::from_slice(line)
            .map_err(|e| BackupError::NotABackup(format!("its header is not valid: {e}")))
    }
}

/// Checks the snapshot bytes of a backup as they stream by: their count and their SHA-256.
pub struct Check {
    expected: u64,
    sha256: String,
    got: u64,
    hash: Sha256,
}

impl Check {
    /// A check of the bytes `header` announces.
    pub fn new(header: &BackupHeader) -> Self {
        Check {
            expected: header.snapshot_bytes,
            sha256: header.sha256.clone(),
            got: 0,
            hash: Sha256::new(),
        }
    }

    /// The next bytes of the snapshot.
    pub fn update(&mut self, bytes: &[u8]) -> Result<(), BackupError> {
        self.got += bytes.len() as u64;
        if self.got > self.expected {
            return Err(BackupError::Trailing {
                expected: self.expected,
            });
        }
        self.hash.update(bytes);
        Ok(())
    }

    /// How many snapshot bytes came so far.
    pub fn got(&self) -> u64 {
        self.got
    }

    /// The end of the input: every byte there and the hash right.
    pub fn finish(self) -> Result<(), BackupError> {
        if self.got < self.expected {
            return Err(BackupError::Truncated {
                got: self.got,
                expected: self.expected,
            });
        }
        let found = hex::encode(self.hash.finalize());
        if found != self.sha256 {
            return Err(BackupError::Checksum {
                expected: self.sha256,
                found,
            });
        }
        Ok(())
    }
}

/// Reads a whole backup from `input`, checking its header, length and checksum; `progress` is
/// told the snapshot bytes read so far every few MiB.
pub fn verify(
    input: &mut impl BufRead,
    progress: impl FnMut(u64, u64),
) -> Result<BackupHeader, BackupError> {
    let header = BackupHeader::read(input)?;
    copy_checked(&header, input, &mut std::io::sink(), progress)?;
    Ok(header)
}

/// Copies the snapshot bytes that follow `header` from `input` to `out`, checking their length
/// and checksum ([`Check`]); `progress` is told the bytes copied so far every few MiB.
pub fn copy_checked(
    header: &BackupHeader,
    input: &mut impl Read,
    out: &mut impl Write,
    mut progress: impl FnMut(u64, u64),
) -> Result<(), BackupError> {
    let mut check = Check::new(header);
    let mut buf = vec![0u8; 256 * 1024];
    let mut reported = 0;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        check.update(&buf[..n])?;
        out.write_all(&buf[..n])?;
        if check.got() - reported >= 8 << 20 {
            reported = check.got();
            progress(reported, header.snapshot_bytes);
        }
    }
    progress(check.got(), header.snapshot_bytes);
    check.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(body: &[u8]) -> (BackupHeader, Vec<u8>) {
        let header = BackupHeader {
            kind: KIND.into(),
            format: FORMAT,
            cluster_id: "c1".into(),
            site: SiteName::parse_field("site-a", "site").unwrap(),
            node_id: 1,
            version: "0.1.0".into(),
            index: 42,
            term: 3,
            cluster_time: Timestamp(1_000),
            digest: "d".into(),
            snapshot_bytes: body.len() as u64,
            sha256: hex::encode(Sha256::digest(body)),
        };
        let mut file = header.line();
        file.extend_from_slice(body);
        (header, file)
    }

    #[test]
    fn a_whole_backup_verifies() {
        let (header, file) = backup(b"snapshot bytes");
        let got = verify(&mut file.as_slice(), |_, _| {}).unwrap();
        assert_eq!(got, header);
    }

    #[test]
    fn a_truncated_backup_says_how_much_is_there() {
        let (_, file) = backup(b"snapshot bytes");
        let err = verify(&mut &file[..file.len() - 5], |_, _| {}).unwrap_err();
        assert!(
            matches!(
                err,
                BackupError::Truncated {
                    got: 9,
                    expected: 14
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_changed_byte_is_a_checksum_mismatch() {
        let (_, mut file) = backup(b"snapshot bytes");
        let last = file.len() - 1;
        file[last] ^= 1;
        let err = verify(&mut file.as_slice(), |_, _| {}).unwrap_err();
        assert!(matches!(err, BackupError::Checksum { .. }), "{err}");
    }

    #[test]
    fn bytes_after_the_snapshot_are_refused() {
        let (_, mut file) = backup(b"snapshot bytes");
        file.extend_from_slice(b"more");
        let err = verify(&mut file.as_slice(), |_, _| {}).unwrap_err();
        assert!(matches!(err, BackupError::Trailing { .. }), "{err}");
    }

    #[test]
    fn another_file_is_not_a_backup() {
        for file in [&b""[..], b"{\"kind\":\"other\",\"format\":1}\n", b"hello\n"] {
            let err = verify(&mut &file[..], |_, _| {}).unwrap_err();
            assert!(matches!(err, BackupError::NotABackup(_)), "{err}");
        }
        let (_, file) = backup(b"x");
        let newer = String::from_utf8(file)
            .unwrap()
            .replace("\"format\":1", "\"format\":9");
        let err = verify(&mut newer.as_bytes(), |_, _| {}).unwrap_err();
        assert!(matches!(err, BackupError::Format { found: 9 }), "{err}");
    }
}

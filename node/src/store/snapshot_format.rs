//! The snapshot file format: JSON lines, written and read one record at a time, so neither
//! side ever holds the whole state as one value.
//!
//! ```text
//! {"header":{"format":2,"meta":{..},"policy":{..},"clock":..,"audit_next":..}}
//! {"session":{..}}     one line per record: "session", "outbox", "received", "nonce"
//! {"audit":{..}}       one line per kept audit event, oldest first
//! {"end":{"lines":N,"sha256":"<hex>"}}
//! ```
//!
//! Each record is the JSON its column family stores. The end line counts the lines before it
//! and hashes their bytes: a snapshot arrives from the network, and one cut short at a line
//! boundary or altered must be refused, not installed as a smaller state. Lines are bounded
//! ([`MAX_LINE`]), so a bad file costs a bounded buffer. Format 1 was the whole state as one
//! JSON value (`snapshot_v1`).

use std::io::{BufRead, Read, Write};

use openraft::{BasicNode, SnapshotMeta};
use serde::{Deserialize, Serialize};
use sessync_proto::api::AuditEvent;
use sessync_proto::{Policy, Timestamp};
use sha2::{Digest, Sha256};

use super::layout::LayoutError;
use crate::raft_types::NodeId;
use crate::session::{OutboxEntry, ReceivedOp, Record, SeenNonce, Session};

/// The format this version writes and reads.
pub(super) const FORMAT: u32 = 2;

/// The longest line, newline included. Records are bounded far below this by the API's field
/// limits; the bound is what a malformed file may make a reader buffer.
pub(super) const MAX_LINE: usize = 1 << 20;

/// Why a snapshot file was refused, or could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SnapshotError {
    #[error("snapshot file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the snapshot file is empty")]
    Empty,
    #[error("the snapshot is in format {found}; this version reads format {FORMAT}")]
    Format { found: u32 },
    #[error("snapshot line 1 is not a valid header: {source}")]
    Header {
        #[source]
        source: serde_json::Error,
    },
    #[error("snapshot line {line} is not a valid record: {source}")]
    BadLine {
        line: u64,
        #[source]
        source: serde_json::Error,
    },
    #[error("snapshot line {line} is longer than {MAX_LINE} bytes")]
    LineTooLong { line: u64 },
    #[error("snapshot line {line} is a second header")]
    SecondHeader { line: u64 },
    #[error("the snapshot is cut short: it ends after {lines} whole lines, without its end line")]
    Truncated { lines: u64 },
    #[error("the snapshot's end line counts {counted} lines, but {found} came before it")]
    LineCount { counted: u64, found: u64 },
    #[error(
        "the snapshot's content does not match the checksum of its end line (altered or corrupt)"
    )]
    Checksum,
    #[error("snapshot line {line} follows the end line")]
    AfterEnd { line: u64 },
    #[error("the file is snapshot {found}, not {expected}, which was to be installed")]
    WrongSnapshot { expected: String, found: String },
    #[error("snapshot id {0:?} is not one this node makes")]
    BadId(String),
    #[error("audit event {seq} in the snapshot is not after event {prev}")]
    AuditOrder { seq: u64, prev: u64 },
    #[error("a record of the snapshot: {0}")]
    Layout(#[from] LayoutError),
}

/// What the first line carries: everything of the state that is not a record.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Header {
    pub(super) format: u32,
    pub(super) meta: SnapshotMeta<NodeId, BasicNode>,
    pub(super) policy: Option<Policy>,
    pub(super) clock: Timestamp,
    pub(super) audit_next: u64,
}

/// What the last line carries.
#[derive(Debug, Serialize, Deserialize)]
struct End {
    lines: u64,
    sha256: String,
}

/// One line of the file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Header(Header),
    Session(Session),
    Outbox(OutboxEntry),
    Received(ReceivedOp),
    Nonce(SeenNonce),
    Audit(AuditEvent),
    End(End),
}

/// Only the format of a header, read when the whole header does not parse: a later format's
/// header is answered with its number, not with a field it lacks.
#[derive(Deserialize)]
struct FormatOnly {
    header: FormatField,
}

#[derive(Deserialize)]
struct FormatField {
    format: u32,
}

/// One item of the state after the header. Items are read and written one at a time, so the
/// size of the larger variant costs nothing worth a box.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(super) enum Item {
    Record(Record),
    Audit(AuditEvent),
}

impl From<Item> for Line {
    fn from(item: Item) -> Self {
        match item {
            Item::Record(Record::Session(s)) => Line::Session(s),
            Item::Record(Record::Outbox(e)) => Line::Outbox(e),
            Item::Record(Record::Received(x)) => Line::Received(x),
            Item::Record(Record::Nonce(n)) => Line::Nonce(n),
            Item::Audit(ev) => Line::Audit(ev),
        }
    }
}

/// Writes a snapshot file line by line.
pub(super) struct Writer<W: Write> {
    out: W,
    hash: Sha256,
    lines: u64,
    buf: Vec<u8>,
}

impl<W: Write> Writer<W> {
    /// Starts a file with `header` (its `format` is set here).
    pub(super) fn new(out: W, mut header: Header) -> Result<Self, SnapshotError> {
        header.format = FORMAT;
        let mut w = Self {
            out,
            hash: Sha256::new(),
            lines: 0,
            buf: Vec::new(),
        };
        w.line(&Line::Header(header))?;
        Ok(w)
    }

    pub(super) fn item(&mut self, item: Item) -> Result<(), SnapshotError> {
        self.line(&Line::from(item))
    }

    fn encode(&mut self, line: &Line) -> Result<(), SnapshotError> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, line).map_err(|source| SnapshotError::BadLine {
            line: self.lines + 1,
            source,
        })?;
        self.buf.push(b'\n');
        // Never write what a reader would refuse.
        if self.buf.len() > MAX_LINE {
            return Err(SnapshotError::LineTooLong {
                line: self.lines + 1,
            });
        }
        Ok(())
    }

    fn line(&mut self, line: &Line) -> Result<(), SnapshotError> {
        self.encode(line)?;
        self.hash.update(&self.buf);
        self.out.write_all(&self.buf)?;
        self.lines += 1;
        Ok(())
    }

    /// Writes the end line and flushes; the output and the number of lines.
    pub(super) fn finish(mut self) -> Result<(W, u64), SnapshotError> {
        let end = End {
            lines: self.lines,
            sha256: hex::encode(self.hash.finalize_reset()),
        };
        self.encode(&Line::End(end))?;
        self.out.write_all(&self.buf)?;
        self.out.flush()?;
        Ok((self.out, self.lines))
    }
}

/// Reads a snapshot file line by line, checking it as it goes; the checksum is checked at the
/// end line, so a caller must read to the end (`next_item` gives `None`) before it trusts what
/// it read.
pub(super) struct Reader<R: BufRead> {
    input: R,
    hash: Sha256,
    lines: u64,
    buf: Vec<u8>,
    ended: bool,
}

impl<R: BufRead> Reader<R> {
    /// Reads the header.
    pub(super) fn open(input: R) -> Result<(Self, Header), SnapshotError> {
        let mut r = Self {
            input,
            hash: Sha256::new(),
            lines: 0,
            buf: Vec::new(),
            ended: false,
        };
        if !r.read_line()? {
            return Err(SnapshotError::Empty);
        }
        let header = match serde_json::from_slice::<Line>(&r.buf) {
            Ok(Line::Header(h)) if h.format == FORMAT => h,
            Ok(Line::Header(h)) => return Err(SnapshotError::Format { found: h.format }),
            Ok(_) => {
                let source = <serde_json::Error as serde::de::Error>::custom("not a header");
                return Err(SnapshotError::Header { source });
            }
            Err(source) => {
                return Err(match serde_json::from_slice::<FormatOnly>(&r.buf) {
                    Ok(f) if f.header.format != FORMAT => SnapshotError::Format {
                        found: f.header.format,
                    },
                    _ => SnapshotError::Header { source },
                })
            }
        };
        r.hash.update(&r.buf);
        r.lines = 1;
        Ok((r, header))
    }

    /// The next item, or `None` once the end line has been read and checked.
    pub(super) fn next_item(&mut self) -> Result<Option<Item>, SnapshotError> {
        if self.ended {
            return Ok(None);
        }
        if !self.read_line()? {
            return Err(SnapshotError::Truncated { lines: self.lines });
        }
        let line = self.lines + 1;
        let parsed: Line = serde_json::from_slice(&self.buf)
            .map_err(|source| SnapshotError::BadLine { line, source })?;
        let item = match parsed {
            Line::Header(_) => return Err(SnapshotError::SecondHeader { line }),
            Line::End(end) => return self.end(end).map(|()| None),
            Line::Session(s) => Item::Record(Record::Session(s)),
            Line::Outbox(e) => Item::Record(Record::Outbox(e)),
            Line::Received(x) => Item::Record(Record::Received(x)),
            Line::Nonce(n) => Item::Record(Record::Nonce(n)),
            Line::Audit(ev) => Item::Audit(ev),
        };
        self.hash.update(&self.buf);
        self.lines = line;
        Ok(Some(item))
    }

    fn end(&mut self, end: End) -> Result<(), SnapshotError> {
        if end.lines != self.lines {
            return Err(SnapshotError::LineCount {
                counted: end.lines,
                found: self.lines,
            });
        }
        if end.sha256 != hex::encode(self.hash.finalize_reset()) {
            return Err(SnapshotError::Checksum);
        }
        if self.read_line()? {
            return Err(SnapshotError::AfterEnd {
                line: self.lines + 2,
            });
        }
        self.ended = true;
        Ok(())
    }

    /// Reads the next line into `buf`; false at the end of the input.
    fn read_line(&mut self) -> Result<bool, SnapshotError> {
        self.buf.clear();
        let n = (&mut self.input)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(false);
        }
        if self.buf.last() != Some(&b'\n') {
            return Err(if self.buf.len() >= MAX_LINE {
                SnapshotError::LineTooLong {
                    line: self.lines + 1,
                }
            } else {
                SnapshotError::Truncated { lines: self.lines }
            });
        }
        Ok(true)
    }
}

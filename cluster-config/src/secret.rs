//! Shared secrets (the cluster secret, federation send/receive secrets): how they are read from
//! files or the environment, and a [`Secret`] type that never prints its bytes.

use std::fmt;
use std::io;
use std::path::Path;

/// Shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;

/// The bytes of a shared secret. `Debug` and `Display` print `<redacted>`; the bytes are only
/// reachable through [`Secret::expose`], so they cannot end up in a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps secret bytes as they are (no trimming, no length check).
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    /// The secret bytes, for keying an HMAC.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret has no bytes (never true for a loaded config).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for Secret {
    fn from(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Reads a secret file: its content without trailing whitespace (so a final newline written by
/// an editor or `echo` is not part of the secret). The error is a reason to put after the key.
pub(crate) fn read_secret_file(path: &Path) -> Result<Secret, String> {
    let mut bytes = crate::files::read_bounded(path, crate::files::MAX_SECRET_BYTES)
        .map_err(|reason| format!("cannot read {}: {reason}", path.display()))?;
    trim_end(&mut bytes);
    if bytes.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    check_length(&bytes).map_err(|reason| format!("{} {reason}", path.display()))?;
    Ok(Secret(bytes))
}

/// Takes a secret given as an environment variable's value, trimmed like a file's content.
pub(crate) fn secret_from_value(value: &str) -> Result<Secret, String> {
    let mut bytes = value.as_bytes().to_vec();
    trim_end(&mut bytes);
    if bytes.is_empty() {
        return Err("is empty".to_owned());
    }
    check_length(&bytes)?;
    Ok(Secret(bytes))
}

fn trim_end(bytes: &mut Vec<u8>) {
    while bytes.last().is_some_and(|b| b.is_ascii_whitespace()) {
        bytes.pop();
    }
}

fn check_length(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "holds {} bytes; a secret must be at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)",
            bytes.len()
        ));
    }
    Ok(())
}

/// An I/O error's text without the `(os error N)` tail: `No such file or directory`.
pub(crate) fn io_reason(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let s = Secret::from_bytes("hunter2-hunter2-hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(s.expose(), b"hunter2-hunter2-hunter2");
        assert_eq!(s.len(), 23);
    }

    #[test]
    fn file_is_trimmed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "0123456789abcdef\r\n\n").unwrap();
        assert_eq!(read_secret_file(&p).unwrap().expose(), b"0123456789abcdef");

        std::fs::write(&p, " leading spaces are kept  \n").unwrap();
        assert_eq!(
            read_secret_file(&p).unwrap().expose(),
            b" leading spaces are kept"
        );

        std::fs::write(&p, "\n\n").unwrap();
        assert!(read_secret_file(&p).unwrap_err().ends_with("is empty"));

        std::fs::write(&p, "short\n").unwrap();
        assert!(read_secret_file(&p).unwrap_err().contains("holds 5 bytes"));

        let missing = dir.path().join("nope");
        let e = read_secret_file(&missing).unwrap_err();
        assert!(e.ends_with(": No such file or directory"), "{e}");
    }

    #[test]
    fn env_value_is_trimmed_and_checked() {
        assert_eq!(
            secret_from_value("0123456789abcdef\n").unwrap().expose(),
            b"0123456789abcdef"
        );
        assert_eq!(secret_from_value("  ").unwrap_err(), "is empty");
        assert!(secret_from_value("short").is_err());
    }
}

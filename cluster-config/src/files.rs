//! Reading the files a config names (the config itself, secrets, certificates): regular files
//! only, and no more than a bound, so a path to a device or a FIFO (`/dev/zero`, a pipe nobody
//! writes) or a huge file stops the node at start with a message instead of hanging it or
//! filling its memory.

use std::io::Read;
use std::path::Path;

use crate::secret::io_reason;

/// The most a config file may hold.
pub(crate) const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// The most a secret file may hold.
pub(crate) const MAX_SECRET_BYTES: u64 = 64 * 1024;
/// The most a PEM file (certificates, a key) may hold.
pub(crate) const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// The content of the regular file at `path`, if it holds at most `max` bytes; the error is
/// why not (`No such file or directory`, `not a regular file`, `larger than 65536 bytes`), for
/// the caller to put after the path.
pub(crate) fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let cannot = |e: std::io::Error| io_reason(&e);
    // The type is checked before opening: opening a FIFO would wait for a writer.
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if !meta.is_file() {
        return Err("not a regular file".to_owned());
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(cannot)?
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > max {
        return Err(format!("larger than {max} bytes"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_or_a_file_past_the_bound_is_refused_not_read() {
        let err = read_bounded(Path::new("/dev/zero"), 16).unwrap_err();
        assert_eq!(err, "not a regular file");
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            read_bounded(dir.path(), 16).unwrap_err(),
            "not a regular file"
        );
        let f = dir.path().join("big");
        std::fs::write(&f, [b'x'; 17]).unwrap();
        assert_eq!(read_bounded(&f, 16).unwrap_err(), "larger than 16 bytes");
        assert_eq!(read_bounded(&f, 17).unwrap().len(), 17);
        let missing = read_bounded(&dir.path().join("none"), 16).unwrap_err();
        assert_eq!(missing, "No such file or directory");
    }
}

//! Which release and build this node is: shown by `--version`, `GET /cluster/status` and the
//! `sessync_build_info` metric, so an operator sees the versions side by side during a rolling
//! upgrade.

/// The release: the crate's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The build: the source commit's short hash (`-dirty` with local changes), or `unknown`
/// (recorded by `build.rs`).
pub const BUILD: &str = env!("SESSYNC_BUILD");
/// What `sessync-node --version` prints after the name.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (build ",
    env!("SESSYNC_BUILD"),
    ")"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_line_names_the_release_and_the_build() {
        assert!(!BUILD.is_empty());
        assert_eq!(VERSION_LINE, format!("{VERSION} (build {BUILD})"));
    }
}

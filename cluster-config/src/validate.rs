//! Checks and conversions of single values (addresses, URLs, hashes, names, log filters). Each
//! returns the reason for a failure; the caller reports it under the key.

use std::net::SocketAddr;

use sessync_proto::SiteName;

/// Longest API key name accepted, in bytes.
pub const MAX_KEY_NAME_BYTES: usize = 64;

const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];

/// A site name (lowercase ASCII letters, digits, '-', '_'; 1–64 bytes).
pub(crate) fn site_name(raw: &str) -> Result<SiteName, String> {
    SiteName::parse_field(raw, "").map_err(|e| format!("{raw:?} {}", e.reason))
}

/// An IP address and port such as `127.0.0.1:7101` or `[::]:7101`.
pub(crate) fn listen_addr(raw: &str) -> Result<SocketAddr, String> {
    raw.trim().parse().map_err(|_| {
        format!("{raw:?} is not an IP address and port such as 127.0.0.1:7101 or [::]:7101")
    })
}

/// A base URL `http(s)://host[:port][/prefix]`, returned without trailing slashes.
pub(crate) fn base_url(raw: &str) -> Result<String, String> {
    let url = raw.trim();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{raw:?} must start with http:// or https://"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("{raw:?} has no host"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{raw:?} must not contain spaces"));
    }
    if url.contains(['?', '#']) {
        return Err(format!("{raw:?} must be a base URL, without '?' or '#'"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// A SHA-256 written as 64 hex characters. The value is not echoed: a user who pasted the key
/// itself instead of its hash must not find the key in a log.
pub(crate) fn sha256_hex(raw: &str) -> Result<[u8; 32], String> {
    let raw = raw.trim();
    let hint = "(the SHA-256 of the key: `printf %s KEY | sha256sum`)";
    if raw.len() != 64 {
        return Err(format!(
            "must be 64 hex characters {hint}, not {} characters",
            raw.chars().count()
        ));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(raw, &mut out)
        .map_err(|_| format!("must be 64 hex characters {hint}; it has others"))?;
    Ok(out)
}

/// A name for an API key, shown in logs and audit events.
pub(crate) fn key_name(raw: &str) -> Result<String, String> {
    if raw.trim().is_empty() {
        return Err("must not be empty".to_owned());
    }
    if raw.len() > MAX_KEY_NAME_BYTES {
        return Err(format!("must be at most {MAX_KEY_NAME_BYTES} bytes long"));
    }
    if raw.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(raw.to_owned())
}

/// A `tracing` EnvFilter string such as `info` or `warn,sessync_node=debug`. Only the parts
/// that are surely wrong are refused (empty, spaces, an unknown level after `=`); the node
/// parses the whole filter at start.
pub(crate) fn log_filter(raw: &str) -> Result<String, String> {
    let filter = raw.trim();
    if filter.is_empty() {
        return Err("must not be empty (e.g. \"info\")".to_owned());
    }
    for directive in filter.split(',').filter(|d| !d.is_empty()) {
        if directive.contains(char::is_whitespace) {
            return Err(format!("{raw:?}: directive {directive:?} contains a space"));
        }
        if directive.contains('[') {
            continue;
        }
        if let Some((_, level)) = directive.rsplit_once('=') {
            if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
                return Err(format!(
                    "{raw:?}: {level:?} is not a level (use {})",
                    LEVELS.join(", ")
                ));
            }
        }
    }
    Ok(filter.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            base_url("http://127.0.0.1:7101/").as_deref(),
            Ok("http://127.0.0.1:7101")
        );
        assert_eq!(
            base_url("https://sessync.example.com").as_deref(),
            Ok("https://sessync.example.com")
        );
        assert!(base_url("127.0.0.1:7101").is_err());
        assert!(base_url("http://").is_err());
        assert!(base_url("http:///x").is_err());
        assert!(base_url("http://a b").is_err());
        assert!(base_url("ftp://host").is_err());
    }

    #[test]
    fn listen_addresses() {
        assert!(listen_addr("127.0.0.1:7101").is_ok());
        assert!(listen_addr("[::]:7101").is_ok());
        assert!(listen_addr("localhost:7101").is_err());
        assert!(listen_addr("127.0.0.1").is_err());
    }

    #[test]
    fn hashes() {
        let h = "a".repeat(64);
        assert_eq!(sha256_hex(&h), Ok([0xaa; 32]));
        assert_eq!(sha256_hex(&h.to_uppercase()), Ok([0xaa; 32]));
        let e = sha256_hex("my-secret-api-key").unwrap_err();
        assert!(e.starts_with("must be 64 hex characters"), "{e}");
        assert!(!e.contains("my-secret-api-key"), "the value leaked: {e}");
        assert!(sha256_hex(&"g".repeat(64)).is_err());
    }

    #[test]
    fn names_and_filters() {
        assert!(key_name("webapp").is_ok());
        assert!(key_name(" ").is_err());
        assert!(key_name(&"x".repeat(65)).is_err());
        assert!(site_name("site-a").is_ok());
        assert!(site_name("Site A").is_err());
        assert!(log_filter("info").is_ok());
        assert!(log_filter("warn,sessync_node=debug,openraft=info").is_ok());
        assert!(log_filter("sessync_node[req{id=1}]=trace").is_ok());
        assert!(log_filter("sessync_node=verbose").is_err());
        assert!(log_filter("").is_err());
        assert!(log_filter("info debug").is_err());
    }
}

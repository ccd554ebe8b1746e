//! Turning the caller's values into URLs: endpoint base URLs, and percent-encoded path
//! segments and query values.

use crate::error::ClientError;

/// Checks that an endpoint is an http(s) base URL and drops trailing slashes.
pub(crate) fn normalize_endpoint(raw: &str) -> Result<String, ClientError> {
    let trimmed = raw.trim().trim_end_matches('/');
    let url = reqwest::Url::parse(trimmed)
        .map_err(|e| ClientError::InvalidArgument(format!("endpoint `{raw}`: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ClientError::InvalidArgument(format!(
            "endpoint `{raw}` is not an http:// or https:// URL"
        )));
    }
    Ok(trimmed.to_owned())
}

/// Percent-encodes `s` for use as one path segment or query value: everything but the
/// unreserved characters of RFC 3986 is escaped.
pub(crate) fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_percent_encoded() {
        assert_eq!(encode_component("alice"), "alice");
        assert_eq!(encode_component("a b/c?d#e%"), "a%20b%2Fc%3Fd%23e%25");
        assert_eq!(encode_component("ü"), "%C3%BC");
        assert_eq!(encode_component("a-b.c_d~e"), "a-b.c_d~e");
        assert_eq!(encode_component("x+y@z:1"), "x%2By%40z%3A1");
    }
}

//! Validated identifiers: a `UserId`, a `SessionId` and a `SiteName` are never bare strings.
//!
//! Each is checked once where it enters (a request body, a path, a config file) and carries its
//! validity from then on. A failed check is a [`FieldError`] naming the field and the reason.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::FieldError;

/// Longest `user_id` accepted, in bytes of UTF-8.
pub const MAX_USER_ID_BYTES: usize = 256;
/// Longest session id accepted in a path or body, in bytes.
pub const MAX_SESSION_ID_BYTES: usize = 64;
/// Longest operation id accepted, in bytes.
pub const MAX_OP_ID_BYTES: usize = 64;
/// Longest site name accepted, in bytes.
pub const MAX_SITE_NAME_BYTES: usize = 64;

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// The rule of made-up handles (session ids, operation ids, nonces): 1 to `max` bytes of ASCII
/// letters, digits, '_' and '-'.
pub fn check_handle(raw: &str, field: &str, max: usize) -> Result<String, FieldError> {
    if raw.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if raw.len() > max {
        return Err(FieldError::new(
            field,
            format!("is {} bytes long; the limit is {max}", raw.len()),
        ));
    }
    if !raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(FieldError::new(
            field,
            "may contain only ASCII letters, digits, '_' and '-'",
        ));
    }
    Ok(raw.to_owned())
}

/// The app's key for a person: 1–256 bytes of UTF-8 without control characters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(Arc<str>);

impl UserId {
    /// Checks `raw` against the spec's rules; `field` names it in the error.
    pub fn parse_field(raw: &str, field: &str) -> Result<Self, FieldError> {
        if raw.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        if raw.len() > MAX_USER_ID_BYTES {
            return Err(FieldError::new(
                field,
                format!(
                    "is {} bytes long; the limit is {MAX_USER_ID_BYTES}",
                    raw.len()
                ),
            ));
        }
        if has_control(raw) {
            return Err(FieldError::new(
                field,
                "must not contain control characters",
            ));
        }
        Ok(Self(raw.into()))
    }
}

/// The public handle of a session: safe to show and log, unlike its token.
///
/// Made by the leader as `s_` followed by 32 lowercase hex digits (128 random bits).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId(Arc<str>);

impl SessionId {
    /// Builds the id from 16 random bytes chosen by the leader.
    pub fn from_random(bytes: [u8; 16]) -> Self {
        Self(format!("s_{}", hex32(bytes)).into())
    }

    /// Checks a session id that arrived in a path or a body.
    pub fn parse_field(raw: &str, field: &str) -> Result<Self, FieldError> {
        check_handle(raw, field, MAX_SESSION_ID_BYTES).map(|s| Self(s.into()))
    }
}

/// The id of one federated operation (a verify or invalidate sent to peer sites): the same at
/// the origin and at every target, so a repeated delivery is recognised and applied only once.
///
/// Made by the origin's leader as `op_` followed by 32 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OpId(Arc<str>);

impl OpId {
    /// Builds the id from 16 random bytes chosen by the leader.
    pub fn from_random(bytes: [u8; 16]) -> Self {
        Self(format!("op_{}", hex32(bytes)).into())
    }

    /// Checks an operation id that arrived in a body.
    pub fn parse_field(raw: &str, field: &str) -> Result<Self, FieldError> {
        check_handle(raw, field, MAX_OP_ID_BYTES).map(|s| Self(s.into()))
    }
}

fn hex32(bytes: [u8; 16]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The name of a site (one sessync Raft cluster) in the federation: 1–64 bytes of
/// lowercase ASCII letters, digits, '-' and '_'.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SiteName(Arc<str>);

impl SiteName {
    /// Checks a site name; `field` names it in the error.
    pub fn parse_field(raw: &str, field: &str) -> Result<Self, FieldError> {
        if raw.is_empty() || raw.len() > MAX_SITE_NAME_BYTES {
            return Err(FieldError::new(
                field,
                format!("must be 1 to {MAX_SITE_NAME_BYTES} bytes long"),
            ));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(FieldError::new(
                field,
                "may contain only lowercase ASCII letters, digits, '-' and '_'",
            ));
        }
        Ok(Self(raw.into()))
    }
}

/// What every identifier shares (each holds its text as an `Arc<str>`, so the copies the
/// session store's indexes keep of an id share one allocation): `as_str`, the conversion from a `String` through its check
/// (so serde validates), back to a `String`, and `Display` as the plain text.
macro_rules! string_id {
    ($ty:ident, $field:literal) => {
        impl $ty {
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $ty {
            type Error = FieldError;
            fn try_from(s: String) -> Result<Self, FieldError> {
                Self::parse_field(&s, $field)
            }
        }

        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                String::from(&*v.0)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(UserId, "user_id");
string_id!(SessionId, "session_id");
string_id!(SiteName, "site");
string_id!(OpId, "op_id");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_id_rules() {
        assert!(UserId::parse_field("alice", "user_id").is_ok());
        assert!(UserId::parse_field("ünïcødé 42", "user_id").is_ok());
        let e = UserId::parse_field("", "user_id").unwrap_err();
        assert_eq!(e.field, "user_id");
        assert!(UserId::parse_field(&"x".repeat(257), "user_id").is_err());
        assert!(UserId::parse_field(&"x".repeat(256), "user_id").is_ok());
        assert!(UserId::parse_field("a\nb", "user_id").is_err());
    }

    #[test]
    fn session_id_shape() {
        let id = SessionId::from_random([0xab; 16]);
        assert_eq!(id.as_str().len(), 34);
        assert!(SessionId::parse_field(id.as_str(), "session_id").is_ok());
        assert!(SessionId::parse_field("../etc", "session_id").is_err());
    }

    #[test]
    fn site_name_rules() {
        assert!(SiteName::parse_field("site-a", "site").is_ok());
        assert!(SiteName::parse_field("Site A", "site").is_err());
    }

    #[test]
    fn serde_validates() {
        let r: Result<UserId, _> = serde_json::from_str("\"\"");
        assert!(r.is_err());
        let u: UserId = serde_json::from_str("\"bob\"").unwrap();
        assert_eq!(serde_json::to_string(&u).unwrap(), "\"bob\"");
    }
}

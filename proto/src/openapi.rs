//! JSON Schemas (for the node's OpenAPI document) of the types whose JSON form is not their
//! Rust shape: the validated ids, which are strings with rules, and cluster time, an RFC 3339
//! string. Every other wire type derives its schema next to its definition.

use std::borrow::Cow;

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::ids::{
    OpId, SessionId, SiteName, UserId, MAX_OP_ID_BYTES, MAX_SESSION_ID_BYTES, MAX_SITE_NAME_BYTES,
    MAX_USER_ID_BYTES,
};
use crate::time::Timestamp;

/// A string schema of `min..=max` bytes (lengths are counted in bytes by the node).
fn text(min: usize, max: usize, pattern: Option<&str>, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(pattern)
        .description(Some(description))
        .into()
}

/// Implements the schema of `$t` as `$schema`, named `$t`.
macro_rules! schema {
    ($t:ty, $name:literal, $schema:expr) => {
        impl PartialSchema for $t {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }
        impl ToSchema for $t {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

schema!(
    UserId,
    "UserId",
    text(
        1,
        MAX_USER_ID_BYTES,
        None,
        "The app's key for a person: UTF-8 without control characters"
    )
);
schema!(
    SessionId,
    "SessionId",
    text(
        1,
        MAX_SESSION_ID_BYTES,
        Some("^[A-Za-z0-9_-]+$"),
        "A session's public handle (`s_` and 32 hex digits when the node made it)"
    )
);
schema!(
    OpId,
    "OpId",
    text(
        1,
        MAX_OP_ID_BYTES,
        Some("^[A-Za-z0-9_-]+$"),
        "A federation operation's id, the same at every site it reaches"
    )
);
schema!(
    SiteName,
    "SiteName",
    text(
        1,
        MAX_SITE_NAME_BYTES,
        Some("^[a-z0-9_-]+$"),
        "A cluster's name in the federation"
    )
);
schema!(
    Timestamp,
    "Timestamp",
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .description(Some("Cluster time: RFC 3339 UTC with milliseconds"))
        .examples(["2026-11-23T15:33:24.120Z"])
        .into()
);

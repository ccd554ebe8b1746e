//! A session as the API shows it: one login of one user on one device.

use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::ids::{SessionId, UserId};
use crate::time::Timestamp;

/// Longest value of any device field and of `origin`, in bytes.
pub const MAX_DEVICE_FIELD_BYTES: usize = 512;

/// Where a session lives in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Valid: validate answers `valid: true` until it ends.
    Active,
    /// Created over the limit under `on_limit = "block_new"`: valid only after a verify.
    Blocked,
    /// Over; `end_reason` says why.
    Ended,
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The user logged out (DELETE with an app key).
    Logout,
    /// Unused for longer than the idle timeout.
    IdleTimeout,
    /// Older than the maximum lifetime.
    MaxLifetime,
    /// The least recently used session, dropped for a new login under `evict_oldest`.
    Evicted,
    /// A verify chose another session of the user.
    Superseded,
    /// An invalidate call, local or from a peer site.
    Invalidated,
    /// Ended by an operator (DELETE with an admin key).
    Admin,
}

impl EndReason {
    /// The snake_case name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Logout => "logout",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::MaxLifetime => "max_lifetime",
            EndReason::Evicted => "evicted",
            EndReason::Superseded => "superseded",
            EndReason::Invalidated => "invalidated",
            EndReason::Admin => "admin",
        }
    }
}

/// The device a session was created on, as the app describes it. Every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Device {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

impl Device {
    /// Checks every field's size and content.
    pub fn validate(&self) -> Result<(), FieldError> {
        for (name, v) in [
            ("device.name", &self.name),
            ("device.id", &self.id),
            ("device.user_agent", &self.user_agent),
            ("device.ip", &self.ip),
        ] {
            if let Some(v) = v {
                check_text_field(name, v, MAX_DEVICE_FIELD_BYTES)?;
            }
        }
        Ok(())
    }
}

/// Checks a free-text field: at most `max` bytes and no control characters.
pub fn check_text_field(field: &str, v: &str, max: usize) -> Result<(), FieldError> {
    if v.len() > max {
        return Err(FieldError::new(
            field,
            format!("is {} bytes long; the limit is {max}", v.len()),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// A session as every endpoint returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionView {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub state: SessionState,
    pub end_reason: Option<EndReason>,
    pub device: Device,
    pub origin: Option<String>,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// When the session ends if it is not used again.
    pub idle_expires_at: Timestamp,
    /// When the session ends however active it is.
    pub expires_at: Timestamp,
    pub ended_at: Option<Timestamp>,
}

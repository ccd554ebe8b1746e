//! The error body every endpoint answers with, and its codes.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::session::SessionView;

/// A problem with one field of a request: which field, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} {reason}")]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// The machine-readable error codes of the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    AlreadyInitialized,
    LimitReached,
    PayloadTooLarge,
    /// The request (its body) did not arrive in time.
    RequestTimeout,
    /// A peer site's queue of undelivered operations is full: nothing was changed.
    OutboxFull,
    /// A peer site's operation is older than this site remembers the operations it applied
    /// (`audit_retention`): it is refused, so it can never be applied twice.
    OpExpired,
    /// A peer site has as many operations remembered here as `federation.max_received_per_peer`
    /// allows: refused until older ones are forgotten.
    ReceivedFull,
    Unavailable,
    /// This node's clock, or the leader's, is off the voters' median by more than
    /// `max_clock_skew`: nothing was stamped and no session was judged by it.
    ClockSkew,
    Internal,
}

impl ErrorCode {
    /// The HTTP status that goes with the code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict | ErrorCode::AlreadyInitialized | ErrorCode::LimitReached => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::OutboxFull | ErrorCode::ReceivedFull => 429,
            ErrorCode::OpExpired => 410,
            ErrorCode::Unavailable | ErrorCode::ClockSkew => 503,
            ErrorCode::Internal => 500,
        }
    }

    /// The snake_case name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::AlreadyInitialized => "already_initialized",
            ErrorCode::LimitReached => "limit_reached",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::OutboxFull => "outbox_full",
            ErrorCode::OpExpired => "op_expired",
            ErrorCode::ReceivedFull => "received_full",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::ClockSkew => "clock_skew",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"error": {...}}`: the body of every error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// A human sentence; for `bad_request` it names the field.
    pub message: String,
    /// The field at fault, for `bad_request`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `limit_reached`: the user's active sessions, so a UI can offer to end one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_sessions: Option<Vec<SessionView>>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code,
                message: message.into(),
                field: None,
                active_sessions: None,
            },
        }
    }

    /// A `bad_request` naming the field.
    pub fn bad_field(e: &FieldError) -> Self {
        let mut b = Self::new(
            ErrorCode::BadRequest,
            format!("field `{}` {}", e.field, e.reason),
        );
        b.error.field = Some(e.field.clone());
        b
    }
}

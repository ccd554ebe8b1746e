//! The API's error type: a status and the spec's `{"error": {code, message}}` body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use sessync_proto::{ErrorBody, ErrorCode, FieldError, SessionView};

use crate::runtime::RuntimeError;
use crate::store::ReadError;

/// An error answer of the HTTP API.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) body: ErrorBody,
}

impl ApiError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            body: ErrorBody::new(code, message),
        }
    }

    pub(crate) fn field(e: &FieldError) -> Self {
        Self {
            body: ErrorBody::bad_field(e),
        }
    }

    pub(crate) fn bad_request(field: &str, reason: impl Into<String>) -> Self {
        Self::field(&FieldError::new(field, reason))
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    pub(crate) fn too_large(limit: usize) -> Self {
        Self::new(
            ErrorCode::PayloadTooLarge,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    /// 409 `limit_reached` with the user's active sessions.
    pub(crate) fn limit_reached(limit: u32, active: Vec<SessionView>) -> Self {
        let mut e = Self::new(
            ErrorCode::LimitReached,
            format!(
                "the user already has {} active sessions and the limit is {limit}; end one or verify to continue",
                active.len()
            ),
        );
        e.body.error.active_sessions = Some(active);
        e
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.body.error.code.status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body)).into_response()
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self::field(&e)
    }
}

impl ApiError {
    /// A failed read of `what` on disk: 503 while a snapshot is being installed (retry), 500
    /// for a storage error.
    pub(crate) fn from_read(what: &str, e: ReadError) -> Self {
        match e {
            ReadError::Installing => Self::unavailable(e.to_string()),
            ReadError::Storage(e) => Self::internal(format!("cannot read {what}: {e}")),
        }
    }
}

/// A runtime failure is the caller's cue to retry (another node, or in a moment): 503; except
/// a hand-over asked for a node that cannot take over (400, naming `to`) or while another runs
/// (409).
impl From<RuntimeError> for ApiError {
    fn from(e: RuntimeError) -> Self {
        match e {
            RuntimeError::NoLeader
            | RuntimeError::NoQuorum { .. }
            | RuntimeError::LeadershipMoved { .. }
            | RuntimeError::LeaderUnreachable { .. }
            | RuntimeError::Raft(_)
            | RuntimeError::Overloaded { .. }
            | RuntimeError::ShuttingDown
            | RuntimeError::NoCaughtUpVoter { .. }
            | RuntimeError::TargetUnreachable { .. }
            | RuntimeError::TransferTimedOut { .. }
            | RuntimeError::Draining { .. } => Self::unavailable(e.to_string()),
            RuntimeError::ClockSkew { .. } => Self::new(ErrorCode::ClockSkew, e.to_string()),
            RuntimeError::AlreadyInitialized => {
                Self::new(ErrorCode::AlreadyInitialized, e.to_string())
            }
            RuntimeError::UnknownNode { .. } | RuntimeError::NotAVoter { .. } => {
                Self::bad_request("to", e.to_string())
            }
            RuntimeError::TransferUnderWay => Self::conflict(e.to_string()),
        }
    }
}

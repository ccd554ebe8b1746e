//! [`ClientError`]: every way a call can fail, and how an HTTP status plus the node's
//! `{"error": {...}}` body map onto it.
//!
//! The mapping is a pure function of the status code and the body bytes
//! ([`ClientError::from_response`]), so it is unit-tested without a server.

use serde::Deserialize;
use sessync_proto::{ErrorBody, ErrorCode, SessionView};

/// Longest piece of an unexpected body quoted in an error message, in characters.
const MAX_QUOTED_BODY: usize = 300;

/// Why a call failed.
///
/// The API's error codes each have their own variant; [`ClientError::Api`] holds any other
/// status. [`ClientError::Transport`] and [`ClientError::Unavailable`] are the ones a caller may
/// retry later (see [`ClientError::is_unavailable`]).
///
/// # Example
///
/// ```no_run
/// # async fn demo() -> Result<(), sessync_client::ClientError> {
/// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
/// use sessync_client::ClientError;
/// let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
/// match client.get_session(&id).await {
///     Ok(s) => println!("{:?}", s.state),
///     Err(ClientError::NotFound { message }) => println!("gone: {message}"),
///     Err(e) if e.is_unavailable() => println!("retry later: {e}"),
///     Err(e) => return Err(e),
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// 404 `not_found`: no such session (or path).
    #[error("not found: {message}")]
    NotFound {
        /// The node's explanation.
        message: String,
    },
    /// 409 `limit_reached`: the login was refused under `on_limit = "deny"`.
    #[error("limit reached: {message}")]
    LimitReached {
        /// The node's explanation.
        message: String,
        /// The user's active sessions, so a UI can offer to end one.
        active_sessions: Vec<SessionView>,
    },
    /// 401 `unauthorized`: the API key is missing or wrong.
    #[error("unauthorized: {message}")]
    Unauthorized {
        /// The node's explanation.
        message: String,
    },
    /// 403 `forbidden`: the API key is right but its role may not use this endpoint.
    #[error("forbidden: {message}")]
    Forbidden {
        /// The node's explanation.
        message: String,
    },
    /// 400 `bad_request`: a field of the request is wrong.
    #[error("bad request: {message}")]
    BadRequest {
        /// The field at fault, when the node named one.
        field: Option<String>,
        /// The node's explanation.
        message: String,
    },
    /// A 409 other than `limit_reached`, e.g. `already_initialized` from `POST /cluster/init`.
    #[error("conflict ({code}): {message}")]
    Conflict {
        /// The code the node gave (`conflict` when the body had none).
        code: ErrorCode,
        /// The node's explanation.
        message: String,
    },
    /// 413 `payload_too_large`: the request body is over the node's limit.
    #[error("payload too large: {message}")]
    PayloadTooLarge {
        /// The node's explanation.
        message: String,
    },
    /// 503 `unavailable`: the node has no quorum or no leader (after every retry).
    #[error("unavailable: {message}")]
    Unavailable {
        /// The node's explanation.
        message: String,
    },
    /// 503 `clock_skew`: the node's clock, or its leader's, is off the voters' median by more
    /// than `max_clock_skew`; nothing was stamped. Another node (or a later try) may answer.
    #[error("clock skew: {message}")]
    ClockSkew {
        /// The node's explanation.
        message: String,
    },
    /// Any other error status.
    #[error("HTTP {status}{}: {message}", code.map(|c| format!(" ({c})")).unwrap_or_default())]
    Api {
        /// The HTTP status code.
        status: u16,
        /// The code from the error body; `None` when the body was not an API error body or
        /// named a code this client does not know (the message then starts with it).
        code: Option<ErrorCode>,
        /// The node's explanation, or the start of the body.
        message: String,
    },
    /// No answer: connection refused or reset, DNS failure, or the per-call deadline passed.
    #[error("transport: {0}")]
    Transport(String),
    /// A success status whose body is not what the endpoint answers.
    #[error("cannot decode the answer: {0}")]
    Decode(String),
    /// The caller's input cannot be sent: no endpoints, an endpoint that is not an http(s)
    /// URL, a pinned index out of range, or a user id that cannot be a path segment.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// The error body as loosely as it may come: an unknown code still yields its message.
#[derive(Deserialize)]
struct LooseBody {
    error: LooseDetail,
}

#[derive(Deserialize)]
struct LooseDetail {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    field: Option<String>,
}

impl ClientError {
    /// Maps an error answer (any non-2xx status) and its body to the matching variant.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// let e = sessync_client::ClientError::from_response(
    ///     404,
    ///     br#"{"error":{"code":"not_found","message":"no session s_1"}}"#,
    /// );
    /// println!("{e}");
    /// # Ok(()) }
    /// ```
    pub fn from_response(status: u16, body: &[u8]) -> ClientError {
        let (code, message, field, active_sessions) =
            match serde_json::from_slice::<ErrorBody>(body) {
                Ok(b) => (
                    Some(b.error.code),
                    b.error.message,
                    b.error.field,
                    b.error.active_sessions,
                ),
                Err(_) => match serde_json::from_slice::<LooseBody>(body) {
                    Ok(b) => {
                        let msg = b.error.message.unwrap_or_default();
                        let msg = match b.error.code {
                            Some(c) if msg.is_empty() => c,
                            Some(c) => format!("{c}: {msg}"),
                            None => msg,
                        };
                        (None, msg, b.error.field, None)
                    }
                    Err(_) => (None, quote_body(status, body), None, None),
                },
            };
        match (status, code) {
            (_, Some(ErrorCode::LimitReached)) => ClientError::LimitReached {
                message,
                active_sessions: active_sessions.unwrap_or_default(),
            },
            (404, _) => ClientError::NotFound { message },
            (401, _) => ClientError::Unauthorized { message },
            (403, _) => ClientError::Forbidden { message },
            (400, _) => ClientError::BadRequest { field, message },
            (409, code) => ClientError::Conflict {
                code: code.unwrap_or(ErrorCode::Conflict),
                message,
            },
            (413, _) => ClientError::PayloadTooLarge { message },
            (503, Some(ErrorCode::ClockSkew)) => ClientError::ClockSkew { message },
            (503, _) => ClientError::Unavailable { message },
            (status, code) => ClientError::Api {
                status,
                code,
                message,
            },
        }
    }

    /// True for [`ClientError::Unavailable`], [`ClientError::ClockSkew`] and
    /// [`ClientError::Transport`]: the cluster (or the network, or this node's clock) could not
    /// answer now; the same call may succeed later or on another node.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// match client.get_session(&id).await {
    ///     Err(e) if e.is_unavailable() => println!("no quorum right now; retry later"),
    ///     other => println!("{other:?}"),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            ClientError::Unavailable { .. }
                | ClientError::ClockSkew { .. }
                | ClientError::Transport(_)
        )
    }

    /// The HTTP status this error came with, if it came from an answer.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// if let Err(e) = client.get_session(&id).await {
    ///     println!("HTTP status: {:?}", e.status());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn status(&self) -> Option<u16> {
        Some(match self {
            ClientError::NotFound { .. } => 404,
            ClientError::LimitReached { .. } | ClientError::Conflict { .. } => 409,
            ClientError::Unauthorized { .. } => 401,
            ClientError::Forbidden { .. } => 403,
            ClientError::BadRequest { .. } => 400,
            ClientError::PayloadTooLarge { .. } => 413,
            ClientError::Unavailable { .. } | ClientError::ClockSkew { .. } => 503,
            ClientError::Api { status, .. } => *status,
            ClientError::Transport(_)
            | ClientError::Decode(_)
            | ClientError::InvalidArgument(_) => return None,
        })
    }

    /// The API error code this error stands for, if any.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessync_client::ClientError> {
    /// # let client = sessync_client::Client::new(vec!["http://127.0.0.1:7101".into()], "app-key")?;
    /// # let user = sessync_proto::UserId::parse_field("alice", "user_id").unwrap();
    /// # let id = sessync_proto::SessionId::parse_field("s_0123456789abcdef0123456789abcdef", "session_id").unwrap();
    /// if let Err(e) = client.get_session(&id).await {
    ///     println!("error code: {:?}", e.code());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::NotFound { .. } => Some(ErrorCode::NotFound),
            ClientError::LimitReached { .. } => Some(ErrorCode::LimitReached),
            ClientError::Unauthorized { .. } => Some(ErrorCode::Unauthorized),
            ClientError::Forbidden { .. } => Some(ErrorCode::Forbidden),
            ClientError::BadRequest { .. } => Some(ErrorCode::BadRequest),
            ClientError::Conflict { code, .. } => Some(*code),
            ClientError::PayloadTooLarge { .. } => Some(ErrorCode::PayloadTooLarge),
            ClientError::Unavailable { .. } => Some(ErrorCode::Unavailable),
            ClientError::ClockSkew { .. } => Some(ErrorCode::ClockSkew),
            ClientError::Api { code, .. } => *code,
            ClientError::Transport(_)
            | ClientError::Decode(_)
            | ClientError::InvalidArgument(_) => None,
        }
    }
}

/// A message for a body that is not an API error body: the start of its text, or the status.
fn quote_body(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return format!("HTTP status {status} with an empty body");
    }
    let mut quoted: String = text.chars().take(MAX_QUOTED_BODY).collect();
    if quoted.len() < text.len() {
        quoted.push('…');
    }
    quoted
}

/// Formats a reqwest error with its chain of causes, which is where "connection refused" is.
pub(crate) fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: &str, message: &str) -> Vec<u8> {
        serde_json::json!({"error": {"code": code, "message": message}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn maps_each_code() {
        assert_eq!(
            ClientError::from_response(404, &body("not_found", "no session s_1")),
            ClientError::NotFound {
                message: "no session s_1".into()
            }
        );
        assert!(matches!(
            ClientError::from_response(401, &body("unauthorized", "m")),
            ClientError::Unauthorized { .. }
        ));
        assert!(matches!(
            ClientError::from_response(403, &body("forbidden", "m")),
            ClientError::Forbidden { .. }
        ));
        assert!(matches!(
            ClientError::from_response(413, &body("payload_too_large", "m")),
            ClientError::PayloadTooLarge { .. }
        ));
        let e = ClientError::from_response(503, &body("unavailable", "no quorum"));
        assert_eq!(
            e,
            ClientError::Unavailable {
                message: "no quorum".into()
            }
        );
        assert!(e.is_unavailable());
        assert_eq!(e.status(), Some(503));
    }

    #[test]
    fn bad_request_keeps_field() {
        let b = serde_json::json!({"error": {"code": "bad_request",
            "message": "field `user_id` must not be empty", "field": "user_id"}});
        let e = ClientError::from_response(400, b.to_string().as_bytes());
        assert_eq!(
            e,
            ClientError::BadRequest {
                field: Some("user_id".into()),
                message: "field `user_id` must not be empty".into()
            }
        );
    }

    #[test]
    fn limit_reached_carries_sessions() {
        let session = serde_json::json!({
            "session_id": "s_0123", "user_id": "alice", "state": "active", "end_reason": null,
            "device": {"name": "phone"}, "origin": null,
            "created_at": "2026-01-01T00:00:00.000Z", "last_seen_at": "2026-01-01T00:00:00.000Z",
            "idle_expires_at": "2026-01-01T00:15:00.000Z", "expires_at": "2026-01-01T08:00:00.000Z",
            "ended_at": null
        });
        let b = serde_json::json!({"error": {"code": "limit_reached", "message": "limit 1",
            "active_sessions": [session]}});
        match ClientError::from_response(409, b.to_string().as_bytes()) {
            ClientError::LimitReached {
                message,
                active_sessions,
            } => {
                assert_eq!(message, "limit 1");
                assert_eq!(active_sessions.len(), 1);
                assert_eq!(active_sessions[0].user_id.as_str(), "alice");
            }
            other => panic!("unexpected {other:?}"),
        }
        // Without the list it is still a limit.
        assert!(matches!(
            ClientError::from_response(409, &body("limit_reached", "m")),
            ClientError::LimitReached { active_sessions, .. } if active_sessions.is_empty()
        ));
    }

    #[test]
    fn other_conflicts_keep_code() {
        let e = ClientError::from_response(409, &body("already_initialized", "already"));
        assert_eq!(
            e,
            ClientError::Conflict {
                code: ErrorCode::AlreadyInitialized,
                message: "already".into()
            }
        );
        assert_eq!(e.code(), Some(ErrorCode::AlreadyInitialized));
        // A 409 without a body is a plain conflict.
        assert!(matches!(
            ClientError::from_response(409, b""),
            ClientError::Conflict {
                code: ErrorCode::Conflict,
                ..
            }
        ));
    }

    #[test]
    fn other_statuses_and_odd_bodies() {
        assert_eq!(
            ClientError::from_response(500, &body("internal", "boom")),
            ClientError::Api {
                status: 500,
                code: Some(ErrorCode::Internal),
                message: "boom".into()
            }
        );
        // An unknown code keeps its name in the message.
        assert_eq!(
            ClientError::from_response(405, &body("method_not_allowed", "use POST")),
            ClientError::Api {
                status: 405,
                code: None,
                message: "method_not_allowed: use POST".into()
            }
        );
        // Not JSON at all: the text is quoted, an empty body names the status.
        assert_eq!(
            ClientError::from_response(502, b"Bad Gateway"),
            ClientError::Api {
                status: 502,
                code: None,
                message: "Bad Gateway".into()
            }
        );
        let e = ClientError::from_response(404, b"");
        assert_eq!(
            e,
            ClientError::NotFound {
                message: "HTTP status 404 with an empty body".into()
            }
        );
        let long = "x".repeat(1000);
        match ClientError::from_response(500, long.as_bytes()) {
            ClientError::Api { message, .. } => assert!(message.chars().count() <= 301),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn display_is_readable() {
        let e = ClientError::Api {
            status: 500,
            code: Some(ErrorCode::Internal),
            message: "boom".into(),
        };
        assert_eq!(e.to_string(), "HTTP 500 (internal): boom");
        assert_eq!(
            ClientError::Transport("connection refused".into()).to_string(),
            "transport: connection refused"
        );
        assert!(ClientError::Transport("x".into()).is_unavailable());
        assert!(!ClientError::Decode("x".into()).is_unavailable());
    }
}

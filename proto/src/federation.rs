//! What sites send each other: a verify or invalidate for one user, signed with the secret the
//! two sites share; and the federation status an operator reads.
//!
//! The wire protocol (see docs/federation.md): `POST /v1/federation/{verify,invalidate}` with a
//! [`PeerOpRequest`] body, its `Content-Length`, and six headers ([`SITE_HEADER`],
//! [`TARGET_SITE_HEADER`], [`TIMESTAMP_HEADER`], [`NONCE_HEADER`], [`CONTENT_SHA256_HEADER`],
//! [`SIGNATURE_HEADER`]), all signed, so the receiver checks the signature before it reads the
//! body. The receiver answers 200 with a [`PeerOpResponse`] once the operation is committed at
//! its site (or was already), which is the sender's ack; every answer to a signed request
//! carries [`ANSWER_SIGNATURE_HEADER`], so only the peer can acknowledge.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::ids::{check_handle, OpId, SessionId, SiteName, UserId};
use crate::time::Timestamp;

/// The sending site's name.
pub const SITE_HEADER: &str = "x-sessync-site";
/// When the request was signed: Unix time in milliseconds, decimal.
pub const TIMESTAMP_HEADER: &str = "x-sessync-timestamp";
/// A value never used before by the sender: 1–64 of ASCII letters, digits, '_' and '-'.
pub const NONCE_HEADER: &str = "x-sessync-nonce";
/// Lowercase hex HMAC-SHA256 of the signed string (see docs/federation.md).
pub const SIGNATURE_HEADER: &str = "x-sessync-signature";
/// The site the request is meant for (signed: a request for one peer is refused by another).
pub const TARGET_SITE_HEADER: &str = "x-sessync-target-site";
/// Lowercase hex SHA-256 of the body (signed, with the body's length, so the signature is
/// checked before a byte of the body is read).
pub const CONTENT_SHA256_HEADER: &str = "x-sessync-content-sha256";
/// On an answer to a signed request: lowercase hex HMAC-SHA256, under the secret the request
/// was signed with, of the request's nonce, the status and the SHA-256 of the answer's body.
pub const ANSWER_SIGNATURE_HEADER: &str = "x-sessync-answer-signature";
/// Longest nonce accepted, in bytes.
pub const MAX_NONCE_BYTES: usize = 64;

/// The two operations a site sends its peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PeerOpKind {
    /// A session of the user was verified at the origin: every session here ends `superseded`.
    Verify,
    /// End the named session here, or all of the user's sessions, with `invalidated`.
    Invalidate,
}

impl PeerOpKind {
    /// The endpoint a peer receives this operation at.
    pub fn path(self) -> &'static str {
        match self {
            PeerOpKind::Verify => "/v1/federation/verify",
            PeerOpKind::Invalidate => "/v1/federation/invalidate",
        }
    }

    /// `verify` or `invalidate`.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerOpKind::Verify => "verify",
            PeerOpKind::Invalidate => "invalidate",
        }
    }
}

impl fmt::Display for PeerOpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Body of `POST /v1/federation/verify` and `/v1/federation/invalidate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PeerOpRequest {
    /// The same for every delivery of one operation: a repeat is applied once.
    pub op_id: OpId,
    /// The sending site; must equal the [`SITE_HEADER`].
    pub origin_site: SiteName,
    pub user_id: UserId,
    /// Verify: the session verified at the origin (informational). Invalidate: the one session
    /// to end, or none for all of the user's sessions.
    #[serde(default)]
    pub session_id: Option<SessionId>,
    /// The origin's cluster time of the entry that made the operation: it acts as of then, on
    /// the sessions the target created before `origin_time + max_clock_skew`.
    pub origin_time: Timestamp,
}

/// The receiver's answer: the sender's acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PeerOpResponse {
    pub op_id: OpId,
    /// False when this `op_id` had already been applied (a repeated delivery): nothing changed.
    pub applied: bool,
    /// Sessions this delivery ended here.
    pub ended: u32,
}

/// Checks a nonce header value.
pub fn check_nonce(raw: &str) -> Result<(), FieldError> {
    check_handle(raw, NONCE_HEADER, MAX_NONCE_BYTES).map(|_| ())
}

/// GET /v1/federation/status: how delivery to each peer stands, as the leader sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FederationStatus {
    /// This site.
    pub site: SiteName,
    /// The node that answered (the leader, which does the delivering).
    pub node_id: u64,
    pub peers: Vec<PeerStatus>,
}

/// One peer in [`FederationStatus`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PeerStatus {
    pub site: SiteName,
    pub urls: Vec<String>,
    /// `true` after a delivery attempt that got an answer, `false` after one that did not;
    /// `null` before any attempt since this node became leader.
    pub reachable: Option<bool>,
    /// Operations committed here and not yet acknowledged by the peer.
    pub queued: u64,
    /// Most operations that may be queued for this peer.
    pub outbox_limit: u32,
    /// When the oldest queued operation was committed.
    pub oldest_queued_at: Option<Timestamp>,
    /// When the peer last acknowledged a delivery (since this node became leader).
    pub last_delivered_at: Option<Timestamp>,
    /// The last failed attempt's error.
    pub last_error: Option<String>,
    /// Attempts that failed in a row.
    pub consecutive_failures: u32,
    /// Milliseconds until the next attempt, when one is waiting for its backoff.
    pub next_attempt_in_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip_and_unknown_fields() {
        let r: PeerOpRequest = serde_json::from_str(
            r#"{"op_id":"op_1","origin_site":"site-a","user_id":"alice","session_id":null,"origin_time":"2026-01-02T03:04:05.678Z"}"#,
        )
        .unwrap();
        assert_eq!(r.session_id, None);
        assert_eq!(r.origin_time.to_rfc3339(), "2026-01-02T03:04:05.678Z");
        let again: PeerOpRequest =
            serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(again, r);
        // The origin time is required: an operation without it cannot act as of its origin.
        assert!(serde_json::from_str::<PeerOpRequest>(
            r#"{"op_id":"op_1","origin_site":"site-a","user_id":"alice"}"#
        )
        .is_err());
        assert!(serde_json::from_str::<PeerOpRequest>(
            r#"{"op_id":"op_1","origin_site":"site-a","user_id":"alice","origin_time":"2026-01-02T03:04:05.678Z","extra":1}"#
        )
        .is_err());
        assert!(serde_json::from_str::<PeerOpRequest>(
            r#"{"op_id":"op 1","origin_site":"site-a","user_id":"alice"}"#
        )
        .is_err());
    }

    #[test]
    fn nonces() {
        assert!(check_nonce("abc_DEF-123").is_ok());
        assert!(check_nonce("").is_err());
        assert!(check_nonce("a b").is_err());
        assert!(check_nonce(&"x".repeat(MAX_NONCE_BYTES + 1)).is_err());
    }
}

//! Request and answer bodies of every endpoint of the v1 API.
//!
//! Requests are `deny_unknown_fields`, so a misspelt field is a clear 400 instead of a silently
//! ignored value. Size and content checks that serde cannot express live in `validate` methods.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::ids::{SessionId, SiteName, UserId};
use crate::policy::Policy;
use crate::session::{check_text_field, Device, SessionView, MAX_DEVICE_FIELD_BYTES};
use crate::time::Timestamp;

/// Longest idempotency key accepted, in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 128;
/// Longest token accepted by validate, in bytes (a real one is 43).
pub const MAX_TOKEN_BYTES: usize = 128;
/// Most sites one verify or invalidate may name in `targets`.
pub const MAX_TARGETS: usize = 32;
/// Largest request body a client endpoint accepts by default, in bytes (a node's
/// `[limits] max_body_bytes`).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// POST /v1/sessions
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateSessionRequest {
    pub user_id: UserId,
    #[serde(default)]
    pub device: Device,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl CreateSessionRequest {
    pub fn validate(&self) -> Result<(), FieldError> {
        self.device.validate()?;
        if let Some(o) = &self.origin {
            check_text_field("origin", o, MAX_DEVICE_FIELD_BYTES)?;
        }
        if let Some(k) = &self.idempotency_key {
            if k.is_empty() {
                return Err(FieldError::new("idempotency_key", "must not be empty"));
            }
            check_text_field("idempotency_key", k, MAX_IDEMPOTENCY_KEY_BYTES)?;
        }
        Ok(())
    }
}

/// 201 answer of POST /v1/sessions (200 when an idempotent retry found the session).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateSessionResponse {
    pub session: SessionView,
    /// The secret the app hands to the user's device. Shown once; the node keeps only its hash.
    pub token: String,
}

/// How fresh a validate's answer must be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    /// Confirmed with the leader's quorum: reflects every acknowledged change.
    #[default]
    Linearizable,
    /// This node's replica: fast, possibly a moment behind.
    Local,
}

fn default_true() -> bool {
    true
}

/// POST /v1/sessions/validate
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    pub token: String,
    #[serde(default = "default_true")]
    pub touch: bool,
    #[serde(default)]
    pub consistency: Consistency,
}

impl ValidateRequest {
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.token.is_empty() {
            return Err(FieldError::new("token", "must not be empty"));
        }
        if self.token.len() > MAX_TOKEN_BYTES {
            return Err(FieldError::new(
                "token",
                format!(
                    "is {} bytes long; the limit is {MAX_TOKEN_BYTES}",
                    self.token.len()
                ),
            ));
        }
        Ok(())
    }
}

/// Answer of POST /v1/sessions/validate. `valid: false` carries only `reason`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidateResponse {
    pub valid: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_until_idle_end: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_until_session_end: Option<u64>,
    /// Why not valid: an end reason, `blocked` or `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Answer of POST /v1/sessions/{id}/touch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TouchResponse {
    pub session: SessionView,
    pub seconds_until_idle_end: u64,
    pub seconds_until_session_end: u64,
}

/// `{session}`: GET and DELETE /v1/sessions/{id}.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionResponse {
    pub session: SessionView,
}

/// `{sessions}`: GET /v1/users/{user_id}/sessions, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionsResponse {
    pub sessions: Vec<SessionView>,
    /// Present when more follow: pass it as `cursor` for the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn check_targets(targets: &[SiteName]) -> Result<(), FieldError> {
    if targets.len() > MAX_TARGETS {
        return Err(FieldError::new(
            "targets",
            format!("names {} sites; the limit is {MAX_TARGETS}", targets.len()),
        ));
    }
    Ok(())
}

/// POST /v1/users/{user_id}/verify
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The session that is the one; default: the user's newest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<SiteName>,
}

impl VerifyRequest {
    pub fn validate(&self) -> Result<(), FieldError> {
        check_targets(&self.targets)
    }
}

/// How a fan-out to one target site went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FanoutStatus {
    Delivered,
    Queued,
    UnknownSite,
}

/// Answer of POST /v1/users/{user_id}/verify.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyResponse {
    pub verified: SessionId,
    pub ended: u32,
    pub fanout: BTreeMap<SiteName, FanoutStatus>,
}

/// POST /v1/users/{user_id}/invalidate
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InvalidateRequest {
    /// The one session to end; default: all of the user's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<SiteName>,
}

impl InvalidateRequest {
    pub fn validate(&self) -> Result<(), FieldError> {
        check_targets(&self.targets)
    }
}

/// Answer of POST /v1/users/{user_id}/invalidate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvalidateResponse {
    pub ended: u32,
    pub fanout: BTreeMap<SiteName, FanoutStatus>,
}

/// GET /v1/config. An app key gets the policy alone (a front end shows the idle warning from
/// it); an admin key also gets the features and the site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfigResponse {
    /// The replicated policy every node applies (None before the first leader wrote it).
    pub policy: Option<Policy>,
    /// What this build offers (admin only; empty for an app key).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// This cluster's site name (admin only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<SiteName>,
}

/// One row of GET /v1/users/active.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActiveUser {
    pub user_id: UserId,
    /// Active sessions the user holds.
    pub sessions: u32,
    pub last_seen_at: Timestamp,
    pub idle_seconds: u64,
    /// `idle_seconds` for people: `45 sec`, `5 min 30 sec`.
    pub idle: String,
}

/// GET /v1/users/active
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActiveUsersResponse {
    pub users: Vec<ActiveUser>,
    /// Present when more follow: pass it as `cursor` for the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One replicated audit event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    /// Position in the audit log, increasing by one per event.
    pub seq: u64,
    pub at: Timestamp,
    /// `session_created`, `session_blocked`, `session_ended`, `limit_denied`, `verify`,
    /// `invalidate`, `policy_changed`, `auth_failure`, ...
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    /// Free-form details (end reason, count, node, ...), always an object.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub detail: serde_json::Value,
}

/// GET /v1/audit
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditResponse {
    pub events: Vec<AuditEvent>,
    /// Present when more follow: pass it as `cursor` for the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// POST /cluster/init: node id (as a string key, JSON objects need them) to its advertised URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InitRequest {
    pub members: BTreeMap<String, String>,
}

/// POST /cluster/learners
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddLearnerRequest {
    pub node_id: u64,
    pub url: String,
}

/// POST /cluster/membership: the new set of voters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangeMembershipRequest {
    pub voters: Vec<u64>,
    /// Keep removed voters as learners instead of dropping them.
    #[serde(default)]
    pub retain: bool,
}

/// One node in GET /cluster/status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberStatus {
    pub node_id: u64,
    pub url: String,
    pub voter: bool,
    /// Highest log index the leader knows this node holds (leader's view; None elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_index: Option<u64>,
}

/// GET /cluster/status: this node's view of the Raft cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterStatus {
    pub node_id: u64,
    pub site: SiteName,
    /// The cluster this node belongs to (made at init, new after a restore or recovery); none
    /// before it has joined one.
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// `leader`, `follower`, `candidate`, `learner`, `shutdown`.
    pub role: String,
    pub initialized: bool,
    pub leader: Option<u64>,
    pub leader_url: Option<String>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub members: Vec<MemberStatus>,
    /// The `[policy]` keys of this node's config file that differ from the replicated policy
    /// (which applies); empty when they agree.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy_file_differs: Vec<String>,
    /// Why this node is not ready (what `/readyz` says): `no_leader`, `leader_silent`,
    /// `lagging`, `clock_skew`; empty when it is ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ready: Vec<String>,
    /// This node's clock minus the median of the voters' clocks, in ms, as last measured.
    #[serde(default)]
    pub clock_offset_ms: Option<i64>,
    /// Whether that is more than `max_clock_skew`: the node then stamps nothing and answers
    /// local reads `clock_skew`.
    #[serde(default)]
    pub clock_skewed: bool,
    /// The log index of the membership in effect (the same on every node of one cluster once
    /// they have applied it); None before init.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub membership_index: Option<u64>,
    /// While this node forms a cluster by `[bootstrap]` and is not part of one yet: how many
    /// members it expects and how many have answered. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapStatus>,
    /// The node's release (its crate version, e.g. `0.1.0`); empty from a node older than this
    /// field.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// The node's build: the source commit (short hash, `-dirty` if it had local changes), or
    /// `unknown` when it was not built from a git checkout.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub build: String,
    /// Whether an operator drained this node (`POST /cluster/drain`): it gave up leadership and
    /// answers `/readyz` 503 until it restarts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub draining: bool,
}

/// What a node that forms its cluster by `[bootstrap]` is waiting for (GET /cluster/status).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BootstrapStatus {
    /// `bootstrap.expect`.
    pub expected: usize,
    /// Members (this node included) that answered the last round of probes.
    pub answered: usize,
    /// `waiting` (for all expected members to answer; the one with the lowest id then
    /// initialises), `joining` (a member is initialised already, or this node is not one of the
    /// bootstrap members: it waits to be added with POST /cluster/learners), `initializing`.
    pub state: String,
}

/// POST /cluster/transfer-leader: the voter to hand leadership to; without one, the voter
/// furthest along the leader's log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TransferLeaderRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u64>,
}

/// Answer of POST /cluster/transfer-leader: the node that leads now, the one that led before,
/// and how long the hand-over took (writes were held meanwhile).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransferLeaderResponse {
    pub leader: u64,
    pub previous_leader: u64,
    pub took_ms: u64,
}

/// Answer of POST /cluster/drain: the drained node, and the hand-over if it led.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DrainResponse {
    pub node_id: u64,
    /// Always true: the node answers `/readyz` 503 until it restarts.
    pub draining: bool,
    /// The hand-over, when the node led; none when it was a follower.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferLeaderResponse>,
}

/// Answer of the cluster management writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterChangeResponse {
    pub ok: bool,
    pub log_index: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_request_rejects_unknown_and_oversized() {
        let r: Result<CreateSessionRequest, _> =
            serde_json::from_str(r#"{"user_id":"a","colour":"red"}"#);
        assert!(r.is_err());
        let r: CreateSessionRequest = serde_json::from_str(
            &serde_json::json!({"user_id":"a","origin":"x".repeat(600)}).to_string(),
        )
        .unwrap();
        assert_eq!(r.validate().unwrap_err().field, "origin");
    }

    #[test]
    fn validate_defaults() {
        let r: ValidateRequest = serde_json::from_str(r#"{"token":"t"}"#).unwrap();
        assert!(r.touch);
        assert_eq!(r.consistency, Consistency::Linearizable);
    }
}

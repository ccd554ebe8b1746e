//! One stored session record and the hash of its token.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sessync_proto::{
    Device, EndReason, EventPosition, Policy, SessionId, SessionState, SessionView, Timestamp,
    UserId,
};
use sha2::{Digest, Sha256};

/// SHA-256 of a session token: the only form in which a token is ever stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Hashes a token as presented by a client.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", &hex::encode(self.0)[..8])
    }
}

impl Serialize for TokenHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for TokenHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(&s, &mut out).map_err(serde::de::Error::custom)?;
        Ok(Self(out))
    }
}

/// A session as the state machine stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub token_hash: TokenHash,
    pub state: SessionState,
    pub end_reason: Option<EndReason>,
    pub device: Device,
    pub origin: Option<String>,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    /// The app's idempotency key of the create, so a retried create finds this session.
    pub idempotency_key: Option<String>,
    /// The API key (its name) that created the session; a replay is answered only to it.
    /// (None for sessions made before it was recorded: those are never replayed.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Where the session's state last changed (created, blocked, activated, ended): the entry's
    /// log index and cluster time, so an event subscriber can resume after a position. Touches
    /// leave it. (None for sessions last changed before it was recorded.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<EventPosition>,
    /// When a verify at this site chose this session (cluster time): a peer's verify made
    /// earlier loses to it and leaves the session active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<Timestamp>,
    /// Tokens later replays of the create handed out (their hashes, oldest first, at most
    /// [`MAX_REPLAY_TOKENS`]): each works like `token_hash`, so a replay never stops a token an
    /// earlier answer gave from working (a retried create's answers may arrive in any order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replay_tokens: Vec<TokenHash>,
}

/// Most tokens replays add to one session; past it the oldest replay's stops working.
pub(crate) const MAX_REPLAY_TOKENS: usize = 8;

impl Session {
    /// Every token hash that opens this session: the create's and the replays'.
    pub fn token_hashes(&self) -> impl Iterator<Item = &TokenHash> {
        std::iter::once(&self.token_hash).chain(&self.replay_tokens)
    }

    /// Not ended (active or blocked).
    pub fn is_live(&self) -> bool {
        self.state != SessionState::Ended
    }

    /// When the session ends for idleness under `policy`. A touch is replicated at most once per
    /// `touch_interval`, so that interval is added: a touch never shortens the idle timeout.
    pub(crate) fn idle_end(&self, policy: &Policy) -> Timestamp {
        self.last_seen_at
            .plus(policy.idle_timeout)
            .plus(policy.touch_interval)
    }

    /// When the session ends however active it is.
    pub(crate) fn lifetime_end(&self, policy: &Policy) -> Timestamp {
        self.created_at.plus(policy.max_lifetime)
    }

    /// The first moment at which time alone ends the session, and the reason it would give.
    pub(crate) fn deadline(&self, policy: &Policy) -> (Timestamp, EndReason) {
        let idle = self.idle_end(policy);
        let life = self.lifetime_end(policy);
        if life <= idle {
            (life, EndReason::MaxLifetime)
        } else {
            (idle, EndReason::IdleTimeout)
        }
    }

    /// Whether the session answers `valid` at cluster time `now`.
    pub fn is_valid_at(&self, now: Timestamp, policy: &Policy) -> bool {
        self.state == SessionState::Active && now < self.deadline(policy).0
    }

    /// The session as cluster time `now` sees it: a live session whose deadline has passed is
    /// shown ended (at its deadline, with its reason) even before the leader's expiry sweep has
    /// written that down.
    pub fn as_of(&self, now: Timestamp, policy: &Policy) -> Session {
        let mut s = self.clone();
        if s.is_live() {
            let (t, reason) = s.deadline(policy);
            if t <= now {
                s.state = SessionState::Ended;
                s.end_reason = Some(reason);
                s.ended_at = Some(t);
            }
        }
        s
    }

    /// The API's view of the session.
    pub fn view(&self, policy: &Policy) -> SessionView {
        SessionView {
            session_id: self.id.clone(),
            user_id: self.user_id.clone(),
            state: self.state,
            end_reason: self.end_reason,
            device: self.device.clone(),
            origin: self.origin.clone(),
            created_at: self.created_at,
            last_seen_at: self.last_seen_at,
            idle_expires_at: self.idle_end(policy),
            expires_at: self.lifetime_end(policy),
            ended_at: self.ended_at,
        }
    }

    /// Seconds from `now` until the idle end and until the lifetime end (0 once passed).
    pub fn seconds_left(&self, now: Timestamp, policy: &Policy) -> (u64, u64) {
        (
            self.idle_end(policy).since(now).as_secs(),
            self.lifetime_end(policy).since(now).as_secs(),
        )
    }
}

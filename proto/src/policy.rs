//! The session policy the cluster enforces, and the roles of API keys.
//!
//! The policy lives in the replicated state: the leader proposes the one from its config file, and
//! every replica applies the one in the log, so nodes whose files differ still agree.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a login over `max_concurrent_sessions` does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnLimit {
    /// Refuse it: 409 `limit_reached`, nothing created.
    Deny,
    /// Create it `blocked`: it becomes valid only once a verify chooses it.
    #[default]
    BlockNew,
    /// End the least recently used active session with `evicted`, then create it.
    EvictOldest,
}

impl OnLimit {
    /// The config and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OnLimit::Deny => "deny",
            OnLimit::BlockNew => "block_new",
            OnLimit::EvictOldest => "evict_oldest",
        }
    }
}

/// The replicated session policy. Durations are serialized as humantime strings (`15m`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// A session ends when unused this long.
    #[serde(with = "humantime_serde_compat")]
    pub idle_timeout: Duration,
    /// A session ends this long after creation, however active.
    #[serde(with = "humantime_serde_compat")]
    pub max_lifetime: Duration,
    /// Active sessions a user may hold at once; 0 means no limit.
    pub max_concurrent_sessions: u32,
    /// What a login over the limit does.
    pub on_limit: OnLimit,
    /// The bound on clock skew between nodes; local reads stay this far on the safe side.
    #[serde(with = "humantime_serde_compat")]
    pub max_clock_skew: Duration,
    /// Touches of one session are replicated at most once per this interval. A session then
    /// ends for idleness at `last_seen_at + idle_timeout + touch_interval`, so a touch never
    /// shortens the idle timeout.
    #[serde(with = "humantime_serde_compat")]
    pub touch_interval: Duration,
    /// How long ended sessions stay listable before they are removed.
    #[serde(with = "humantime_serde_compat")]
    pub retention: Duration,
    /// How long audit events are kept.
    #[serde(with = "humantime_serde_compat")]
    pub audit_retention: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(15 * 60),
            max_lifetime: Duration::from_secs(8 * 3600),
            max_concurrent_sessions: 3,
            on_limit: OnLimit::BlockNew,
            max_clock_skew: Duration::from_millis(500),
            touch_interval: Duration::from_secs(2),
            retention: Duration::from_secs(24 * 3600),
            audit_retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl Policy {
    /// Names of the keys whose values differ between `self` and `other`, in declaration order.
    pub fn differing_keys(&self, other: &Policy) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if self.idle_timeout != other.idle_timeout {
            keys.push("idle_timeout");
        }
        if self.max_lifetime != other.max_lifetime {
            keys.push("max_lifetime");
        }
        if self.max_concurrent_sessions != other.max_concurrent_sessions {
            keys.push("max_concurrent_sessions");
        }
        if self.on_limit != other.on_limit {
            keys.push("on_limit");
        }
        if self.max_clock_skew != other.max_clock_skew {
            keys.push("max_clock_skew");
        }
        if self.touch_interval != other.touch_interval {
            keys.push("touch_interval");
        }
        if self.retention != other.retention {
            keys.push("retention");
        }
        if self.audit_retention != other.audit_retention {
            keys.push("audit_retention");
        }
        keys
    }
}

/// Serde adapter: a `Duration` as a humantime string such as `15m` or `500ms`.
pub mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

/// What an API key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Session endpoints.
    App,
    /// Everything.
    Admin,
}

impl Role {
    /// Whether a key of this role may use an endpoint that needs `needed`.
    pub fn allows(self, needed: Role) -> bool {
        matches!((self, needed), (Role::Admin, _) | (Role::App, Role::App))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_json_uses_human_durations() {
        let p = Policy::default();
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["idle_timeout"], "15m");
        assert_eq!(v["on_limit"], "block_new");
        let back: Policy = serde_json::from_value(v).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn differing_keys_named() {
        let a = Policy::default();
        let b = Policy {
            max_concurrent_sessions: 5,
            ..Policy::default()
        };
        assert_eq!(a.differing_keys(&b), vec!["max_concurrent_sessions"]);
    }

    #[test]
    fn roles() {
        assert!(Role::Admin.allows(Role::App));
        assert!(!Role::App.allows(Role::Admin));
    }
}

//! The session policy the cluster enforces, and the roles of API keys.
//!
//! The policy lives in the replicated state: the leader proposes the one from its config file, and
//! every replica applies the one in the log, so nodes whose files differ still agree.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::FieldError;

/// What a login over `max_concurrent_sessions` does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Policy {
    /// A session ends when unused this long.
    #[serde(with = "humantime_serde_compat")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "15m"))]
    pub idle_timeout: Duration,
    /// A session ends this long after creation, however active.
    #[serde(with = "humantime_serde_compat")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "15m"))]
    pub max_lifetime: Duration,
    /// Active sessions a user may hold at once; 0 means no limit.
    pub max_concurrent_sessions: u32,
    /// What a login over the limit does.
    pub on_limit: OnLimit,
    /// The bound on clock skew between nodes; local reads stay this far on the safe side.
    #[serde(with = "humantime_serde_compat")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "15m"))]
    pub max_clock_skew: Duration,
    /// Touches of one session are replicated at most once per this interval. A session then
    /// ends for idleness at `last_seen_at + idle_timeout + touch_interval`, so a touch never
    /// shortens the idle timeout.
    #[serde(with = "humantime_serde_compat")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "15m"))]
    pub touch_interval: Duration,
    /// How long ended sessions stay listable before they are removed.
    #[serde(with = "humantime_serde_compat")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "15m"))]
    pub retention: Duration,
    /// How long audit events are kept.
    #[serde(with = "humantime_serde_compat")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "15m"))]
    pub audit_retention: Duration,
    /// Blocked sessions a user may have at once; a new blocked one past it ends the oldest
    /// blocked one `evicted`. (Absent from policies written before it existed: the default.)
    #[serde(
        default = "defaults::max_blocked_sessions",
        skip_serializing_if = "defaults::is_max_blocked_sessions"
    )]
    pub max_blocked_sessions: u32,
    /// Most audit events kept, whatever their age; the oldest are trimmed first.
    #[serde(
        default = "defaults::audit_max_events",
        skip_serializing_if = "defaults::is_audit_max_events"
    )]
    pub audit_max_events: u64,
    /// Most bytes of audit events kept (as stored, JSON); the oldest are trimmed first.
    #[serde(
        default = "defaults::audit_max_bytes",
        skip_serializing_if = "defaults::is_audit_max_bytes"
    )]
    pub audit_max_bytes: u64,
    /// A create repeated with the same idempotency key (by the same API key) within this long
    /// of the first gets the same session back; later, the key is forgotten.
    #[serde(
        default = "defaults::idempotency_window",
        skip_serializing_if = "defaults::is_idempotency_window",
        with = "humantime_serde_compat"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "15m"))]
    pub idempotency_window: Duration,
}

/// Defaults of the keys added after the first stored format. A value equal to its default is
/// not written, so a policy stored by an earlier version reads and writes back byte for byte.
mod defaults {
    pub(super) const MAX_BLOCKED_SESSIONS: u32 = 16;
    pub(super) const AUDIT_MAX_EVENTS: u64 = 100_000;
    pub(super) const AUDIT_MAX_BYTES: u64 = 64 * 1024 * 1024;
    pub(super) const IDEMPOTENCY_WINDOW: std::time::Duration =
        std::time::Duration::from_secs(24 * 3600);

    pub(super) fn idempotency_window() -> std::time::Duration {
        IDEMPOTENCY_WINDOW
    }
    pub(super) fn is_idempotency_window(v: &std::time::Duration) -> bool {
        *v == IDEMPOTENCY_WINDOW
    }

    pub(super) fn max_blocked_sessions() -> u32 {
        MAX_BLOCKED_SESSIONS
    }
    pub(super) fn is_max_blocked_sessions(v: &u32) -> bool {
        *v == MAX_BLOCKED_SESSIONS
    }
    pub(super) fn audit_max_events() -> u64 {
        AUDIT_MAX_EVENTS
    }
    pub(super) fn is_audit_max_events(v: &u64) -> bool {
        *v == AUDIT_MAX_EVENTS
    }
    pub(super) fn audit_max_bytes() -> u64 {
        AUDIT_MAX_BYTES
    }
    pub(super) fn is_audit_max_bytes(v: &u64) -> bool {
        *v == AUDIT_MAX_BYTES
    }
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
            max_blocked_sessions: defaults::MAX_BLOCKED_SESSIONS,
            audit_max_events: defaults::AUDIT_MAX_EVENTS,
            audit_max_bytes: defaults::AUDIT_MAX_BYTES,
            idempotency_window: defaults::IDEMPOTENCY_WINDOW,
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
        if self.max_blocked_sessions != other.max_blocked_sessions {
            keys.push("max_blocked_sessions");
        }
        if self.audit_max_events != other.audit_max_events {
            keys.push("audit_max_events");
        }
        if self.audit_max_bytes != other.audit_max_bytes {
            keys.push("audit_max_bytes");
        }
        if self.idempotency_window != other.idempotency_window {
            keys.push("idempotency_window");
        }
        keys
    }
}

/// `touch_interval`, when not set, is this fraction of `idle_timeout` (at most its default,
/// 2 s): in a config file without the key, and after an update that moves `idle_timeout` alone.
pub const TOUCH_FRACTION: u32 = 10;

impl Policy {
    /// The `touch_interval` for `idle_timeout` when none is set: the default (2 s) or a tenth of
    /// the idle timeout, whichever is shorter, so a short idle timeout needs no touch interval
    /// of its own.
    pub fn default_touch_interval(idle_timeout: Duration) -> Duration {
        Policy::default()
            .touch_interval
            .min(idle_timeout / TOUCH_FRACTION)
    }
}

/// The longest duration a policy takes (longer ones would overflow timestamps).
pub const MAX_POLICY_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl Policy {
    /// Checks the rules that tie the keys together (the config file is held to the same):
    /// the first problem, naming its key.
    pub fn check(&self) -> Result<(), FieldError> {
        let human = |d: Duration| humantime::format_duration(d).to_string();
        for (key, d) in [
            ("idle_timeout", self.idle_timeout),
            ("max_lifetime", self.max_lifetime),
            ("max_clock_skew", self.max_clock_skew),
            ("touch_interval", self.touch_interval),
            ("retention", self.retention),
            ("audit_retention", self.audit_retention),
            ("idempotency_window", self.idempotency_window),
        ] {
            if d > MAX_POLICY_DURATION {
                return Err(FieldError::new(
                    key,
                    format!("must be at most {}", human(MAX_POLICY_DURATION)),
                ));
            }
        }
        if self.idle_timeout.is_zero() {
            return Err(FieldError::new("idle_timeout", "must be more than 0"));
        }
        if self.max_lifetime < self.idle_timeout {
            return Err(FieldError::new(
                "max_lifetime",
                format!(
                    "{} is shorter than idle_timeout ({}); it must be at least as long",
                    human(self.max_lifetime),
                    human(self.idle_timeout)
                ),
            ));
        }
        if self.touch_interval >= self.idle_timeout {
            return Err(FieldError::new(
                "touch_interval",
                format!(
                    "{} must be shorter than idle_timeout ({})",
                    human(self.touch_interval),
                    human(self.idle_timeout)
                ),
            ));
        }
        if self.audit_max_events == 0 {
            return Err(FieldError::new("audit_max_events", "must be more than 0"));
        }
        if self.audit_max_bytes < 4096 {
            return Err(FieldError::new("audit_max_bytes", "must be at least 4096"));
        }
        Ok(())
    }
}

/// A change of policy an operator asks for (`PUT /v1/config/policy`): the keys given replace
/// the replicated values, the others keep theirs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PolicyUpdate {
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "15m"))]
    pub idle_timeout: Option<Duration>,
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "15m"))]
    pub max_lifetime: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_sessions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_limit: Option<OnLimit>,
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "15m"))]
    pub max_clock_skew: Option<Duration>,
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "15m"))]
    pub touch_interval: Option<Duration>,
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "15m"))]
    pub retention: Option<Duration>,
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "15m"))]
    pub audit_retention: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_blocked_sessions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_max_events: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_max_bytes: Option<u64>,
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "15m"))]
    pub idempotency_window: Option<Duration>,
}

impl PolicyUpdate {
    /// `base` with the given keys replaced.
    ///
    /// `touch_interval` follows an `idle_timeout` given without it: it becomes
    /// [`Policy::default_touch_interval`] of the new idle timeout when it was that of the old
    /// one (it was never chosen), or when it would otherwise not be shorter than the new one.
    pub fn apply_to(&self, base: &Policy) -> Policy {
        let mut p = base.clone();
        macro_rules! set {
            ($($k:ident),*) => { $( if let Some(v) = self.$k { p.$k = v; } )* };
        }
        set!(
            idle_timeout,
            max_lifetime,
            max_concurrent_sessions,
            on_limit,
            max_clock_skew,
            touch_interval,
            retention,
            audit_retention,
            max_blocked_sessions,
            audit_max_events,
            audit_max_bytes,
            idempotency_window
        );
        if let (Some(idle), None) = (self.idle_timeout, self.touch_interval) {
            let was_default =
                base.touch_interval == Policy::default_touch_interval(base.idle_timeout);
            if was_default || p.touch_interval >= idle {
                p.touch_interval = Policy::default_touch_interval(idle);
            }
        }
        p
    }

    /// Whether no key is given.
    pub fn is_empty(&self) -> bool {
        *self == PolicyUpdate::default()
    }
}

/// Serde adapter: an optional `Duration` as a humantime string.
mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::humantime_serde_compat::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map(Some).map_err(|e| {
            serde::de::Error::custom(format!("{s:?} is not a duration such as 30s or 15m: {e}"))
        })
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    fn keys_added_later_are_not_written_at_their_default() {
        let v = serde_json::to_value(Policy::default()).unwrap();
        assert!(v.get("max_blocked_sessions").is_none(), "{v}");
        let old = r#"{"idle_timeout":"15m","max_lifetime":"8h","max_concurrent_sessions":3,"on_limit":"block_new","max_clock_skew":"500ms","touch_interval":"2s","retention":"1day","audit_retention":"7days"}"#;
        let p: Policy = serde_json::from_str(old).unwrap();
        assert_eq!(p.max_blocked_sessions, 16);
        assert_eq!(serde_json::to_string(&p).unwrap(), old);
        let q = Policy {
            audit_max_events: 10,
            ..p
        };
        assert_eq!(serde_json::to_value(&q).unwrap()["audit_max_events"], 10);
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
    fn an_update_replaces_only_the_keys_it_gives_and_checks_the_result() {
        let base = Policy::default();
        let u: PolicyUpdate = serde_json::from_str(r#"{"idle_timeout":"30m"}"#).unwrap();
        let p = u.apply_to(&base);
        assert_eq!(p.idle_timeout, Duration::from_secs(1800));
        assert_eq!(p.max_lifetime, base.max_lifetime);
        assert!(p.check().is_ok());
        let u: PolicyUpdate = serde_json::from_str(r#"{"max_lifetime":"1m"}"#).unwrap();
        assert_eq!(u.apply_to(&base).check().unwrap_err().field, "max_lifetime");
        assert!(serde_json::from_str::<PolicyUpdate>(r#"{"idle":"1m"}"#).is_err());
        assert!(serde_json::from_str::<PolicyUpdate>(r#"{"idle_timeout":"soon"}"#).is_err());
        assert!(PolicyUpdate::default().is_empty());
    }

    #[test]
    fn an_update_of_idle_timeout_alone_takes_touch_interval_along() {
        let ms = Duration::from_millis;
        let update = |json: &str| serde_json::from_str::<PolicyUpdate>(json).unwrap();
        // At its default (2 s for 15 min), touch_interval follows a shorter idle timeout as the
        // config file's default would: a tenth of it, at most 2 s.
        let base = Policy::default();
        let p = update(r#"{"idle_timeout":"1s"}"#).apply_to(&base);
        assert_eq!(p.touch_interval, ms(100));
        assert_eq!(p.check(), Ok(()));
        let p = update(r#"{"idle_timeout":"10s"}"#).apply_to(&base);
        assert_eq!(p.touch_interval, ms(1000));
        // ... and back up to 2 s, a default still.
        let p = update(r#"{"idle_timeout":"1h"}"#).apply_to(&p);
        assert_eq!(p.touch_interval, ms(2000));
        // A value of the operator's own stays while it is shorter than the idle timeout ...
        let own = Policy {
            touch_interval: ms(5000),
            ..Policy::default()
        };
        let p = update(r#"{"idle_timeout":"1h"}"#).apply_to(&own);
        assert_eq!(p.touch_interval, ms(5000));
        // ... and takes the default when it would no longer be.
        let p = update(r#"{"idle_timeout":"3s"}"#).apply_to(&own);
        assert_eq!(p.touch_interval, ms(300));
        assert_eq!(p.check(), Ok(()));
        // Given in the update, it is taken as given, and checked.
        let p = update(r#"{"idle_timeout":"1s","touch_interval":"500ms"}"#).apply_to(&base);
        assert_eq!(p.touch_interval, ms(500));
        let p = update(r#"{"idle_timeout":"1s","touch_interval":"1s"}"#).apply_to(&base);
        assert_eq!(p.check().unwrap_err().field, "touch_interval");
        // Without idle_timeout, nothing moves.
        let p = update(r#"{"touch_interval":"3s"}"#).apply_to(&base);
        assert_eq!(
            (p.idle_timeout, p.touch_interval),
            (base.idle_timeout, ms(3000))
        );
    }

    #[test]
    fn an_update_past_the_duration_bound_is_refused_naming_its_key() {
        for key in [
            "idle_timeout",
            "max_lifetime",
            "max_clock_skew",
            "touch_interval",
            "retention",
            "audit_retention",
            "idempotency_window",
        ] {
            let json = format!(r#"{{"{key}":"101years"}}"#);
            let u: PolicyUpdate = serde_json::from_str(&json).unwrap();
            let e = u.apply_to(&Policy::default()).check().unwrap_err();
            assert_eq!(e.field, key, "{e:?}");
            assert!(e.reason.contains("at most"), "{e:?}");
        }
    }

    #[test]
    fn roles() {
        assert!(Role::Admin.allows(Role::App));
        assert!(!Role::App.allows(Role::Admin));
    }
}

//! Cluster time: milliseconds since the Unix epoch, as stamped by the Raft leader.
//!
//! The state machine only ever compares and adds these numbers; rendering to RFC 3339 UTC with
//! milliseconds happens at the API edge.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in cluster time, in milliseconds since the Unix epoch.
///
/// In JSON it is an RFC 3339 UTC string with milliseconds, e.g. `2026-11-23T15:33:24.120Z`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Milliseconds since the epoch.
    pub fn millis(self) -> u64 {
        self.0
    }

    /// Reads this machine's clock. Only the leader's stamp and the API edge call this;
    /// the state machine never does.
    pub fn now() -> Self {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Self(d.as_millis() as u64)
    }

    /// This time plus `d`, saturating.
    pub fn plus(self, d: Duration) -> Self {
        Self(self.0.saturating_add(d.as_millis() as u64))
    }

    /// This time minus `d`, saturating at the epoch.
    pub fn minus(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(d.as_millis() as u64))
    }

    /// How long from `earlier` to this time (zero if `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// The last millisecond RFC 3339 can write (9999-12-31T23:59:59.999Z); later times are
    /// shown as this one.
    pub const MAX_RFC3339: u64 = 253_402_300_799_999;

    /// RFC 3339 UTC with milliseconds.
    pub fn to_rfc3339(self) -> String {
        let ms = self.0.min(Self::MAX_RFC3339);
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
    }

    /// Parses RFC 3339 (any precision); used for query parameters such as `since`.
    pub fn parse_rfc3339(s: &str) -> Result<Self, humantime::TimestampError> {
        let t = humantime::parse_rfc3339_weak(s)?;
        let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        Ok(Self(d.as_millis() as u64))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

/// Renders an idle duration for people: `45 sec`, `5 min 30 sec`, `2 h 5 min`, `3 d 4 h`.
pub fn human_idle(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s} sec"),
        60..=3599 => format!("{} min {} sec", s / 60, s % 60),
        3600..=86_399 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_millis_round_trip() {
        let t = Timestamp(1_795_000_000_123);
        let s = t.to_rfc3339();
        assert!(s.ends_with(".123Z"), "{s}");
        assert_eq!(Timestamp::parse_rfc3339(&s).unwrap(), t);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
    }

    #[test]
    fn far_future_times_render_without_panicking() {
        assert_eq!(Timestamp(u64::MAX).to_rfc3339(), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn idle_rendering() {
        assert_eq!(human_idle(Duration::from_secs(45)), "45 sec");
        assert_eq!(human_idle(Duration::from_secs(330)), "5 min 30 sec");
        assert_eq!(human_idle(Duration::from_secs(7500)), "2 h 5 min");
        assert_eq!(
            human_idle(Duration::from_secs(3 * 86_400 + 4 * 3600)),
            "3 d 4 h"
        );
    }
}

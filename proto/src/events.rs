//! The live event stream (`GET /v1/events`, Server-Sent Events): the event names, what each
//! carries, and the position an event stands at, which a reconnecting subscriber sends back in
//! `Last-Event-ID` to miss nothing.
//!
//! A position is replicated, so any node can resume from it: the Raft log index of the entry that
//! made the change and the cluster time of that entry, written `"<index>-<millis>"` as the
//! event's `id:`. The index orders the changes; the time tells the node whether retention may
//! have removed sessions that changed after it (then the stream starts with [`TRIMMED`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::session::SessionView;
use crate::time::Timestamp;

/// The request header a reconnecting subscriber names its last event's id in.
pub const LAST_EVENT_ID_HEADER: &str = "last-event-id";

/// `event: session`: a session was created, blocked, activated or ended. Data: [`SessionEvent`].
pub const SESSION: &str = "session";

/// `event: trimmed`: the position asked for is older than what retention keeps, so sessions that
/// changed after it may be gone; the stream then goes on from the oldest change still kept. A
/// subscriber should reload its view (e.g. list its users' sessions). Data: [`TrimmedEvent`].
pub const TRIMMED: &str = "trimmed";

/// Where a session change stands in the replicated order (see the module docs).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct EventPosition {
    /// The log index of the entry that made the change.
    pub index: u64,
    /// The cluster time of that entry.
    pub at: Timestamp,
}

impl fmt::Display for EventPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.index, self.at.millis())
    }
}

impl FromStr for EventPosition {
    type Err = FieldError;

    /// Reads an event id as [`fmt::Display`] writes it; the error names `Last-Event-ID`.
    fn from_str(s: &str) -> Result<Self, FieldError> {
        let bad = || {
            FieldError::new(
                "Last-Event-ID",
                "is not an event id of this stream (`<index>-<millis>`, as sent in `id:`)",
            )
        };
        let (index, at) = s.trim().split_once('-').ok_or_else(bad)?;
        let digits = |t: &str| {
            if t.is_empty() || t.len() > 20 || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            t.parse::<u64>().map_err(|_| bad())
        };
        Ok(EventPosition {
            index: digits(index)?,
            at: Timestamp(digits(at)?),
        })
    }
}

/// The data of an [`SESSION`] event: the session as it is after the change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionEvent {
    /// The log index of the change (the event's `id:` also carries its time).
    pub index: u64,
    pub session: SessionView,
}

/// The data of a [`TRIMMED`] event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrimmedEvent {
    /// The position the subscriber asked to resume after.
    pub asked: String,
    /// Changes at or after this cluster time are all still kept.
    pub kept_since: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_reads_back_from_its_id() {
        let p = EventPosition {
            index: 42,
            at: Timestamp(1_764_000_000_123),
        };
        assert_eq!(p.to_string(), "42-1764000000123");
        assert_eq!(p.to_string().parse::<EventPosition>().unwrap(), p);
    }

    #[test]
    fn a_bad_id_names_the_header() {
        for bad in [
            "",
            "42",
            "-1",
            "42-",
            "a-1",
            "1-2-3",
            "99999999999999999999999-1",
            "4 2-1",
        ] {
            let e = bad.parse::<EventPosition>().unwrap_err();
            assert_eq!(e.field, "Last-Event-ID", "{bad}");
        }
    }
}

//! How the workload reads the nodes' answers into outcomes of the history: what a refusal
//! means, and which state an answer shows.

use std::collections::BTreeMap;

use sessync_client::ClientError;
use sessync_proto::api::ValidateResponse;
use sessync_proto::{SessionState, SessionView, SiteName};

use crate::history::{Outcome, Seen};

/// A 4xx answer means nothing happened; anything else may or may not have.
pub(super) fn failed(e: &ClientError) -> Outcome {
    match e.status() {
        Some(s) if (400..500).contains(&s) => Outcome::Fail {
            code: e.code().map_or_else(|| s.to_string(), |c| c.to_string()),
            seen: None,
        },
        _ => Outcome::Unknown { why: e.to_string() },
    }
}

/// A refusal that reports the session's state (see [`Outcome::Fail`]).
pub(super) fn with_seen(o: Outcome, state: Seen) -> Outcome {
    match o {
        Outcome::Fail { code, .. } => Outcome::Fail {
            code,
            seen: Some(state),
        },
        other => other,
    }
}

/// A touch is refused with `conflict` when the session has ended or is blocked; the message
/// says which.
pub(super) fn refused_touch(e: &ClientError) -> Outcome {
    let o = failed(e);
    match e {
        ClientError::Conflict { message, .. } if message.contains("has ended") => {
            with_seen(o, Seen::Ended)
        }
        ClientError::Conflict { message, .. } if message.contains("is blocked") => {
            with_seen(o, Seen::Blocked)
        }
        _ => o,
    }
}

/// The state a session view shows.
pub(crate) fn seen_state(s: &SessionView) -> Seen {
    match s.state {
        SessionState::Active => Seen::Active,
        SessionState::Blocked => Seen::Blocked,
        SessionState::Ended => Seen::Ended,
    }
}

/// The state a validate answer shows.
pub(crate) fn seen_validate(v: &ValidateResponse) -> Seen {
    match (v.valid, v.reason.as_deref()) {
        (true, _) => Seen::Active,
        (false, Some("blocked")) => Seen::Blocked,
        (false, Some("unknown")) => Seen::Absent,
        (false, _) => Seen::Ended,
    }
}

/// Site names as the requests take them.
pub(super) fn site_names(targets: &[String]) -> Vec<SiteName> {
    targets
        .iter()
        .filter_map(|t| SiteName::parse_field(t, "targets").ok())
        .collect()
}

/// The `fanout` of an answer, each status by its wire name.
pub(super) fn fanout(
    f: &BTreeMap<SiteName, sessync_proto::api::FanoutStatus>,
) -> BTreeMap<String, String> {
    f.iter()
        .map(|(k, v)| {
            let status = serde_json::to_value(v)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            (k.to_string(), status)
        })
        .collect()
}

//! The scalar sections: `[policy]`, `[raft]`, `[limits]`, `[metrics]` and `[log]`. Every key
//! is optional with a default; values that depend on each other are checked together here.

use std::time::Duration;

use sessync_proto::{OnLimit, Policy};

use crate::model::{Limits, LogConfig, LogFormat, MetricsConfig, RaftTuning};
use crate::reader::Table;
use crate::validate;

const ON_LIMIT: &[(&str, OnLimit)] = &[
    ("deny", OnLimit::Deny),
    ("block_new", OnLimit::BlockNew),
    ("evict_oldest", OnLimit::EvictOldest),
];

const LOG_FORMATS: &[(&str, LogFormat)] = &[("text", LogFormat::Text), ("json", LogFormat::Json)];

/// `[policy]`: the session policy, defaults from [`Policy::default`].
pub(crate) fn policy(mut t: Table<'_>) -> Option<Policy> {
    let d = Policy::default();
    let idle_timeout = t.duration("idle_timeout").or(d.idle_timeout);
    let max_lifetime = t.duration("max_lifetime").or(d.max_lifetime);
    let max_concurrent_sessions = t
        .whole("max_concurrent_sessions")
        .or(d.max_concurrent_sessions);
    let on_limit = t.choice("on_limit", ON_LIMIT).or(d.on_limit);
    let max_clock_skew = t.duration("max_clock_skew").or(d.max_clock_skew);
    // Unset, it is the default or a tenth of the idle timeout, whichever is shorter, so a short
    // idle timeout needs no touch_interval of its own.
    let touch_default = idle_timeout.map_or(d.touch_interval, Policy::default_touch_interval);
    let touch_interval = t.duration("touch_interval").or(touch_default);
    let retention = t.duration("retention").or(d.retention);
    let audit_retention = t.duration("audit_retention").or(d.audit_retention);
    let max_blocked_sessions = t.whole("max_blocked_sessions").or(d.max_blocked_sessions);
    let audit_max_events = t.whole("audit_max_events").or(d.audit_max_events);
    let audit_max_bytes = t.whole("audit_max_bytes").or(d.audit_max_bytes);
    let idempotency_window = t.duration("idempotency_window").or(d.idempotency_window);
    if audit_max_events == Some(0) {
        t.invalid("audit_max_events", "must be more than 0");
    }
    if audit_max_bytes.is_some_and(|b| b < 4096) {
        t.invalid("audit_max_bytes", "must be at least 4096");
    }

    if let Some(idle) = idle_timeout {
        if idle.is_zero() {
            t.invalid("idle_timeout", "must be more than 0");
        } else {
            if let Some(life) = max_lifetime {
                if life < idle {
                    t.invalid(
                        "max_lifetime",
                        format!(
                            "{} is shorter than idle_timeout ({}); it must be at least as long",
                            human(life),
                            human(idle)
                        ),
                    );
                }
            }
            if let Some(touch) = touch_interval {
                if touch >= idle {
                    t.invalid(
                        "touch_interval",
                        format!(
                            "{} must be shorter than idle_timeout ({})",
                            human(touch),
                            human(idle)
                        ),
                    );
                }
            }
        }
    }
    t.finish();
    Some(Policy {
        idle_timeout: idle_timeout?,
        max_lifetime: max_lifetime?,
        max_concurrent_sessions: max_concurrent_sessions?,
        on_limit: on_limit?,
        max_clock_skew: max_clock_skew?,
        touch_interval: touch_interval?,
        retention: retention?,
        audit_retention: audit_retention?,
        max_blocked_sessions: max_blocked_sessions?,
        audit_max_events: audit_max_events?,
        audit_max_bytes: audit_max_bytes?,
        idempotency_window: idempotency_window?,
    })
}

/// `[raft]`: timing and log compaction.
pub(crate) fn raft(mut t: Table<'_>) -> Option<RaftTuning> {
    let d = RaftTuning::default();
    let heartbeat = t.duration("heartbeat_interval").or(d.heartbeat_interval);
    let min = t
        .duration("election_timeout_min")
        .or(d.election_timeout_min);
    let max = t
        .duration("election_timeout_max")
        .or(d.election_timeout_max);
    let snapshot_after_logs = t.whole("snapshot_after_logs").or(d.snapshot_after_logs);
    let kept = t
        .whole("max_logs_kept_after_snapshot")
        .or(d.max_logs_kept_after_snapshot);
    let install = t
        .duration("install_snapshot_timeout")
        .or(d.install_snapshot_timeout);

    if heartbeat.is_some_and(|h| h.is_zero()) {
        t.invalid("heartbeat_interval", "must be more than 0");
    }
    if let (Some(h), Some(min)) = (heartbeat, min) {
        if min <= h {
            t.invalid(
                "election_timeout_min",
                format!(
                    "{} must be longer than heartbeat_interval ({})",
                    human(min),
                    human(h)
                ),
            );
        }
    }
    if let (Some(min), Some(max)) = (min, max) {
        if max <= min {
            t.invalid(
                "election_timeout_max",
                format!(
                    "{} must be longer than election_timeout_min ({})",
                    human(max),
                    human(min)
                ),
            );
        }
    }
    if snapshot_after_logs == Some(0) {
        t.invalid("snapshot_after_logs", "must be more than 0");
    }
    if install.is_some_and(|d| d < Duration::from_secs(1)) {
        t.invalid("install_snapshot_timeout", "must be at least 1s");
    }
    t.finish();
    Some(RaftTuning {
        heartbeat_interval: heartbeat?,
        election_timeout_min: min?,
        election_timeout_max: max?,
        snapshot_after_logs: snapshot_after_logs?,
        max_logs_kept_after_snapshot: kept?,
        install_snapshot_timeout: install?,
    })
}

/// `[limits]`: request deadline, body size, connection timeouts and concurrency bounds.
pub(crate) fn limits(mut t: Table<'_>) -> Option<Limits> {
    let d = Limits::default();
    let request_timeout = t.duration("request_timeout").or(d.request_timeout);
    let max_body_bytes = t.whole("max_body_bytes").or(d.max_body_bytes);
    let header_timeout = t.duration("header_timeout").or(d.header_timeout);
    let body_timeout = t.duration("body_timeout").or(d.body_timeout);
    let idle_timeout = t.duration("idle_timeout").or(d.idle_timeout);
    let max_connections = t.whole("max_connections").or(d.max_connections);
    // Unset, the per-source bound is the default or max_connections, whichever is smaller: a
    // node given `max_connections = 1` starts without also naming the per-source bound.
    let max_connections_per_source = t
        .whole("max_connections_per_source")
        .or(max_connections.map_or(d.max_connections_per_source, |all| {
            all.min(d.max_connections_per_source)
        }));
    let max_concurrent_requests = t
        .whole("max_concurrent_requests")
        .or(d.max_concurrent_requests);
    // Unset, each stream bound is its default or the bound above it, whichever is smaller.
    let max_event_streams = t
        .whole("max_event_streams")
        .or(max_connections.map_or(d.max_event_streams, |all| all.min(d.max_event_streams)));
    let max_event_streams_per_key = t.whole("max_event_streams_per_key").or(max_event_streams
        .map_or(d.max_event_streams_per_key, |all| {
            all.min(d.max_event_streams_per_key)
        }));
    let failure_report_interval = t
        .duration("failure_report_interval")
        .or(d.failure_report_interval);
    for (key, v) in [
        ("failure_report_interval", failure_report_interval),
        ("request_timeout", request_timeout),
        ("header_timeout", header_timeout),
        ("body_timeout", body_timeout),
        ("idle_timeout", idle_timeout),
    ] {
        if v.is_some_and(|v| v.is_zero()) {
            t.invalid(key, "must be more than 0");
        }
    }
    for (key, v) in [
        ("max_body_bytes", max_body_bytes),
        ("max_connections", max_connections),
        ("max_connections_per_source", max_connections_per_source),
        ("max_concurrent_requests", max_concurrent_requests),
        ("max_event_streams", max_event_streams),
        ("max_event_streams_per_key", max_event_streams_per_key),
    ] {
        if v == Some(0) {
            t.invalid(key, "must be more than 0");
        }
    }
    if let (Some(per), Some(all)) = (max_connections_per_source, max_connections) {
        if per > all {
            t.invalid(
                "max_connections_per_source",
                format!("must be at most max_connections ({all})"),
            );
        }
    }
    if let (Some(streams), Some(all)) = (max_event_streams, max_connections) {
        if streams > all {
            t.invalid(
                "max_event_streams",
                format!("must be at most max_connections ({all}): each stream holds a connection"),
            );
        }
    }
    if let (Some(per), Some(all)) = (max_event_streams_per_key, max_event_streams) {
        if per > all {
            t.invalid(
                "max_event_streams_per_key",
                format!("must be at most max_event_streams ({all})"),
            );
        }
    }
    t.finish();
    Some(Limits {
        request_timeout: request_timeout?,
        max_body_bytes: max_body_bytes?,
        header_timeout: header_timeout?,
        body_timeout: body_timeout?,
        idle_timeout: idle_timeout?,
        max_connections: max_connections?,
        max_connections_per_source: max_connections_per_source?,
        max_concurrent_requests: max_concurrent_requests?,
        max_event_streams: max_event_streams?,
        max_event_streams_per_key: max_event_streams_per_key?,
        failure_report_interval: failure_report_interval?,
    })
}

/// `[metrics]`.
pub(crate) fn metrics(mut t: Table<'_>) -> Option<MetricsConfig> {
    let open = t.flag("open").or(MetricsConfig::default().open);
    t.finish();
    Some(MetricsConfig { open: open? })
}

/// `[log]`.
pub(crate) fn log(mut t: Table<'_>) -> Option<LogConfig> {
    let d = LogConfig::default();
    let level = t.string("level").or(d.level);
    let level = t.validate("level", level, |l| validate::log_filter(&l));
    let format = t.choice("format", LOG_FORMATS).or(d.format);
    t.finish();
    Some(LogConfig {
        level: level?,
        format: format?,
    })
}

/// A duration as people write it: `15m`, `1h 30m`.
fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

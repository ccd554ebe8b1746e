"""Parsing of the node's JSON into the typed results (pure)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from sessync import errors, models
from sessync.models import EndReason, SessionState

from .fakes import session_json


def test_session_view_parses_every_field() -> None:
    s = models.SessionView.from_json(session_json(state="ended", end_reason="idle_timeout"))
    assert s.state is SessionState.ENDED and s.end_reason is EndReason.IDLE_TIMEOUT
    assert isinstance(s.state, str) and s.state.value == "ended"  # the enums are strings too
    assert s.device == models.Device(name="laptop", user_agent="pytest")
    assert s.last_seen_at == datetime(2026, 1, 1, 0, 0, 1, 500000, tzinfo=timezone.utc)
    assert s.ended_at is not None and not s.is_live and not s.is_active


def test_unknown_fields_are_ignored_and_missing_ones_refused() -> None:
    models.SessionView.from_json(session_json(new_field="later"))
    broken = session_json()
    del broken["user_id"]
    with pytest.raises(errors.DecodeError):
        models.SessionView.from_json(broken)
    with pytest.raises(errors.DecodeError):
        models.SessionView.from_json(session_json(state="paused"))
    with pytest.raises(errors.DecodeError):
        models.SessionView.from_json([])


def test_token_is_not_in_repr() -> None:
    created = models.CreateResult.from_json(
        {"session": session_json(), "token": "SECRET-TOKEN"}, 201
    )
    assert "SECRET-TOKEN" not in repr(created)
    assert created.token == "SECRET-TOKEN" and not created.replayed
    again = models.CreateResult.from_json({"session": session_json(), "token": "SECRET-TOKEN"}, 200)
    assert again.replayed


def test_validate_both_shapes() -> None:
    ok = models.ValidateResult.from_json(
        {
            "valid": True,
            "session": session_json(),
            "seconds_until_idle_end": 899,
            "seconds_until_session_end": 28799,
        }
    )
    assert ok.valid and ok.session is not None and ok.seconds_until_idle_end == 899
    assert ok.cached_age is None
    no = models.ValidateResult.from_json({"valid": False, "reason": "blocked"})
    assert not no.valid and no.blocked and no.session is None
    with pytest.raises(errors.DecodeError):
        models.ValidateResult.from_json({"valid": "yes"})


def test_verify_invalidate_config() -> None:
    v = models.VerifyResult.from_json({"verified": "s_1", "ended": 2, "fanout": {"b": "queued"}})
    assert v == models.VerifyResult("s_1", 2, {"b": "queued"})
    i = models.InvalidateResult.from_json({"ended": 3, "fanout": {}})
    assert i.ended == 3
    cfg = models.ClusterConfig.from_json(
        {
            "policy": {
                "idle_timeout": "15m",
                "max_lifetime": "8h",
                "max_concurrent_sessions": 3,
                "on_limit": "block_new",
                "max_clock_skew": "500ms",
                "touch_interval": "2s",
                "retention": "1day",
            },
            "features": ["federation"],
            "site": "local",
        }
    )
    assert cfg.policy is not None and cfg.policy.idle_timeout_seconds == 900
    assert cfg.policy.extra == {"retention": "1day"}
    assert cfg.site == "local"
    assert models.ClusterConfig.from_json({"policy": None}).policy is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30),
        ("15m", 900),
        ("8h", 28800),
        ("7d", 604800),
        ("1h 30m", 5400),
        ("1day", 86400),
        ("2h 5m 3s", 7503),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert models.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "15", "m", "15 parsecs", "1h x"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        models.parse_duration(text)


def test_times() -> None:
    assert models.parse_time("2026-01-01T00:00:00Z").tzinfo is not None
    assert models.parse_time("2026-01-01T00:00:00.1Z").microsecond == 100000
    assert models.parse_time("2026-01-01T00:00:00.123456789Z").microsecond == 123456
    with pytest.raises(errors.DecodeError):
        models.parse_time("yesterday")

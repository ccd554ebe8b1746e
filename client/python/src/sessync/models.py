"""Typed results of the sessync v1 API: sessions, devices, validate/verify/invalidate answers,
the cluster config (policy), and the parsing of the node's JSON into them.

Every class is a frozen dataclass. Secrets (the token of a created session) are declared with
``repr=False`` so that a result printed or logged never shows them. Parsing is strict about the
fields the API promises and tolerant of fields it adds later (they are ignored); a body that does
not fit raises :class:`sessync.errors.DecodeError`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional

__all__ = [
    "ClusterConfig",
    "CreateResult",
    "Device",
    "EndReason",
    "InvalidateResult",
    "Policy",
    "SessionState",
    "SessionView",
    "TouchResult",
    "ValidateResult",
    "VerifyResult",
    "parse_duration",
    "parse_time",
]


class SessionState(str, enum.Enum):
    """Where a session is in its life (``state`` on the wire)."""

    ACTIVE = "active"
    """Valid: validate answers ``valid: true`` until it ends."""
    BLOCKED = "blocked"
    """Created over the limit under ``on_limit = "block_new"``: valid only after a verify."""
    ENDED = "ended"
    """Over; ``end_reason`` says why."""


class EndReason(str, enum.Enum):
    """Why a session ended (``end_reason`` on the wire)."""

    LOGOUT = "logout"
    IDLE_TIMEOUT = "idle_timeout"
    MAX_LIFETIME = "max_lifetime"
    EVICTED = "evicted"
    SUPERSEDED = "superseded"
    INVALIDATED = "invalidated"
    ADMIN = "admin"


@dataclass(frozen=True)
class Device:
    """The device a session was created on, as the app describes it; every field is optional
    and at most 512 bytes."""

    name: Optional[str] = None
    id: Optional[str] = None
    user_agent: Optional[str] = None
    ip: Optional[str] = None

    def to_json(self) -> Dict[str, str]:
        """The wire form: only the fields that are set."""
        out: Dict[str, str] = {}
        for key in ("name", "id", "user_agent", "ip"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    @classmethod
    def from_json(cls, raw: Any) -> Device:
        if raw is None:
            return cls()
        obj = _obj(raw, "device")
        return cls(
            name=_opt_str(obj, "name"),
            id=_opt_str(obj, "id"),
            user_agent=_opt_str(obj, "user_agent"),
            ip=_opt_str(obj, "ip"),
        )


@dataclass(frozen=True)
class SessionView:
    """A session as every endpoint shows it. ``session_id`` is a public handle, safe to show and
    log; the token is never part of it."""

    session_id: str
    user_id: str
    state: SessionState
    end_reason: Optional[EndReason]
    device: Device
    origin: Optional[str]
    created_at: datetime
    last_seen_at: datetime
    idle_expires_at: datetime
    """When the session ends if it is not used again."""
    expires_at: datetime
    """When the session ends however active it is."""
    ended_at: Optional[datetime]

    @property
    def is_active(self) -> bool:
        return self.state is SessionState.ACTIVE

    @property
    def is_live(self) -> bool:
        """Active or blocked: not ended."""
        return self.state is not SessionState.ENDED

    @classmethod
    def from_json(cls, raw: Any) -> SessionView:
        obj = _obj(raw, "session")
        end_reason = obj.get("end_reason")
        ended_at = obj.get("ended_at")
        return cls(
            session_id=_str(obj, "session_id"),
            user_id=_str(obj, "user_id"),
            state=_enum(SessionState, obj.get("state"), "state"),
            end_reason=None if end_reason is None else _enum(EndReason, end_reason, "end_reason"),
            device=Device.from_json(obj.get("device")),
            origin=_opt_str(obj, "origin"),
            created_at=parse_time(_str(obj, "created_at")),
            last_seen_at=parse_time(_str(obj, "last_seen_at")),
            idle_expires_at=parse_time(_str(obj, "idle_expires_at")),
            expires_at=parse_time(_str(obj, "expires_at")),
            ended_at=None if ended_at is None else parse_time(_str(obj, "ended_at")),
        )


@dataclass(frozen=True)
class CreateResult:
    """The answer of a create (a login). ``token`` is shown once: hand it to the user's device
    (an HttpOnly cookie) and never log it; it is left out of ``repr``."""

    session: SessionView
    token: str = field(repr=False)
    replayed: bool = False
    """True when the node answered 200 with a session it had already made for this
    idempotency key (a retried create), False for a new one (201)."""

    @classmethod
    def from_json(cls, raw: Any, status: int = 201) -> CreateResult:
        obj = _obj(raw, "answer")
        return cls(
            session=SessionView.from_json(obj.get("session")),
            token=_str(obj, "token"),
            replayed=status == 200,
        )


@dataclass(frozen=True)
class ValidateResult:
    """Whether a token is valid now. ``valid: False`` with a ``reason`` (an end reason,
    ``blocked`` or ``unknown``) is an answer, not an error."""

    valid: bool
    session: Optional[SessionView] = None
    seconds_until_idle_end: Optional[int] = None
    seconds_until_session_end: Optional[int] = None
    reason: Optional[str] = None
    cached_age: Optional[float] = None
    """None for an answer straight from the cluster; for one served from the client's validate
    cache, how many seconds ago the cluster gave it."""

    @property
    def blocked(self) -> bool:
        """The session exists but waits for a verify (``on_limit = "block_new"``)."""
        return not self.valid and self.reason == "blocked"

    @classmethod
    def from_json(cls, raw: Any) -> ValidateResult:
        obj = _obj(raw, "answer")
        valid = obj.get("valid")
        if not isinstance(valid, bool):
            raise _decode("`valid` is not a boolean")
        session = obj.get("session")
        return cls(
            valid=valid,
            session=None if session is None else SessionView.from_json(session),
            seconds_until_idle_end=_opt_int(obj, "seconds_until_idle_end"),
            seconds_until_session_end=_opt_int(obj, "seconds_until_session_end"),
            reason=_opt_str(obj, "reason"),
        )


@dataclass(frozen=True)
class TouchResult:
    """The answer of a touch: the session and how long it has left."""

    session: SessionView
    seconds_until_idle_end: int
    seconds_until_session_end: int

    @classmethod
    def from_json(cls, raw: Any) -> TouchResult:
        obj = _obj(raw, "answer")
        return cls(
            session=SessionView.from_json(obj.get("session")),
            seconds_until_idle_end=_int(obj, "seconds_until_idle_end"),
            seconds_until_session_end=_int(obj, "seconds_until_session_end"),
        )


@dataclass(frozen=True)
class VerifyResult:
    """The answer of a verify: the session kept, how many others ended (``superseded``), and
    per target site how the fan-out went (``delivered``, ``queued`` or ``unknown_site``)."""

    verified: str
    ended: int
    fanout: Dict[str, str]

    @classmethod
    def from_json(cls, raw: Any) -> VerifyResult:
        obj = _obj(raw, "answer")
        return cls(
            verified=_str(obj, "verified"),
            ended=_int(obj, "ended"),
            fanout=_str_map(obj.get("fanout"), "fanout"),
        )


@dataclass(frozen=True)
class InvalidateResult:
    """The answer of an invalidate: how many sessions ended, and the fan-out per target."""

    ended: int
    fanout: Dict[str, str]

    @classmethod
    def from_json(cls, raw: Any) -> InvalidateResult:
        obj = _obj(raw, "answer")
        return cls(ended=_int(obj, "ended"), fanout=_str_map(obj.get("fanout"), "fanout"))


@dataclass(frozen=True)
class Policy:
    """The replicated session policy. Durations are kept as the node writes them (``"15m"``);
    the ``*_seconds`` properties read them as seconds."""

    idle_timeout: str
    max_lifetime: str
    max_concurrent_sessions: int
    """0 means no limit."""
    on_limit: str
    """``deny``, ``block_new`` or ``evict_oldest``."""
    max_clock_skew: Optional[str] = None
    touch_interval: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    """Every other key the node sent (retention, audit limits, ...)."""

    @property
    def idle_timeout_seconds(self) -> float:
        return parse_duration(self.idle_timeout)

    @property
    def max_lifetime_seconds(self) -> float:
        return parse_duration(self.max_lifetime)

    @classmethod
    def from_json(cls, raw: Any) -> Policy:
        obj = _obj(raw, "policy")
        known = {
            "idle_timeout",
            "max_lifetime",
            "max_concurrent_sessions",
            "on_limit",
            "max_clock_skew",
            "touch_interval",
        }
        return cls(
            idle_timeout=_str(obj, "idle_timeout"),
            max_lifetime=_str(obj, "max_lifetime"),
            max_concurrent_sessions=_int(obj, "max_concurrent_sessions"),
            on_limit=_str(obj, "on_limit"),
            max_clock_skew=_opt_str(obj, "max_clock_skew"),
            touch_interval=_opt_str(obj, "touch_interval"),
            extra={k: v for k, v in obj.items() if k not in known},
        )


@dataclass(frozen=True)
class ClusterConfig:
    """``GET /v1/config``: the replicated policy (None before the first leader wrote it), the
    features of the build and the site's name (absent for an app key, which gets the policy
    alone)."""

    policy: Optional[Policy]
    features: List[str] = field(default_factory=list)
    site: Optional[str] = None

    @classmethod
    def from_json(cls, raw: Any) -> ClusterConfig:
        obj = _obj(raw, "answer")
        policy = obj.get("policy")
        features = obj.get("features") or []
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise _decode("`features` is not a list of strings")
        return cls(
            policy=None if policy is None else Policy.from_json(policy),
            features=list(features),
            site=_opt_str(obj, "site"),
        )


# --- times and durations -------------------------------------------------------------------


def parse_time(text: str) -> datetime:
    """Reads an RFC 3339 UTC time as the node writes it (``2026-01-01T00:00:00.000Z``) into an
    aware datetime."""
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    # Python 3.9/3.10 fromisoformat takes 3 or 6 fraction digits only: pad or cut to 6.
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$", raw)
    if m is None:
        raise _decode(f"`{text}` is not an RFC 3339 time")
    head, frac, tail = m.groups()
    if frac is not None:
        raw = f"{head}.{(frac + '000000')[:6]}{tail}"
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as e:
        raise _decode(f"`{text}` is not an RFC 3339 time") from e
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "msec": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
    "w": 604800.0,
    "week": 604800.0,
    "weeks": 604800.0,
}


def parse_duration(text: str) -> float:
    """Reads a duration as the node writes one (``500ms``, ``15m``, ``1h 30m``) into seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-zµ]+)", text.strip().lower())
    rebuilt = "".join(n + u for n, u in parts)
    if not parts or rebuilt != re.sub(r"\s+", "", text.strip().lower()):
        raise ValueError(f"`{text}` is not a duration such as 500ms, 30s, 15m, 8h")
    total = 0.0
    for number, unit in parts:
        if unit not in _UNITS:
            raise ValueError(f"`{text}`: unknown unit `{unit}`")
        total += float(number) * _UNITS[unit]
    return total


# --- strict field readers ------------------------------------------------------------------


def _decode(message: str) -> Exception:
    from .errors import DecodeError  # errors imports models: import here, not at the top

    return DecodeError(message)


def _obj(raw: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(raw, dict):
        raise _decode(f"{what} is not a JSON object")
    return raw


def _str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise _decode(f"`{key}` is missing or not a string")
    return value


def _opt_str(obj: Mapping[str, Any], key: str) -> Optional[str]:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise _decode(f"`{key}` is not a string")
    return value


def _int(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _decode(f"`{key}` is missing or not an integer")
    return value


def _opt_int(obj: Mapping[str, Any], key: str) -> Optional[int]:
    if obj.get(key) is None:
        return None
    return _int(obj, key)


def _enum(kind: Any, value: Any, key: str) -> Any:
    try:
        return kind(value)
    except ValueError as e:
        raise _decode(f"`{key}` has an unknown value {value!r}") from e


def _str_map(raw: Any, key: str) -> Dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise _decode(f"`{key}` is not an object of strings")
    return dict(raw)

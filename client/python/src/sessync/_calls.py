"""Each API call as data: method, path, JSON body, whether repeating it is harmless, and how
its answer is read. The sync and async clients run the same :class:`Call` objects, so the two
cannot drift apart; building them does no I/O and is unit-tested on its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Generic, List, Mapping, Optional, Sequence, TypeVar, Union

from ._routing import encode_component, user_segment
from .errors import InvalidArgument
from .models import (
    ClusterConfig,
    CreateResult,
    Device,
    InvalidateResult,
    SessionView,
    TouchResult,
    ValidateResult,
    VerifyResult,
)

T = TypeVar("T")

#: ``consistency`` values of validate.
CONSISTENCIES = ("linearizable", "local")
#: ``state`` values of a session list.
LIST_STATES = ("all", "active", "blocked", "live", "ended")
#: Most items asked per page of a list (the node's maximum).
PAGE_LIMIT = 1000
#: Pages one list is fetched in at most.
MAX_PAGES = 1000

DeviceLike = Union[Device, Mapping[str, Optional[str]], None]


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and how to read its 2xx answer (``parse(status, json)``)."""

    method: str
    path: str
    body: Optional[Dict[str, Any]] = field(repr=False)  # may hold a token
    repeatable: bool
    parse: Callable[[int, Any], T]


def fresh_idempotency_key() -> str:
    """A random idempotency key, prefixed so it reads as the client's own."""
    return f"auto-{uuid.uuid4().hex}"


def session_path(session_id: str) -> str:
    if not session_id:
        raise InvalidArgument("session id must not be empty")
    return f"/v1/sessions/{encode_component(session_id)}"


def _device_json(device: DeviceLike) -> Dict[str, str]:
    if device is None:
        return {}
    if isinstance(device, Device):
        return device.to_json()
    unknown = set(device) - {"name", "id", "user_agent", "ip"}
    if unknown:
        raise InvalidArgument(f"device has unknown fields: {', '.join(sorted(unknown))}")
    return {k: v for k, v in device.items() if v is not None}


def create_session(
    user_id: str,
    device: DeviceLike = None,
    origin: Optional[str] = None,
    idempotency_key: Optional[str] = None,
) -> Call[CreateResult]:
    """``POST /v1/sessions``. Always carries an idempotency key (the caller's, or a fresh
    one), so the create can be repeated after a broken connection without making two
    sessions: the key is fixed here, once, and reused by every retry of the call."""
    if not user_id:
        raise InvalidArgument("user id must not be empty")
    body: Dict[str, Any] = {
        "user_id": user_id,
        "idempotency_key": idempotency_key or fresh_idempotency_key(),
    }
    dev = _device_json(device)
    if dev:
        body["device"] = dev
    if origin is not None:
        body["origin"] = origin
    return Call("POST", "/v1/sessions", body, True, lambda s, j: CreateResult.from_json(j, s))


def validate(
    token: str, touch: bool = True, consistency: str = "linearizable"
) -> Call[ValidateResult]:
    """``POST /v1/sessions/validate`` (repeatable: a touch twice is a touch)."""
    if consistency not in CONSISTENCIES:
        raise InvalidArgument(f"consistency must be one of {CONSISTENCIES}, not {consistency!r}")
    if not token:
        raise InvalidArgument("token must not be empty")
    body = {"token": token, "touch": touch, "consistency": consistency}
    return Call(
        "POST", "/v1/sessions/validate", body, True, lambda _s, j: ValidateResult.from_json(j)
    )


def touch(session_id: str) -> Call[TouchResult]:
    return Call(
        "POST",
        f"{session_path(session_id)}/touch",
        None,
        True,
        lambda _s, j: TouchResult.from_json(j),
    )


def _session_of(_status: int, raw: Any) -> SessionView:
    return SessionView.from_json(raw.get("session") if isinstance(raw, dict) else None)


def get_session(session_id: str) -> Call[SessionView]:
    return Call("GET", session_path(session_id), None, True, _session_of)


def end_session(session_id: str) -> Call[SessionView]:
    """``DELETE /v1/sessions/{id}``: idempotent, the first end stands."""
    return Call("DELETE", session_path(session_id), None, True, _session_of)


def list_page(user_id: str, state: str, cursor: Optional[str]) -> Call[Dict[str, Any]]:
    """One page of ``GET /v1/users/{user_id}/sessions``; the client follows ``next_cursor``."""
    if state not in LIST_STATES:
        raise InvalidArgument(f"state must be one of {LIST_STATES}, not {state!r}")
    path = f"/v1/users/{user_segment(user_id)}/sessions?state={state}&limit={PAGE_LIMIT}"
    if cursor is not None:
        path += f"&cursor={encode_component(cursor)}"
    return Call("GET", path, None, True, lambda _s, j: _page(j))


def _page(raw: Any) -> Dict[str, Any]:
    from .errors import DecodeError

    if not isinstance(raw, dict) or not isinstance(raw.get("sessions"), list):
        raise DecodeError("`sessions` is missing or not a list")
    return raw


def page_sessions(page: Dict[str, Any]) -> List[SessionView]:
    return [SessionView.from_json(s) for s in page["sessions"]]


def _targets(targets: Sequence[str]) -> List[str]:
    if isinstance(targets, str):
        raise InvalidArgument("targets is a list of site names, not one string")
    return list(targets)


def verify(
    user_id: str, session_id: Optional[str] = None, targets: Sequence[str] = ()
) -> Call[VerifyResult]:
    """``POST /v1/users/{user_id}/verify``: the chosen session (default: the newest live one)
    becomes the user's only one; the others end ``superseded``. Not repeated after a broken
    connection (it is not idempotent when ``session_id`` is None)."""
    body: Dict[str, Any] = {}
    if session_id is not None:
        body["session_id"] = session_id
    if targets:
        body["targets"] = _targets(targets)
    return Call(
        "POST",
        f"/v1/users/{user_segment(user_id)}/verify",
        body,
        False,
        lambda _s, j: VerifyResult.from_json(j),
    )


def invalidate(
    user_id: str, session_id: Optional[str] = None, targets: Sequence[str] = ()
) -> Call[InvalidateResult]:
    """``POST /v1/users/{user_id}/invalidate``: ends one session, or all of the user's. Like
    every POST but create, validate and touch, not resent after a broken connection."""
    body: Dict[str, Any] = {}
    if session_id is not None:
        body["session_id"] = session_id
    if targets:
        body["targets"] = _targets(targets)
    return Call(
        "POST",
        f"/v1/users/{user_segment(user_id)}/invalidate",
        body,
        False,
        lambda _s, j: InvalidateResult.from_json(j),
    )


def get_config() -> Call[ClusterConfig]:
    return Call("GET", "/v1/config", None, True, lambda _s, j: ClusterConfig.from_json(j))


def set_policy(changes: Mapping[str, Any]) -> Call[ClusterConfig]:
    """``PUT /v1/config/policy`` (admin): the keys given replace the replicated values."""
    if not changes:
        raise InvalidArgument("set_policy needs at least one key")
    return Call(
        "PUT", "/v1/config/policy", dict(changes), True, lambda _s, j: ClusterConfig.from_json(j)
    )


def raw(method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Call[Any]:
    """Any endpoint, answered as decoded JSON (admin and cluster calls, tests). Repeated after
    a broken connection only for GET, PUT and DELETE."""
    if not path.startswith("/"):
        raise InvalidArgument("path must start with /")
    method = method.upper()
    return Call(method, path, body, method in ("GET", "PUT", "DELETE"), lambda _s, j: j)

"""The exceptions of the sessync client: one class per API error code, plus the transport,
decoding and argument failures, and :func:`error_from_response`, the pure mapping of an HTTP
status and the node's ``{"error": {...}}`` body onto them (the same as the Rust client's
``ClientError::from_response``).

Hierarchy::

    SessyncError                    code, status, message, field
    ├── BadRequest                  400 bad_request (field names the field at fault)
    ├── Unauthorized                401 unauthorized
    ├── Forbidden                   403 forbidden
    ├── NotFound                    404 not_found
    ├── RequestTimeout              408 request_timeout
    ├── Conflict                    409 conflict (and any other 409 but the two below)
    │   └── AlreadyInitialized      409 already_initialized
    ├── LimitReached                409 limit_reached (active_sessions: the user's sessions)
    ├── PayloadTooLarge             413 payload_too_large
    ├── OutboxFull                  429 outbox_full
    ├── InternalError               500 internal
    ├── Unavailable                 503 unavailable: retry later or elsewhere
    │   ├── ClockSkew               503 clock_skew
    │   └── TransportError          no answer: refused, reset, timed out (status None)
    ├── ApiError                    any other status or unknown code
    ├── DecodeError                 a success whose body is not what the endpoint answers
    ├── InvalidArgument             the call cannot be sent (also a ValueError)
    └── EventsTrimmed               the events stream cannot resume where asked (see events)

``LimitReached`` is not a ``Conflict``: code that catches ``Conflict`` (touching an ended
session) should not swallow a refused login by accident.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Dict, List, Optional, Tuple, Type

from .models import SessionView

__all__ = [
    "AlreadyInitialized",
    "ApiError",
    "BadRequest",
    "ClockSkew",
    "Conflict",
    "DecodeError",
    "EventsTrimmed",
    "Forbidden",
    "InternalError",
    "InvalidArgument",
    "LimitReached",
    "NotFound",
    "OutboxFull",
    "PayloadTooLarge",
    "RequestTimeout",
    "SessyncError",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "error_from_response",
]

#: Longest piece of an unexpected body quoted in an error message, in characters.
MAX_QUOTED_BODY = 300

_UNSET: Any = object()


class SessyncError(Exception):
    """Any failure of a sessync call.

    ``code`` is the API's snake_case error code (None when there was no answer or no code),
    ``status`` the HTTP status (None without an answer), ``message`` the node's explanation,
    ``field`` the request field at fault (for ``bad_request``).
    """

    default_code: ClassVar[Optional[str]] = None
    default_status: ClassVar[Optional[int]] = None

    def __init_subclass__(cls, code: Any = _UNSET, status: Any = _UNSET, **kwargs: Any) -> None:
        """``class NotFound(SessyncError, code="not_found", status=404)`` sets the defaults."""
        super().__init_subclass__(**kwargs)
        if code is not _UNSET:
            cls.default_code = code
        if status is not _UNSET:
            cls.default_status = status

    def __init__(
        self,
        message: str,
        *,
        code: Optional[str] = None,
        status: Optional[int] = None,
        field: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code
        self.status = status if status is not None else self.default_status
        self.field = field

    def __str__(self) -> str:
        head = []
        if self.status is not None:
            head.append(f"HTTP {self.status}")
        if self.code is not None:
            head.append(self.code)
        return f"{' '.join(head)}: {self.message}" if head else self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, "
            f"message={self.message!r}, field={self.field!r})"
        )

    @property
    def is_unavailable(self) -> bool:
        """The cluster (or the network) could not answer now; the same call may work later."""
        return isinstance(self, Unavailable)


class BadRequest(SessyncError, code="bad_request", status=400):
    """A field of the request is wrong; ``field`` names it (``body`` for unparseable JSON)."""


class Unauthorized(SessyncError, code="unauthorized", status=401):
    """The API key is missing or wrong."""


class Forbidden(SessyncError, code="forbidden", status=403):
    """The API key is right but its role may not use this endpoint."""


class NotFound(SessyncError, code="not_found", status=404):
    """No such session (or path), or a user with nothing to verify."""


class RequestTimeout(SessyncError, code="request_timeout", status=408):
    """The request's body did not reach the node in time."""


class Conflict(SessyncError, code="conflict", status=409):
    """A 409 other than ``limit_reached``: touching an ended or blocked session, an
    idempotency key another API key used, a refused membership change."""


class AlreadyInitialized(Conflict, code="already_initialized"):
    """``POST /cluster/init`` on an initialised cluster."""


class LimitReached(SessyncError, code="limit_reached", status=409):
    """A login refused under ``on_limit = "deny"``. ``active_sessions`` lists the user's active
    sessions, so a UI can offer to end one and try again."""

    def __init__(
        self,
        message: str,
        *,
        active_sessions: Optional[List[SessionView]] = None,
        code: Optional[str] = None,
        status: Optional[int] = None,
    ) -> None:
        super().__init__(message, code=code, status=status)
        self.active_sessions: List[SessionView] = list(active_sessions or [])


class PayloadTooLarge(SessyncError, code="payload_too_large", status=413):
    """The request body is over the node's limit (16 KiB unless configured)."""


class OutboxFull(SessyncError, code="outbox_full", status=429):
    """A verify or invalidate named a peer site whose queue is full: nothing changed."""


class InternalError(SessyncError, code="internal", status=500):
    """The node failed; the message says how."""


class Unavailable(SessyncError, code="unavailable", status=503):
    """No leader or no quorum (after every retry), or no node answered at all: the cluster
    cannot answer now. Retry later; show the user a "try again" page rather than logging
    them out."""


class ClockSkew(Unavailable, code="clock_skew"):
    """The node's clock, or its leader's, is off the voters' median by more than
    ``max_clock_skew``; nothing was stamped. Another node or a later try may answer."""


class TransportError(Unavailable, code=None, status=None):
    """No answer: connection refused or reset, DNS failure, or the per-call deadline passed."""


class ApiError(SessyncError):
    """Any other error status, or a code this client does not know."""


class DecodeError(SessyncError):
    """A success status whose body is not what the endpoint answers."""


class InvalidArgument(SessyncError, ValueError):
    """The call cannot be sent: no endpoints, an endpoint that is not an http(s) URL, a user
    id that cannot be a path segment, a bad option."""


class EventsTrimmed(SessyncError, code="trimmed"):
    """Raised by an events stream opened with ``on_trimmed="raise"`` when the node cannot
    resume at ``Last-Event-ID`` (``event: trimmed``: the position is older than retention).
    Changes may be gone: re-check the sessions you follow (``get_session``/``validate``), then
    follow the stream again from now."""

    def __init__(self, message: str, *, last_event_id: Optional[str], data: Any = None) -> None:
        super().__init__(message)
        self.last_event_id = last_event_id
        self.data = data


# --- mapping -------------------------------------------------------------------------------

_BY_CODE: Dict[str, Type[SessyncError]] = {
    "bad_request": BadRequest,
    "unauthorized": Unauthorized,
    "forbidden": Forbidden,
    "not_found": NotFound,
    "conflict": Conflict,
    "already_initialized": AlreadyInitialized,
    "limit_reached": LimitReached,
    "payload_too_large": PayloadTooLarge,
    "request_timeout": RequestTimeout,
    "outbox_full": OutboxFull,
    "unavailable": Unavailable,
    "clock_skew": ClockSkew,
    "internal": InternalError,
}

_BY_STATUS: Dict[int, Type[SessyncError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    408: RequestTimeout,
    409: Conflict,
    413: PayloadTooLarge,
    500: InternalError,
    503: Unavailable,
}


def _quote_body(status: int, body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return f"HTTP status {status} with an empty body"
    if len(text) > MAX_QUOTED_BODY:
        return text[:MAX_QUOTED_BODY] + "…"
    return text


def _read_body(
    status: int, body: bytes
) -> Tuple[Optional[str], str, Optional[str], Optional[List[Any]]]:
    """(code, message, field, active_sessions) from an error body, as loosely as it comes."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None, _quote_body(status, body), None, None
    detail = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(detail, dict):
        return None, _quote_body(status, body), None, None
    code = detail.get("code") if isinstance(detail.get("code"), str) else None
    message = detail.get("message") if isinstance(detail.get("message"), str) else ""
    field = detail.get("field") if isinstance(detail.get("field"), str) else None
    active = detail.get("active_sessions")
    return code, message or "", field, active if isinstance(active, list) else None


def error_from_response(status: int, body: bytes) -> SessyncError:
    """Maps an error answer (any non-2xx status) and its body to the matching exception.

    The code decides when the client knows it and it fits the status; else the status does. An
    unknown code is kept in ``code`` and named at the start of the message.
    """
    code, message, field, active = _read_body(status, body)
    if code == "limit_reached":
        sessions: List[SessionView] = []
        for raw in active or []:
            try:
                sessions.append(SessionView.from_json(raw))
            except DecodeError:
                continue  # one odd entry must not hide the limit itself
        return LimitReached(message, active_sessions=sessions, status=status)
    known = _BY_CODE.get(code) if code is not None else None
    cls: Type[SessyncError]
    if known is not None and known.default_status == status:
        cls = known
    else:
        cls = _BY_STATUS.get(status, ApiError)
        if code is not None and known is None:
            message = f"{code}: {message}" if message else code
    if not message:
        message = _quote_body(status, b"")
    return cls(message, code=code, status=status, field=field)

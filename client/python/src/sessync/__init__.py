"""sessync: a Python client for the sessync session service (a replicated, multi-site store
of user sessions), with integrations for Django (``sessync.django``), Flask (``sessync.flask``)
and FastAPI/Starlette (``sessync.fastapi``).

The core:

- :class:`Client` (sync) and :class:`AsyncClient` (async): every app endpoint, with leader
  discovery, round-robin reads, failover and bounded retries within a per-call deadline, and an
  idempotency key on every create;
- typed results (:mod:`sessync.models`) and one exception per API error code
  (:mod:`sessync.errors`);
- :class:`ValidateCache`, an optional bounded cache of validate answers;
- the events stream (:mod:`sessync.events`) with resume.

Tokens and API keys are never logged and never part of a ``repr``.
"""

from ._version import __version__
from .aio import AsyncClient
from .cache import ValidateCache
from .client import Client
from .errors import (
    AlreadyInitialized,
    ApiError,
    BadRequest,
    ClockSkew,
    Conflict,
    DecodeError,
    EventsTrimmed,
    Forbidden,
    InternalError,
    InvalidArgument,
    LimitReached,
    NotFound,
    OutboxFull,
    PayloadTooLarge,
    RequestTimeout,
    SessyncError,
    TransportError,
    Unauthorized,
    Unavailable,
    error_from_response,
)
from .events import AsyncEventStream, Event, EventStream, LaggedEvent, SessionEvent, TrimmedEvent
from .models import (
    ClusterConfig,
    CreateResult,
    Device,
    EndReason,
    InvalidateResult,
    Policy,
    SessionState,
    SessionView,
    TouchResult,
    ValidateResult,
    VerifyResult,
)

__all__ = [
    "AlreadyInitialized",
    "ApiError",
    "AsyncClient",
    "AsyncEventStream",
    "BadRequest",
    "Client",
    "ClockSkew",
    "ClusterConfig",
    "Conflict",
    "CreateResult",
    "DecodeError",
    "Device",
    "EndReason",
    "Event",
    "EventStream",
    "EventsTrimmed",
    "Forbidden",
    "InternalError",
    "InvalidArgument",
    "InvalidateResult",
    "LaggedEvent",
    "LimitReached",
    "NotFound",
    "OutboxFull",
    "PayloadTooLarge",
    "Policy",
    "RequestTimeout",
    "SessionEvent",
    "SessionState",
    "SessionView",
    "SessyncError",
    "TouchResult",
    "TransportError",
    "TrimmedEvent",
    "Unauthorized",
    "Unavailable",
    "ValidateCache",
    "ValidateResult",
    "VerifyResult",
    "__version__",
    "error_from_response",
]

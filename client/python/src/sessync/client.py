"""The synchronous client, :class:`Client`: one method per endpoint of the app API (and the few
admin calls apps and tests need), each sent with failover, bounded retries, a per-attempt
timeout and a per-call deadline (see ``_routing.py`` for the rules).

Example::

    from sessync import Client

    with Client(["http://127.0.0.1:7101", "http://127.0.0.1:7102"], "demo-app-key-change-me") as c:
        created = c.create_session("alice", device={"name": "laptop"})
        answer = c.validate(created.token)
        assert answer.valid
        c.end_session(created.session.session_id)
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union

import httpx

from . import _calls
from ._base import (
    TIMED_OUT,
    UNCERTAIN,
    Answer,
    ClientBase,
    Failure,
    PathLike,
    classify,
    describe,
    worth_retrying,
)
from ._calls import Call, DeviceLike
from ._routing import DEFAULT_ROUNDS, DEFAULT_TIMEOUT, jittered_backoff
from .cache import ValidateCache
from .errors import TransportError
from .events import EventStream
from .models import (
    ClusterConfig,
    CreateResult,
    InvalidateResult,
    SessionView,
    TouchResult,
    ValidateResult,
    VerifyResult,
)

__all__ = ["Client"]

T = TypeVar("T")


class Client(ClientBase):
    """A thread-safe synchronous client for the sessync v1 API over one or more nodes.

    ``endpoints``: base URLs (a list, or one comma-separated string). ``api_key``: sent as
    ``Authorization: Bearer <key>`` (empty: no header); never logged nor shown by ``repr``.
    ``timeout``: the per-call deadline in seconds, retries and backoff included.
    ``attempt_timeout``: the longest one attempt may wait before the call moves on (default:
    only the deadline). ``rounds``: passes over the endpoint list a call may make.
    ``ca_file``, ``client_cert``, ``client_key``: TLS, as the Rust client's builder.
    ``cache``: an optional :class:`sessync.ValidateCache` (off by default).
    ``transport``: an httpx transport (tests use ``httpx.MockTransport``).
    """

    def __init__(
        self,
        endpoints: Union[Sequence[str], str],
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        attempt_timeout: Optional[float] = None,
        rounds: int = DEFAULT_ROUNDS,
        ca_file: Optional[PathLike] = None,
        client_cert: Optional[PathLike] = None,
        client_key: Optional[PathLike] = None,
        cache: Optional[ValidateCache] = None,
        transport: Optional[httpx.BaseTransport] = None,
        http_client: Optional[httpx.Client] = None,
    ) -> None:
        super().__init__(
            endpoints,
            api_key,
            timeout=timeout,
            attempt_timeout=attempt_timeout,
            rounds=rounds,
            ca_file=ca_file,
            client_cert=client_cert,
            client_key=client_key,
            cache=cache,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(transport=transport, **self._httpx_options())

    # --- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Closes the connection pool (if this client made it)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pinned(self, index: int) -> Client:
        """A client that talks to ``endpoints[index]`` only (no failover): for tests and
        probes. It shares this client's connection pool and key."""
        if not 0 <= index < len(self.router.endpoints):
            raise IndexError(
                f"pinned({index}) but the client has {len(self.router.endpoints)} endpoints"
            )
        c = Client(
            [self.router.endpoints[index]],
            self._api_key,
            timeout=self.timeout,
            attempt_timeout=self.attempt_timeout,
            rounds=1,
            http_client=self._http,
        )
        return c

    def with_api_key(self, api_key: str) -> Client:
        """This client with another key, sharing the connection pool (e.g. an admin key)."""
        c = Client(
            self.router.endpoints,
            api_key,
            timeout=self.timeout,
            attempt_timeout=self.attempt_timeout,
            rounds=self.router.rounds,
            http_client=self._http,
        )
        return c

    # --- sessions (role app) --------------------------------------------------------------

    def create_session(
        self,
        user_id: str,
        *,
        device: DeviceLike = None,
        origin: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> CreateResult:
        """``POST /v1/sessions``: logs a user in. The token is returned once: keep it in an
        HttpOnly cookie, never log it. Raises :class:`sessync.LimitReached` under
        ``on_limit = "deny"``; under ``block_new`` the session comes back ``blocked``. The
        idempotency key (``idempotency_key`` or a fresh uuid4) is reused by every retry."""
        return self._run(_calls.create_session(user_id, device, origin, idempotency_key))

    def validate(
        self,
        token: str,
        *,
        touch: bool = True,
        consistency: str = "linearizable",
        use_cache: bool = True,
    ) -> ValidateResult:
        """``POST /v1/sessions/validate``: whether a token is valid now (and, with ``touch``,
        marks it used). ``valid: False`` is an answer, not an error. Served from the client's
        cache when one is set and holds a fresh answer (``cached_age`` tells its age)."""
        call = _calls.validate(token, touch, consistency)
        hit = self._cached(token, use_cache)
        if hit is not None:
            return hit
        result = self._run(call)
        self._remember(token, result)
        return result

    def touch(self, session_id: str) -> TouchResult:
        """``POST /v1/sessions/{id}/touch``. :class:`sessync.Conflict` if ended or blocked."""
        return self._run(_calls.touch(session_id))

    def get_session(self, session_id: str) -> SessionView:
        """``GET /v1/sessions/{id}``. :class:`sessync.NotFound` if unknown."""
        return self._run(_calls.get_session(session_id))

    def end_session(self, session_id: str) -> SessionView:
        """``DELETE /v1/sessions/{id}``: ends it (``logout``); idempotent."""
        self._forget_session(session_id)
        return self._run(_calls.end_session(session_id))

    def list_sessions(
        self, user_id: str, *, include_ended: bool = False, state: Optional[str] = None
    ) -> List[SessionView]:
        """``GET /v1/users/{user_id}/sessions``, every page: the user's active sessions (all
        of them with ``include_ended``; or any ``state`` of all, active, blocked, live,
        ended), newest first."""
        wanted = state or ("all" if include_ended else "active")
        out: List[SessionView] = []
        cursor: Optional[str] = None
        for _ in range(_calls.MAX_PAGES):
            page = self._run(_calls.list_page(user_id, wanted, cursor))
            out.extend(_calls.page_sessions(page))
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return out

    def verify(
        self, user_id: str, session_id: Optional[str] = None, targets: Sequence[str] = ()
    ) -> VerifyResult:
        """``POST /v1/users/{user_id}/verify``: keeps one session (default: the newest live
        one), ends the user's others (``superseded``); ``targets`` fan it out to peer sites."""
        self._forget_user(user_id)
        return self._run(_calls.verify(user_id, session_id, targets))

    def invalidate(
        self, user_id: str, session_id: Optional[str] = None, targets: Sequence[str] = ()
    ) -> InvalidateResult:
        """``POST /v1/users/{user_id}/invalidate``: ends one session, or every session of the
        user when ``session_id`` is None ("log out everywhere")."""
        self._forget_user(user_id)
        return self._run(_calls.invalidate(user_id, session_id, targets))

    def get_config(self) -> ClusterConfig:
        """``GET /v1/config``: the replicated policy (idle timeout, limit, ...)."""
        return self._run(_calls.get_config())

    def events(
        self,
        *,
        user_id: Optional[str] = None,
        last_event_id: Optional[str] = None,
        max_reconnects: int = 10,
        read_timeout: float = 45.0,
        on_trimmed: str = "yield",
    ) -> EventStream:
        """``GET /v1/events`` as an iterator of typed events (see :mod:`sessync.events`);
        use it in a ``with`` block or close it."""
        return EventStream(
            self,
            user_id=user_id,
            last_event_id=last_event_id,
            max_reconnects=max_reconnects,
            read_timeout=read_timeout,
            on_trimmed=on_trimmed,
        )

    # --- admin and probes -----------------------------------------------------------------

    def set_policy(self, **changes: Any) -> ClusterConfig:
        """``PUT /v1/config/policy`` (admin key): ``set_policy(idle_timeout="30m")``."""
        return self._run(_calls.set_policy(changes))

    def request(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        """Any endpoint with failover, answered as decoded JSON (errors mapped as usual)."""
        return self._run(_calls.raw(method, path, body))

    def request_raw(
        self,
        method: str,
        path: str,
        body: Optional[bytes] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Tuple[int, bytes]:
        """One request to the current endpoint only (no failover, no retry, no decoding):
        for probes and tests of malformed requests. ``headers`` replace the defaults."""
        call: Call[Any] = Call(method.upper(), path, None, False, lambda _s, j: j)
        outcome = self._attempt(
            self.router.current, call, body, time.monotonic() + self.timeout, dict(headers or {})
        )
        if isinstance(outcome, Failure):
            raise TransportError(outcome.message)
        return outcome.status, outcome.body

    def healthz(self) -> bool:
        status, _ = self.request_raw("GET", "/healthz")
        return status == 200

    def readyz(self) -> bool:
        status, _ = self.request_raw("GET", "/readyz")
        return status == 200

    # --- transport ------------------------------------------------------------------------

    def _run(self, call: Call[T]) -> T:
        return self._read(call, self._send(call))

    def _send(self, call: Call[Any]) -> Answer:
        """Sends with failover and retries; the answer of the node that gave one (a 503
        raises only when every attempt ended in one or without an answer)."""
        body = self._encode(call)
        deadline = time.monotonic() + self.timeout
        router = self.router
        start = router.first(call.method, call.path)
        last: Union[Answer, Failure, None] = None
        for attempt in range(router.attempts()):
            if attempt:
                pause = jittered_backoff(attempt - 1)
                if time.monotonic() + pause >= deadline:
                    break
                time.sleep(pause)
            index = router.index_for_attempt(start, attempt)
            outcome = self._attempt(index, call, body, deadline, None)
            if isinstance(outcome, Answer) and outcome.status != 503:
                router.answered(index, outcome.leader)
                return outcome
            router.failed(index)
            if not worth_retrying(outcome, call.repeatable):
                assert isinstance(outcome, Failure)
                raise TransportError(outcome.message)
            last = outcome
        raise self._give_up(call, last)

    def _attempt(
        self,
        index: int,
        call: Call[Any],
        body: Optional[bytes],
        deadline: float,
        extra_headers: Optional[Dict[str, str]],
    ) -> Union[Answer, Failure]:
        endpoint = self.router.endpoints[index]
        url = endpoint + call.path
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Failure(TIMED_OUT, f"{call.method} {url}: the {self.timeout}s deadline passed")
        limit = remaining if self.attempt_timeout is None else min(self.attempt_timeout, remaining)
        cut_short = limit < remaining
        try:
            response = self._http.request(
                call.method,
                url,
                content=body,
                headers=self._headers(body is not None, extra_headers),
                timeout=limit,
            )
        except httpx.HTTPError as e:
            kind = classify(e, cut_short)
            note = f" (attempt timeout {limit:.3g}s)" if kind == UNCERTAIN and cut_short else ""
            return Failure(kind, f"{call.method} {url}: {describe(e)}{note}")
        return self._answer_of(response, endpoint)

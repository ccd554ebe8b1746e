"""``GET /v1/events``: the node's Server-Sent Events as typed Python events, with resume.

The stream (any API key) carries one ``event: session`` per session state change (created,
blocked, activated, ended; touches are not sent), with ``id:`` the change's replicated
position (``<index>-<millis>``: the Raft log index and cluster time of the change, the same on
every node) and ``data: {"index", "session"}``. A subscriber that reconnects with
``Last-Event-ID`` first gets every session changed after that position, as it is now, then the
live changes: nothing in between is lost. When the position is older than what retention keeps
the stream starts with ``event: trimmed`` (``data: {"asked", "kept_since"}``): some changes may
be gone; reload what you keep of the users' sessions. Keep-alive comments are skipped; the
older ``event: lagged`` (``{"missed": n}``) is still understood.

The iterators remember the last ``id:`` and, when the connection breaks, ends or goes quiet
past the keep-alives (``read_timeout``, 45 s; the node sends one every 15 s), reconnect to the
next endpoint with ``Last-Event-ID``; reconnects are bounded (``max_reconnects`` failures in a
row, with a jittered backoff that honours the server's ``retry:``). A refusal that retrying
cannot fix (a wrong key, a bad id) ends the iteration at once. ``connect()`` returns once the
stream is up, so every later change is in it (as the Rust client's ``Client::events``).

``trimmed``: by default (as the Rust client) a :class:`TrimmedEvent` is yielded and the stream
goes on; with ``on_trimmed="raise"`` the iterator raises :class:`sessync.EventsTrimmed`
instead (re-check the sessions you follow, then open a new stream).

Example::

    with client.events(user_id="alice").connect() as stream:
        for event in stream:
            if isinstance(event, SessionEvent) and event.session.state is SessionState.ENDED:
                close_sockets_of(event.session.session_id)
            elif isinstance(event, TrimmedEvent):
                reload_sessions()
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    Iterator,
    List,
    Optional,
    Union,
)

import anyio
import httpx

from ._base import describe
from ._routing import encode_component
from .errors import (
    DecodeError,
    EventsTrimmed,
    InvalidArgument,
    TransportError,
    Unavailable,
    error_from_response,
)
from .models import SessionView

if TYPE_CHECKING:
    from .aio import AsyncClient
    from .client import Client

__all__ = [
    "AsyncEventStream",
    "Event",
    "EventStream",
    "EventTracker",
    "LaggedEvent",
    "RawEvent",
    "SSEDecoder",
    "SessionEvent",
    "TrimmedEvent",
]

#: Longest pause between two reconnects, in seconds.
MAX_RECONNECT_DELAY = 5.0
#: First pause, when the server did not send ``retry:``.
BASE_RECONNECT_DELAY = 0.1
#: Longest silence before a connection is taken for dead: the node sends a keep-alive every
#: 15 s (the Rust client's ``IDLE_TIMEOUT``).
DEFAULT_READ_TIMEOUT = 45.0


@dataclass(frozen=True)
class RawEvent:
    """One dispatched SSE event, as the wire had it."""

    event: str
    data: str
    id: Optional[str]


@dataclass(frozen=True)
class SessionEvent:
    """A session changed state: created, blocked, activated or ended. ``id`` is the position
    to resume after (``<index>-<millis>``); ``session`` is the session after the change."""

    id: Optional[str]
    index: int
    session: SessionView


@dataclass(frozen=True)
class LaggedEvent:
    """This subscriber was too slow: ``missed`` changes were dropped. Re-check the sessions you
    follow."""

    missed: int


@dataclass(frozen=True)
class TrimmedEvent:
    """The position asked for (``last_event_id``) is older than what the node keeps: some
    changes may be gone; reload what you keep of the users' sessions. ``data`` is the node's
    ``{"asked", "kept_since"}``."""

    last_event_id: Optional[str]
    data: Any = None

    @property
    def kept_since(self) -> Optional[str]:
        """Changes at or after this cluster time (RFC 3339) are all still kept."""
        value = self.data.get("kept_since") if isinstance(self.data, dict) else None
        return value if isinstance(value, str) else None


Event = Union[SessionEvent, LaggedEvent, TrimmedEvent]


class SSEDecoder:
    """The SSE line protocol (WHATWG "event stream interpretation"): feed it lines without
    their end-of-line; it returns an event at each blank line that ends one."""

    def __init__(self) -> None:
        self._event = ""
        self._data: List[str] = []
        self.last_id: Optional[str] = None
        self.retry_ms: Optional[int] = None

    def feed(self, line: str) -> Optional[RawEvent]:
        if line == "":
            if not self._data:
                self._event = ""
                return None
            out = RawEvent(self._event or "message", "\n".join(self._data), self.last_id)
            self._event, self._data = "", []
            return out
        if line.startswith(":"):
            return None  # a comment: keep-alive
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self.last_id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None


class EventTracker:
    """Turns raw events into typed ones and keeps the resume position (pure, no I/O)."""

    def __init__(self, last_event_id: Optional[str], on_trimmed: str) -> None:
        if on_trimmed not in ("raise", "yield"):
            raise InvalidArgument("on_trimmed must be 'raise' or 'yield'")
        self.last_event_id = last_event_id
        self.on_trimmed = on_trimmed

    def handle(self, raw: RawEvent) -> Optional[Event]:
        """The typed event for ``raw`` (None for kinds this client does not know); raises
        :class:`EventsTrimmed` for ``trimmed`` unless told to yield it."""
        data = _json(raw.data)
        if raw.event == "session":
            if not isinstance(data, dict):
                raise DecodeError("a session event's data is not a JSON object")
            index = data.get("index")
            if not isinstance(index, int):
                raise DecodeError("a session event has no integer `index`")
            event = SessionEvent(raw.id, index, SessionView.from_json(data.get("session")))
            if raw.id:
                self.last_event_id = raw.id
            return event
        if raw.event == "lagged":
            missed = data.get("missed") if isinstance(data, dict) else None
            return LaggedEvent(missed if isinstance(missed, int) else 0)
        if raw.event == "trimmed":
            asked = self.last_event_id
            if raw.id:
                self.last_event_id = raw.id
            if self.on_trimmed == "raise":
                raise EventsTrimmed(
                    f"the events after id {asked} are no longer held by the node",
                    last_event_id=asked,
                    data=data,
                )
            return TrimmedEvent(asked, data)
        if raw.id:
            self.last_event_id = raw.id
        return None


def _json(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _path(user_id: Optional[str]) -> str:
    if user_id is None:
        return "/v1/events"
    if not user_id:
        raise InvalidArgument("user_id must not be empty")
    return f"/v1/events?user_id={encode_component(user_id)}"


def _reconnect_delay(failures: int, retry_ms: Optional[int]) -> float:
    base = BASE_RECONNECT_DELAY if retry_ms is None else retry_ms / 1000.0
    ceiling = min(base * (2 ** min(max(failures - 1, 0), 10)), MAX_RECONNECT_DELAY)
    return random.uniform(ceiling / 2, ceiling) if ceiling > 0 else 0.0


class _StreamBase:
    """Settings and reconnect bookkeeping of both iterators."""

    def __init__(
        self,
        endpoints: List[str],
        start: int,
        *,
        user_id: Optional[str],
        last_event_id: Optional[str],
        max_reconnects: int,
        read_timeout: float,
        connect_timeout: float,
        on_trimmed: str,
    ) -> None:
        self._endpoints = endpoints
        self._index = start
        self._path = _path(user_id)
        self.tracker = EventTracker(last_event_id, on_trimmed)
        self.max_reconnects = max(0, max_reconnects)
        self._timeout = httpx.Timeout(connect_timeout, read=read_timeout)
        self._failures = 0
        self._retry_ms: Optional[int] = None
        self._closed = False
        self.connected_to: Optional[str] = None

    @property
    def last_event_id(self) -> Optional[str]:
        """The id of the last event received: pass it as ``last_event_id`` to resume later."""
        return self.tracker.last_event_id

    def _url(self) -> str:
        return self._endpoints[self._index % len(self._endpoints)] + self._path

    def _extra_headers(self) -> Dict[str, str]:
        headers = {"accept": "text/event-stream", "cache-control": "no-cache"}
        if self.tracker.last_event_id:
            headers["last-event-id"] = self.tracker.last_event_id
        return headers

    @staticmethod
    def _check(response: httpx.Response, body: bytes) -> None:
        """Raises for a non-200 answer: a 503 (:class:`Unavailable`) counts as a failure to
        retry elsewhere; any other error (bad key, wrong role, bad user id) ends the
        iteration."""
        raise error_from_response(response.status_code, body)

    def _failed(self, why: str) -> float:
        """Counts a failed or ended connection; the pause before the next, or raises once the
        budget is spent."""
        self._failures += 1
        self._index += 1
        if self._failures > self.max_reconnects:
            raise TransportError(
                f"events: gave up after {self._failures} failed connections; last: {why}"
            )
        return _reconnect_delay(self._failures, self._retry_ms)


class _Connected:
    """Marks, inside the raw generators, the moment a connection is up (not an event)."""


_CONNECTED = _Connected()


class EventStream(_StreamBase):
    """A synchronous iterator over ``GET /v1/events``; see the module doc. Close it (or use it
    in a ``with`` block) to drop the connection; ``close()`` may be called from another
    thread. ``connect()`` returns once the stream is up, so every later change is in it."""

    def __init__(
        self,
        client: Client,
        *,
        user_id: Optional[str] = None,
        last_event_id: Optional[str] = None,
        max_reconnects: int = 10,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        on_trimmed: str = "yield",
    ) -> None:
        super().__init__(
            client.endpoints,
            client.router.current,
            user_id=user_id,
            last_event_id=last_event_id,
            max_reconnects=max_reconnects,
            read_timeout=read_timeout,
            connect_timeout=client.attempt_timeout or client.timeout,
            on_trimmed=on_trimmed,
        )
        self._client = client
        self._response: Optional[httpx.Response] = None
        self._raw: Optional[Iterator[Union[Event, _Connected]]] = None
        self._iter: Optional[Iterator[Event]] = None

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> EventStream:
        """Blocks until the stream is connected (with the usual reconnect budget); raises what
        ends it (a wrong key, an exhausted budget). Returns the stream."""
        raw = self._raw_events()
        for item in raw:
            if item is _CONNECTED:
                return self
        raise TransportError("events: the stream closed before it connected")

    def __iter__(self) -> Iterator[Event]:
        if self._iter is None:
            self._iter = self._events()
        return self._iter

    def __next__(self) -> Event:
        return next(iter(self))

    def close(self) -> None:
        self._closed = True
        response = self._response
        if response is not None:
            # Closing from another thread may race the reader; either way the stream ends.
            with contextlib.suppress(Exception):
                response.close()
        for it in (self._iter, self._raw):
            if it is not None and hasattr(it, "close"):
                # "generator already executing" (closed from another thread): the reader
                # stops by itself once its read fails.
                with contextlib.suppress(ValueError):
                    it.close()

    def _raw_events(self) -> Iterator[Union[Event, _Connected]]:
        if self._raw is None:
            self._raw = self._connections()
        return self._raw

    def _events(self) -> Iterator[Event]:
        for item in self._raw_events():
            if not isinstance(item, _Connected):
                yield item

    def _connections(self) -> Iterator[Union[Event, _Connected]]:
        client = self._client
        while not self._closed:
            url = self._url()
            why = "the stream ended"
            try:
                headers = client._headers(False, self._extra_headers())
                with client._http.stream("GET", url, headers=headers, timeout=self._timeout) as r:
                    self._response = r
                    if r.status_code != 200:
                        self._check(r, r.read())
                    self.connected_to = self._endpoints[self._index % len(self._endpoints)]
                    yield _CONNECTED
                    decoder = SSEDecoder()
                    for line in r.iter_lines():
                        raw = decoder.feed(line)
                        self._retry_ms = decoder.retry_ms or self._retry_ms
                        if raw is None:
                            continue
                        event = self.tracker.handle(raw)
                        self._failures = 0
                        if event is not None:
                            yield event
            except Unavailable as e:
                why = str(e)
            except httpx.HTTPError as e:
                why = describe(e)
            finally:
                self._response = None
            self.connected_to = None
            if self._closed:
                return
            time.sleep(self._failed(why))


class AsyncEventStream(_StreamBase):
    """An async iterator over ``GET /v1/events``; see the module doc. ``aclose()`` it, use it
    in ``async with``, or cancel the task reading it. ``await connect()`` returns once the
    stream is up. ``on_connect`` is awaited each time a connection is up (before its first
    event): the place to re-read what may have changed while there was none."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        user_id: Optional[str] = None,
        last_event_id: Optional[str] = None,
        max_reconnects: int = 10,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        on_trimmed: str = "yield",
        on_connect: Optional[Callable[[], Awaitable[None]]] = None,
    ) -> None:
        super().__init__(
            client.endpoints,
            client.router.current,
            user_id=user_id,
            last_event_id=last_event_id,
            max_reconnects=max_reconnects,
            read_timeout=read_timeout,
            connect_timeout=client.attempt_timeout or client.timeout,
            on_trimmed=on_trimmed,
        )
        self._client = client
        self._raw: Optional[AsyncIterator[Union[Event, _Connected]]] = None
        self._iter: Optional[AsyncIterator[Event]] = None
        self._on_connect = on_connect

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def connect(self) -> AsyncEventStream:
        """Returns once the stream is connected (with the usual reconnect budget)."""
        async for item in self._raw_events():
            if item is _CONNECTED:
                return self
        raise TransportError("events: the stream closed before it connected")

    def __aiter__(self) -> AsyncIterator[Event]:
        if self._iter is None:
            self._iter = self._events()
        return self._iter

    async def __anext__(self) -> Event:
        return await self.__aiter__().__anext__()

    async def aclose(self) -> None:
        self._closed = True
        for it in (self._iter, self._raw):
            if it is not None and hasattr(it, "aclose"):
                await it.aclose()

    def _raw_events(self) -> AsyncIterator[Union[Event, _Connected]]:
        if self._raw is None:
            self._raw = self._connections()
        return self._raw

    async def _events(self) -> AsyncIterator[Event]:
        async for item in self._raw_events():
            if not isinstance(item, _Connected):
                yield item

    async def _connections(self) -> AsyncIterator[Union[Event, _Connected]]:
        client = self._client
        while not self._closed:
            url = self._url()
            why = "the stream ended"
            try:
                headers = client._headers(False, self._extra_headers())
                async with client._http.stream(
                    "GET", url, headers=headers, timeout=self._timeout
                ) as r:
                    if r.status_code != 200:
                        self._check(r, await r.aread())
                    self.connected_to = self._endpoints[self._index % len(self._endpoints)]
                    if self._on_connect is not None:
                        # E.g. a catch-up read of what changed before the stream began.
                        await self._on_connect()
                    yield _CONNECTED
                    decoder = SSEDecoder()
                    async for line in r.aiter_lines():
                        raw = decoder.feed(line)
                        self._retry_ms = decoder.retry_ms or self._retry_ms
                        if raw is None:
                            continue
                        event = self.tracker.handle(raw)
                        self._failures = 0
                        if event is not None:
                            yield event
            except Unavailable as e:
                why = str(e)
            except httpx.HTTPError as e:
                why = describe(e)
            self.connected_to = None
            if self._closed:
                return
            await anyio.sleep(self._failed(why))

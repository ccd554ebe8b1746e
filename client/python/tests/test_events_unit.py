"""The SSE decoder, the typed events and the resume logic of both event iterators, against a
scripted fake node (no server)."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

import httpx
import pytest

from sessync import AsyncClient, Client, errors
from sessync.events import (
    EventTracker,
    LaggedEvent,
    RawEvent,
    SessionEvent,
    SSEDecoder,
    TrimmedEvent,
)

from .fakes import NODES, error_body, session_json


def feed_all(text: str) -> List[RawEvent]:
    d = SSEDecoder()
    out = []
    for line in text.split("\n"):
        raw = d.feed(line)
        if raw is not None:
            out.append(raw)
    return out


def test_decoder_follows_the_spec() -> None:
    text = (
        ": keep-alive\n\n"
        'event: session\nid: 7\ndata: {"a":\ndata: 1}\n\n'
        "data:no-space\n\n"
        'event: lagged\ndata: {"missed": 3}\n\n'
        "retry: 2500\n"
        "event: only-type\n\n"
    )
    events = feed_all(text)
    assert events[0] == RawEvent("session", '{"a":\n1}', "7")
    assert events[1] == RawEvent("message", "no-space", "7")  # the id is kept
    assert events[2].event == "lagged"
    assert len(events) == 3  # an event without data is not dispatched


def sse(event: str, data: Any, id: Optional[str] = None) -> str:
    head = f"event: {event}\n" + (f"id: {id}\n" if id else "")
    return head + f"data: {json.dumps(data)}\n\n"


def session_event(index: int, state: str = "active") -> str:
    s = session_json(state=state, end_reason="logout" if state == "ended" else None)
    return sse("session", {"index": index, "session": s}, str(index))


def test_tracker_types_events_and_tracks_ids() -> None:
    t = EventTracker(None, "raise")
    ev = t.handle(feed_all(session_event(5, "ended"))[0])
    assert isinstance(ev, SessionEvent) and ev.index == 5 and ev.session.state == "ended"
    assert t.last_event_id == "5"
    lag = t.handle(RawEvent("lagged", '{"missed": 4}', "5"))
    assert lag == LaggedEvent(4)
    assert t.handle(RawEvent("future-kind", "{}", None)) is None
    with pytest.raises(errors.EventsTrimmed) as info:
        t.handle(RawEvent("trimmed", '{"oldest": 100}', None))
    assert info.value.last_event_id == "5" and info.value.data == {"oldest": 100}
    y = EventTracker("5", "yield")
    assert y.handle(RawEvent("trimmed", "{}", None)) == TrimmedEvent("5", {})
    with pytest.raises(errors.DecodeError):
        t.handle(RawEvent("session", '{"session": {}}', "9"))


class ScriptedNode:
    """Answers each connection with the next scripted body (an SSE text, or an error), and
    records the Last-Event-ID each connection sent."""

    def __init__(self, script: List[Any]) -> None:
        self.script = list(script)
        self.last_ids: List[Optional[str]] = []
        self.urls: List[str] = []
        self.headers: List[Dict[str, str]] = []

    def respond(self, request: httpx.Request) -> httpx.Response:
        self.last_ids.append(request.headers.get("last-event-id"))
        self.urls.append(str(request.url))
        self.headers.append(dict(request.headers))
        step = self.script.pop(0) if self.script else httpx.ConnectError("no more")
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return step
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, text=step)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        return self.respond(request)


def test_sync_stream_resumes_with_last_event_id() -> None:
    node = ScriptedNode(
        [
            ": hi\n\n" + session_event(5) + session_event(6),  # then the stream ends
            httpx.Response(503, content=error_body("unavailable")),  # next node has no leader
            session_event(7, "ended") + sse("lagged", {"missed": 2}),
        ]
    )
    c = Client(NODES, "app-key", transport=httpx.MockTransport(node))
    got = []
    with c.events(user_id="alice smith", max_reconnects=3) as stream:
        for ev in stream:
            got.append(ev)
            if len(got) == 4:
                break
    assert [type(e).__name__ for e in got] == ["SessionEvent"] * 3 + ["LaggedEvent"]
    assert node.last_ids == [None, "6", "6"]
    assert node.urls[0] == NODES[0] + "/v1/events?user_id=alice%20smith"
    assert node.urls[1].startswith(NODES[1]) and node.urls[2].startswith(NODES[2])
    assert node.headers[0]["authorization"] == "Bearer app-key"
    assert stream.last_event_id == "7"


def test_connect_returns_once_the_stream_is_up() -> None:
    node = ScriptedNode([httpx.Response(503, content=error_body("unavailable")), session_event(3)])
    c = Client(NODES, "k", transport=httpx.MockTransport(node))
    with c.events(max_reconnects=2).connect() as stream:
        assert len(node.urls) == 2 and stream.connected_to == NODES[1]
        first = next(iter(stream))
    assert isinstance(first, SessionEvent) and first.index == 3


def test_sync_stream_gives_up_after_its_budget() -> None:
    node = ScriptedNode([httpx.ConnectError("refused")] * 5)
    c = Client(NODES, "k", transport=httpx.MockTransport(node))
    with pytest.raises(errors.TransportError), c.events(max_reconnects=2) as stream:
        list(stream)
    assert len(node.last_ids) == 3


def test_sync_stream_raises_api_errors_at_once() -> None:
    node = ScriptedNode([httpx.Response(403, content=error_body("forbidden", "admin only"))])
    c = Client(NODES, "k", transport=httpx.MockTransport(node))
    with pytest.raises(errors.Forbidden), c.events() as stream:
        next(iter(stream))


def test_sync_stream_trimmed_raises_with_the_position() -> None:
    node = ScriptedNode([sse("trimmed", {"oldest": 40})])
    c = Client(NODES, "k", transport=httpx.MockTransport(node))
    stream = c.events(last_event_id="12", on_trimmed="raise")
    with pytest.raises(errors.EventsTrimmed) as info, stream:
        list(stream)
    assert node.last_ids == ["12"]
    assert info.value.last_event_id == "12"


async def test_async_stream_resumes_and_yields_trimmed() -> None:
    node = ScriptedNode(
        [
            session_event(10),
            httpx.ConnectError("refused"),
            sse("trimmed", {}) + session_event(30),
        ]
    )
    c = AsyncClient(NODES, "k", transport=httpx.MockTransport(node))
    got: List[Any] = []
    connects: List[int] = []

    async def on_connect() -> None:
        connects.append(1)

    stream = await c.events(max_reconnects=3, on_connect=on_connect).connect()
    async with stream:
        async for ev in stream:
            got.append(ev)
            if len(got) == 3:
                break
    assert isinstance(got[0], SessionEvent) and got[0].index == 10
    assert got[1] == TrimmedEvent("10", {})
    assert isinstance(got[2], SessionEvent) and got[2].index == 30
    assert node.last_ids == [None, "10", "10"]
    assert len(connects) == 2  # the refused connection does not count
    await c.close()


async def test_watcher_falls_back_to_polling() -> None:
    """A key that may not follow the stream: the watcher polls the watched sessions."""
    from sessync.fastapi import SessionEndWatcher

    ended = {"now": False}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/events":
            return httpx.Response(403, content=error_body("forbidden", "admin only"))
        state = "ended" if ended["now"] else "active"
        end_reason = "logout" if ended["now"] else None
        return httpx.Response(
            200, json={"session": session_json(state=state, end_reason=end_reason)}
        )

    import anyio

    async with AsyncClient(NODES, "k", transport=httpx.MockTransport(handler)) as c:
        watcher = SessionEndWatcher(c, poll_interval=0.05)
        async with watcher.watch("s_0123456789abcdef0123456789abcdef") as done:
            assert not done.is_set()
            ended["now"] = True
            with anyio.fail_after(3):
                await done.wait()
        assert watcher.mode == "polling"
        await watcher.stop()

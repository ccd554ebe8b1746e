"""Routing, failover, retries and idempotent creates of both clients, against a scripted fake
cluster (``httpx.MockTransport``): no server, no sleeping beyond the small backoffs."""

from __future__ import annotations

import time
from typing import List

import httpx
import pytest

from sessync import AsyncClient, Client, errors
from sessync._routing import Router, backoff_ceiling, jittered_backoff, normalize_endpoints

from .fakes import NODES, FakeCluster, error_body, ok, session_json

CREATED = {"session": session_json(), "token": "tok-123"}


def leader_cluster(leader: str = NODES[2]) -> FakeCluster:
    """Every node answers; each names ``leader``."""

    def handler(node: str, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/sessions":
            return ok(CREATED, 201, leader)
        if request.url.path.startswith("/v1/sessions/s_"):
            return ok({"session": session_json()}, 200, leader)
        return ok({"valid": False, "reason": "unknown"}, 200, leader)

    return FakeCluster(handler)


def test_endpoints_are_checked() -> None:
    assert normalize_endpoints(" http://a:1/ ,https://b:2") == ["http://a:1", "https://b:2"]
    for bad in ([], "", ["127.0.0.1:7101"], ["ftp://h"]):
        with pytest.raises(errors.InvalidArgument):
            normalize_endpoints(bad)
    with pytest.raises(errors.InvalidArgument):
        Client(NODES, "k", timeout=0)


def test_backoff_grows_capped_and_jittered() -> None:
    assert backoff_ceiling(0) == pytest.approx(0.025)
    assert backoff_ceiling(1) == pytest.approx(0.05)
    assert backoff_ceiling(5) == pytest.approx(0.8)
    assert backoff_ceiling(60) == pytest.approx(0.8)
    for attempt in range(8):
        c = backoff_ceiling(attempt)
        assert c / 2 <= jittered_backoff(attempt) <= c


def test_reads_rotate_and_writes_follow_the_leader() -> None:
    fake = leader_cluster()
    with Client(NODES, "app-key", transport=fake.transport()) as c:
        for _ in range(3):
            c.get_session("s_1")
        assert fake.nodes_seen() == NODES  # round robin
        assert c.leader == NODES[2]  # named by every answer
        fake.seen.clear()
        c.create_session("alice")
        c.end_session("s_1")
        assert fake.nodes_seen() == [NODES[2], NODES[2]]
        assert all(s.headers["authorization"] == "Bearer app-key" for s in fake.seen)


def test_router_forgets_a_leader_that_fails() -> None:
    r = Router(NODES)
    r.answered(0, NODES[1] + "/")
    assert r.leader == NODES[1] and r.first("POST", "/v1/sessions") == 1
    r.failed(1)
    assert r.leader is None and r.current == 2
    r.answered(0, "http://elsewhere:1")  # not an endpoint: ignored
    assert r.leader is None


def test_refused_connection_fails_over() -> None:
    fake = leader_cluster(leader="")
    fake.down = {NODES[0]}
    with Client(NODES, "k", transport=fake.transport()) as c:
        created = c.create_session("alice")
        assert created.token == "tok-123"
        assert fake.nodes_seen() == [NODES[0], NODES[1]]
        assert c.current_endpoint == NODES[1]  # the one that answered


def test_503_fails_over_then_gives_the_last_error() -> None:
    def handler(node: str, request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, content=error_body("unavailable", f"no quorum at {node}"))

    fake = FakeCluster(handler)
    with Client(NODES, "k", rounds=2, transport=fake.transport()) as c:
        with pytest.raises(errors.Unavailable) as info:
            c.get_session("s_1")
    assert len(fake.seen) == 6  # two passes over three nodes
    assert "no quorum" in info.value.message


def test_everything_down_is_a_transport_error() -> None:
    fake = leader_cluster()
    fake.down = set(NODES)
    with Client(NODES, "k", rounds=1, transport=fake.transport()) as c:
        with pytest.raises(errors.TransportError) as info:
            c.validate("t")
    assert info.value.is_unavailable and "connection refused" in str(info.value)


def test_deadline_bounds_the_call() -> None:
    fake = leader_cluster()
    fake.down = set(NODES)
    start = time.monotonic()
    with Client(NODES, "k", timeout=0.3, rounds=1000, transport=fake.transport()) as c:
        with pytest.raises(errors.TransportError):
            c.get_session("s_1")
    assert time.monotonic() - start < 1.5


def test_create_keeps_its_idempotency_key_across_retries() -> None:
    calls: List[int] = []

    def handler(node: str, request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:  # the first attempt breaks after it was sent
            raise httpx.ReadError("connection reset", request=request)
        return ok(CREATED, 200)

    fake = FakeCluster(handler)
    with Client(NODES, "k", transport=fake.transport()) as c:
        created = c.create_session("alice", device={"name": "laptop"})
    keys = [s.body["idempotency_key"] for s in fake.seen]
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0].startswith("auto-")
    assert created.replayed  # the node found the first create
    assert fake.seen[0].body["device"] == {"name": "laptop"}


def test_caller_idempotency_key_is_sent() -> None:
    fake = leader_cluster()
    with Client(NODES, "k", transport=fake.transport()) as c:
        c.create_session("alice", idempotency_key="login-42")
    assert fake.seen[0].body["idempotency_key"] == "login-42"


def test_uncertain_non_repeatable_call_is_not_resent() -> None:
    def handler(node: str, request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset", request=request)

    fake = FakeCluster(handler)
    with Client(NODES, "k", transport=fake.transport()) as c:
        with pytest.raises(errors.TransportError):
            c.verify("alice")
    assert len(fake.seen) == 1  # a verify may have happened: never sent twice


def test_errors_are_mapped_and_not_retried() -> None:
    def handler(node: str, request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, content=error_body("not_found", "no session s_1"))

    fake = FakeCluster(handler)
    with Client(NODES, "k", transport=fake.transport()) as c, pytest.raises(errors.NotFound):
        c.get_session("s_1")
    assert len(fake.seen) == 1


def test_paths_and_bodies() -> None:
    def handler(node: str, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/sessions"):
            cursor = request.url.params.get("cursor")
            if cursor is None:
                return ok({"sessions": [session_json()], "next_cursor": "c/1"})
            return ok({"sessions": [session_json(session_id="s_2")]})
        if path.endswith("/verify"):
            return ok({"verified": "s_2", "ended": 1, "fanout": {"b": "unknown_site"}})
        return ok({"ended": 2, "fanout": {}})

    fake = FakeCluster(handler)
    with Client(NODES, "k", transport=fake.transport()) as c:
        listed = c.list_sessions("bob smith/x", include_ended=True)
        assert [s.session_id for s in listed] == ["s_0123456789abcdef0123456789abcdef", "s_2"]
        v = c.verify("bob", "s_2", targets=["b"])
        assert v.fanout == {"b": "unknown_site"}
        assert c.invalidate("bob").ended == 2
    paths = [s.path for s in fake.seen]
    assert paths[0] == "/v1/users/bob%20smith%2Fx/sessions?state=all&limit=1000"
    assert paths[1].endswith("&cursor=c%2F1")
    assert fake.seen[2].body == {"session_id": "s_2", "targets": ["b"]}
    assert fake.seen[3].body == {}
    with pytest.raises(errors.InvalidArgument):
        c.list_sessions("..")
    with pytest.raises(errors.InvalidArgument):
        c.validate("t", consistency="eventual")


def test_repr_hides_the_key() -> None:
    c = Client(NODES, "very-secret-key")
    assert "very-secret-key" not in repr(c)
    c.close()


async def test_async_client_fails_over_and_follows_the_leader() -> None:
    fake = leader_cluster()
    fake.down = {NODES[0]}
    async with AsyncClient(NODES, "k", transport=fake.transport()) as c:
        created = await c.create_session("alice")
        assert created.token == "tok-123"
        assert c.leader == NODES[2]
        fake.seen.clear()
        await c.end_session(created.session.session_id)
        assert fake.nodes_seen() == [NODES[2]]
        v = await c.validate("t")
        assert not v.valid and v.reason == "unknown"


async def test_async_attempt_timeout_moves_on() -> None:
    import anyio

    class Slow(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.nodes: List[str] = []

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            self.nodes.append(str(request.url.port))
            if request.url.port == 7101:
                await anyio.sleep(5)
            return ok({"session": session_json()})

    slow = Slow()
    async with AsyncClient(NODES, "k", attempt_timeout=0.2, transport=slow) as c:
        start = time.monotonic()
        await c.get_session("s_1")  # node 1 first (round robin), too slow; node 2 answers
        assert time.monotonic() - start < 2
    assert slow.nodes == ["7101", "7102"]

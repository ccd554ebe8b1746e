"""The optional validate cache: bounded by age and count, keyed by the token's hash, forgotten
on end/verify/invalidate by the client that holds it."""

from __future__ import annotations

from typing import List

import httpx
import pytest

from sessync import Client, ValidateCache, errors
from sessync.models import SessionView, ValidateResult

from .fakes import NODES, FakeCluster, ok, session_json


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def valid(session_id: str = "s_1", user_id: str = "alice") -> ValidateResult:
    s = SessionView.from_json(session_json(session_id=session_id, user_id=user_id))
    return ValidateResult(True, s, 60, 3600)


def test_age_and_count_bounds() -> None:
    clock = Clock()
    cache = ValidateCache(max_age=5, max_entries=2, clock=clock)
    cache.put("t1", valid("s_1"))
    clock.now += 2
    hit = cache.get("t1")
    assert hit is not None and hit.cached_age == pytest.approx(2)
    clock.now += 3.5
    assert cache.get("t1") is None  # too old
    cache.put("a", valid("s_a"))
    cache.put("b", valid("s_b"))
    cache.get("a")  # a is now the most recently used
    cache.put("c", valid("s_c"))
    assert cache.get("b") is None and cache.get("a") is not None and len(cache) == 2
    cache.put("the-secret-token", valid("s_x"))
    assert all("the-secret-token" not in key for key in cache._entries)  # keyed by hash


def test_forget() -> None:
    cache = ValidateCache(max_age=60)
    cache.put("t1", valid("s_1", "alice"))
    cache.put("t2", valid("s_2", "alice"))
    cache.put("t3", valid("s_3", "bob"))
    cache.forget_session("s_1")
    assert cache.get("t1") is None and cache.get("t2") is not None
    cache.forget_user("alice")
    assert cache.get("t2") is None and cache.get("t3") is not None
    with pytest.raises(errors.InvalidArgument):
        ValidateCache(max_age=0)


def test_client_uses_and_invalidates_the_cache() -> None:
    calls: List[str] = []

    def handler(node: str, request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.method == "DELETE":
            return ok(
                {"session": session_json(session_id="s_1", state="ended", end_reason="logout")}
            )
        return ok(
            {
                "valid": True,
                "session": session_json(session_id="s_1"),
                "seconds_until_idle_end": 10,
                "seconds_until_session_end": 20,
            }
        )

    fake = FakeCluster(handler)
    cache = ValidateCache(max_age=30)
    with Client(NODES, "k", cache=cache, transport=fake.transport()) as c:
        first = c.validate("tok")
        second = c.validate("tok")
        assert first.cached_age is None and second.cached_age is not None
        assert calls.count("/v1/sessions/validate") == 1
        c.validate("tok", use_cache=False)
        assert calls.count("/v1/sessions/validate") == 2
        c.end_session("s_1")
        assert c.validate("tok").cached_age is None  # forgotten at the end
        assert calls.count("/v1/sessions/validate") == 3

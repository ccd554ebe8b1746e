"""The FastAPI integration against the real cluster: HTTP through httpx.AsyncClient on the ASGI
app, WebSockets through FastAPI's TestClient."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, Callable, Dict, List

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from sessync import Client

from .cluster import LocalCluster
from .fastapi_app import create_app

Policy = Callable[..., Dict[str, Any]]
Browsers = Callable[[FastAPI], httpx.AsyncClient]


@pytest.fixture
async def browsers() -> AsyncIterator[Browsers]:
    """Makes "browsers" (cookie-keeping httpx clients) on an app; closes them all."""
    made: List[httpx.AsyncClient] = []

    def make(app: FastAPI) -> httpx.AsyncClient:
        c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        made.append(c)
        return c

    yield make
    for c in made:
        await c.aclose()


@pytest.fixture
def app(cluster: LocalCluster) -> FastAPI:
    return create_app(cluster.urls, cluster.app_key)


@pytest.fixture
def other_site(cluster: LocalCluster) -> FastAPI:
    return create_app(cluster.urls, cluster.other_app_key)


async def login(c: httpx.AsyncClient, user: str, device: str = "laptop") -> httpx.Response:
    return await c.post("/login", json={"username": user, "device": device})


async def test_login_request_logout(app: FastAPI, browsers: Browsers, user: str) -> None:
    c = browsers(app)
    assert (await c.get("/me")).status_code == 401
    r = await login(c, user)
    assert r.status_code == 201
    set_cookie = r.headers["set-cookie"]
    assert "httponly" in set_cookie.lower() and "samesite=lax" in set_cookie.lower()
    me = await c.get("/me")
    assert me.status_code == 200 and me.json()["user"] == user
    assert (await c.post("/logout")).status_code == 200
    assert "sessync" not in c.cookies
    assert (await c.get("/me")).status_code == 401


async def test_idle_timeout(app: FastAPI, browsers: Browsers, user: str, policy: Policy) -> None:
    policy(idle_timeout="3s", touch_interval="1s")
    c = browsers(app)
    await login(c, user)
    assert (await c.get("/me")).status_code == 200
    await asyncio.sleep(5.5)
    r = await c.get("/me")
    assert r.status_code == 401
    assert "sessync=" in r.headers.get("set-cookie", "")  # the middleware clears the cookie
    assert "sessync" not in c.cookies


async def test_limit_deny(app: FastAPI, browsers: Browsers, user: str, policy: Policy) -> None:
    policy(on_limit="deny", max_concurrent_sessions=1)
    first, second = browsers(app), browsers(app)
    await login(first, user, "first")
    refused = await login(second, user, "second")
    assert refused.status_code == 409
    sessions = refused.json()["sessions"]
    assert [s["device"] for s in sessions] == ["first"]
    retried = await second.post(
        "/limit/end", json={"username": user, "session_id": sessions[0]["session_id"]}
    )
    assert retried.status_code == 201
    assert (await second.get("/me")).status_code == 200
    assert (await first.get("/me")).status_code == 401


async def test_limit_block_new(app: FastAPI, browsers: Browsers, user: str, policy: Policy) -> None:
    policy(on_limit="block_new", max_concurrent_sessions=1)
    first, second = browsers(app), browsers(app)
    await login(first, user)
    r = await login(second, user)
    assert r.json()["state"] == "blocked"
    assert (await second.get("/me")).status_code == 403
    assert (await second.post("/continue")).json() == {"ended": 1}
    assert (await second.get("/me")).status_code == 200
    assert (await first.get("/me")).status_code == 401


async def test_limit_evict_oldest(
    app: FastAPI, browsers: Browsers, user: str, policy: Policy
) -> None:
    policy(on_limit="evict_oldest", max_concurrent_sessions=1)
    first, second = browsers(app), browsers(app)
    await login(first, user)
    await login(second, user)
    assert (await second.get("/me")).status_code == 200
    assert (await first.get("/me")).status_code == 401


async def test_verify_from_another_site(
    app: FastAPI, other_site: FastAPI, browsers: Browsers, user: str
) -> None:
    here, there = browsers(app), browsers(other_site)
    await login(here, user)
    await login(there, user)
    assert (await there.post("/end-others")).json() == {"ended": 1}
    assert (await here.get("/me")).status_code == 401
    assert (await there.get("/me")).status_code == 200


async def test_logout_everywhere(
    app: FastAPI, other_site: FastAPI, browsers: Browsers, user: str
) -> None:
    a, b = browsers(app), browsers(other_site)
    await login(a, user)
    await login(b, user)
    assert (await a.post("/logout-everywhere")).json() == {"ended": 2}
    assert (await a.get("/me")).status_code == 401
    assert (await b.get("/me")).status_code == 401


async def test_node_killed_mid_test(
    live_cluster: LocalCluster, browsers: Browsers, user: str
) -> None:
    app = create_app(live_cluster.urls, live_cluster.app_key)
    c = browsers(app)
    await login(c, user)
    leader = live_cluster.leader_url()
    assert leader is not None
    live_cluster.kill(live_cluster.node_of(leader))
    assert (await c.get("/me")).status_code == 200
    assert (await login(browsers(app), user + "-2")).status_code == 201


def run_websocket_case(app: FastAPI, cluster: LocalCluster, user: str) -> float:
    """Opens a socket, ends its session from elsewhere; the seconds until the close."""
    with TestClient(app) as tc:
        assert tc.post("/login", json={"username": user}).status_code == 201
        session_id = tc.get("/me").json()["session_id"]
        with tc.websocket_connect("/ws") as ws:
            ws.send_text("hi")
            assert ws.receive_text() == "echo:hi"
            with Client(cluster.urls, cluster.app_key) as other:
                start = time.monotonic()
                other.end_session(session_id)
            with pytest.raises(WebSocketDisconnect) as info:
                ws.receive_text()
            assert info.value.code == 4401
            return time.monotonic() - start


def test_websocket_closed_when_session_ends_polling(cluster: LocalCluster, user: str) -> None:
    app = create_app(cluster.urls, cluster.app_key, poll_interval=0.3, use_events=False)
    assert run_websocket_case(app, cluster, user) < 5
    assert app.state.watcher.mode == "polling"


def test_websocket_closed_when_session_ends_events(cluster: LocalCluster, user: str) -> None:
    app = create_app(cluster.urls, cluster.app_key, poll_interval=60)  # app keys may follow
    assert run_websocket_case(app, cluster, user) < 5
    assert app.state.watcher.mode == "events"


def test_websocket_refused_without_session(app: FastAPI) -> None:
    with TestClient(app) as tc:
        with pytest.raises(WebSocketDisconnect) as info, tc.websocket_connect("/ws") as ws:
            ws.receive_text()
        assert info.value.code == 4401


async def test_garbled_cookie_is_no_session(app: FastAPI, browsers: Browsers) -> None:
    c = browsers(app)
    c.cookies.set("sessync", "x" * 200)
    assert (await c.get("/me")).status_code == 401

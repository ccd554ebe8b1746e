"""The Flask integration with Flask's test client against the real cluster."""

from __future__ import annotations

import time
from typing import Any, Callable, Dict

import pytest
from flask import Flask
from flask.testing import FlaskClient

from .cluster import LocalCluster
from .flask_app import create_app

Policy = Callable[..., Dict[str, Any]]


@pytest.fixture
def app(cluster: LocalCluster) -> Flask:
    return create_app(cluster.urls, cluster.app_key)


@pytest.fixture
def other_site(cluster: LocalCluster) -> Flask:
    """A second app (its own API key) on the same cluster: "another site" of the user."""
    return create_app(cluster.urls, cluster.other_app_key)


def login(c: FlaskClient, user: str, device: str = "laptop") -> Any:
    return c.post("/login", data={"username": user, "device": device})


def cookie_of(c: FlaskClient) -> Any:
    return c.get_cookie("sessync")


def test_login_request_logout(app: Flask, user: str) -> None:
    c = app.test_client()
    assert c.get("/me").status_code == 401
    r = login(c, user)
    assert r.status_code == 201
    set_cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie and "Max-Age=" in set_cookie
    assert "Secure" not in set_cookie  # turned off for the test's http
    me = c.get("/me")
    assert me.status_code == 200 and me.json is not None and me.json["user"] == user
    assert me.json["seconds_until_idle_end"] > 800
    assert c.post("/logout").status_code == 200
    assert cookie_of(c) is None
    assert c.get("/me").status_code == 401


def test_secure_cookie_by_default(cluster: LocalCluster, user: str) -> None:
    app = create_app(cluster.urls, cluster.app_key)
    app.config["SESSYNC_COOKIE_SECURE"] = True
    r = login(app.test_client(), user)
    assert "Secure" in r.headers["Set-Cookie"]


def test_idle_timeout_logs_out(app: Flask, user: str, policy: Policy) -> None:
    policy(idle_timeout="3s", touch_interval="1s")
    c = app.test_client()
    login(c, user)
    assert c.get("/me").status_code == 200
    time.sleep(2)
    assert c.get("/me").status_code == 200  # a request touches: the idle time starts again
    time.sleep(5.5)  # idle_timeout + touch_interval + margin
    assert c.get("/me").status_code == 401
    assert cookie_of(c) is None  # the ended session's cookie is dropped


def test_limit_deny_end_one_and_retry(app: Flask, user: str, policy: Policy) -> None:
    policy(on_limit="deny", max_concurrent_sessions=1)
    first, second = app.test_client(), app.test_client()
    login(first, user, "first")
    refused = login(second, user, "second")
    assert refused.status_code == 409
    sessions = refused.json["sessions"] if refused.json else []
    assert [s["device"] for s in sessions] == ["first"]
    retried = second.post(
        "/limit/end", data={"username": user, "session_id": sessions[0]["session_id"]}
    )
    assert retried.status_code == 201
    assert second.get("/me").status_code == 200
    assert first.get("/me").status_code == 401


def test_limit_block_new_then_continue_here(app: Flask, user: str, policy: Policy) -> None:
    policy(on_limit="block_new", max_concurrent_sessions=1)
    first, second = app.test_client(), app.test_client()
    login(first, user)
    r = login(second, user)
    assert r.status_code == 201 and r.json is not None and r.json["state"] == "blocked"
    blocked = second.get("/me")
    assert blocked.status_code == 302 and "/blocked" in blocked.headers["Location"]
    assert second.post("/continue").json == {"ended": 1}
    assert second.get("/me").status_code == 200
    assert first.get("/me").status_code == 401  # superseded


def test_limit_evict_oldest(app: Flask, user: str, policy: Policy) -> None:
    policy(on_limit="evict_oldest", max_concurrent_sessions=1)
    first, second = app.test_client(), app.test_client()
    login(first, user)
    assert login(second, user).status_code == 201
    assert second.get("/me").status_code == 200
    assert first.get("/me").status_code == 401  # evicted


def test_verify_from_another_site_app(app: Flask, other_site: Flask, user: str) -> None:
    here, there = app.test_client(), other_site.test_client()
    login(here, user)
    login(there, user)
    assert there.post("/end-others").json == {"ended": 1}
    assert there.get("/me").status_code == 200
    assert here.get("/me").status_code == 401


def test_logout_everywhere(app: Flask, other_site: Flask, user: str) -> None:
    a, b, c = app.test_client(), app.test_client(), other_site.test_client()
    for tc in (a, b, c):
        login(tc, user)
    listed = a.get("/sessions").json or []
    assert len(listed) == 3
    assert a.post("/logout-everywhere").json == {"ended": 3}
    assert all(tc.get("/me").status_code == 401 for tc in (a, b, c))


def test_node_killed_mid_test(live_cluster: LocalCluster, user: str) -> None:
    app = create_app(live_cluster.urls, live_cluster.app_key)
    c = app.test_client()
    login(c, user)
    leader = live_cluster.leader_url()
    assert leader is not None
    live_cluster.kill(live_cluster.node_of(leader))
    assert c.get("/me").status_code == 200  # the client fails over
    other = app.test_client()
    assert login(other, user + "-2").status_code == 201  # writes reach the new leader


def test_garbled_cookie_is_no_session(app: Flask) -> None:
    c = app.test_client()
    c.set_cookie("sessync", "x" * 200)  # over the node's token limit: a 400 from the node
    assert c.get("/me").status_code == 401
    assert cookie_of(c) is None

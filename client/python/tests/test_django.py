"""The Django integration with Django's test Client against the real cluster: login through
Django's own ``login()``, each request validated, idle timeout, the three ``on_limit`` modes,
"where am I logged in", verify from another site, logout everywhere, a node killed mid-test,
the backend adopting a cookie, and the 503 page."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any, Callable, Dict

import django
import pytest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django_settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client as Browser  # noqa: E402
from django.test.utils import override_settings, setup_test_environment  # noqa: E402

from sessync import Client  # noqa: E402

from .cluster import LocalCluster  # noqa: E402

Policy = Callable[..., Dict[str, Any]]
PASSWORD = "correct horse"


@pytest.fixture(scope="module", autouse=True)
def database() -> Iterator[None]:
    from django.test.utils import teardown_test_environment

    setup_test_environment()  # responses carry .context
    call_command("migrate", verbosity=0, interactive=False)
    yield
    teardown_test_environment()


def site_settings(cluster: LocalCluster, key: str, **extra: Any) -> Dict[str, Any]:
    return {
        "ENDPOINTS": cluster.urls,
        "API_KEY": key,
        "COOKIE_SECURE": False,
        "TIMEOUT": 15.0,
        "ORIGIN": "django-tests",
        **extra,
    }


@pytest.fixture
def site(cluster: LocalCluster) -> Iterator[None]:
    with override_settings(SESSYNC=site_settings(cluster, cluster.app_key)):
        yield


@pytest.fixture
def account(user: str) -> str:
    get_user_model().objects.create_user(username=user, password=PASSWORD)
    return user


def login(b: Browser, username: str, **extra: Any) -> Any:
    return b.post(
        "/login/",
        {"username": username, "password": PASSWORD},
        HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
        **extra,
    )


def logged_in(b: Browser) -> bool:
    r = b.get("/")
    if r.status_code == 200:
        return True
    assert r.status_code == 302 and r["Location"].startswith("/login/"), r
    return False


def test_login_request_sessions_logout(site: None, account: str) -> None:
    b = Browser()
    assert not logged_in(b)
    r = login(b, account)
    assert r.status_code == 302
    cookie = b.cookies["sessync"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]
    home = b.get("/")
    assert home.status_code == 200 and b"hello" in home.content
    assert b"sessync-idle-warning" in home.content  # the idle script of the template tag
    listed = b.get("/account/sessions/")
    assert listed.status_code == 200 and b"Firefox on Linux" in listed.content
    assert b"(this device)" in listed.content
    status = b.get("/account/status/").json()
    assert status["valid"] and status["seconds_until_idle_end"] > 800
    assert b.post("/account/logout/").status_code == 302
    assert b.cookies["sessync"].value == ""  # deleted
    assert not logged_in(b)


def test_idle_timeout_logs_out(site: None, account: str, policy: Policy) -> None:
    policy(idle_timeout="3s", touch_interval="1s")
    b = Browser()
    login(b, account)
    assert logged_in(b)
    status = b.get("/account/status/").json()
    assert status["valid"] and status["seconds_until_idle_end"] <= 5
    time.sleep(5.5)
    assert not logged_in(b)
    assert b"idle_timeout" in b.get("/login/").content  # the reason, for the login page


def test_limit_deny_end_one_and_retry(site: None, account: str, policy: Policy) -> None:
    policy(on_limit="deny", max_concurrent_sessions=1)
    first, second = Browser(), Browser()
    login(first, account)
    refused = login(second, account)
    assert refused.status_code == 409
    assert b"End it and log in here" in refused.content
    assert not logged_in(second)
    page = second.get("/account/limit/")
    sessions = page.context["sessions"]
    assert len(sessions) == 1
    retried = second.post("/account/limit/", {"session_id": sessions[0].session_id})
    assert retried.status_code == 302
    assert logged_in(second)
    assert not logged_in(first)


def test_limit_block_new_continue_here(site: None, account: str, policy: Policy) -> None:
    policy(on_limit="block_new", max_concurrent_sessions=1)
    first, second = Browser(), Browser()
    login(first, account)
    login(second, account)
    r = second.get("/")
    assert r.status_code == 302 and r["Location"].startswith("/account/blocked/")
    page = second.get(r["Location"])
    assert page.status_code == 403 and b"Continue here" in page.content
    done = second.post(r["Location"], {"action": "continue"})
    assert done.status_code == 302 and done["Location"] == "/"
    assert logged_in(second)
    assert not logged_in(first)


def test_limit_evict_oldest(site: None, account: str, policy: Policy) -> None:
    policy(on_limit="evict_oldest", max_concurrent_sessions=1)
    first, second = Browser(), Browser()
    login(first, account)
    login(second, account)
    assert logged_in(second)
    assert not logged_in(first)


def test_end_one_and_end_others(site: None, account: str) -> None:
    a, b, c = Browser(), Browser(), Browser()
    for browser in (a, b, c):
        login(browser, account)
    b_id = b.get("/account/status/").json()["session_id"]
    assert a.post(f"/account/sessions/{b_id}/end/").status_code == 302
    assert not logged_in(b)
    assert logged_in(c)
    assert a.post("/account/sessions/end-others/").status_code == 302
    assert not logged_in(c)
    assert logged_in(a)


def test_verify_from_another_site(cluster: LocalCluster, account: str) -> None:
    here, there = Browser(), Browser()
    with override_settings(SESSYNC=site_settings(cluster, cluster.app_key)):
        login(here, account)
        assert logged_in(here)
    with override_settings(SESSYNC=site_settings(cluster, cluster.other_app_key, ORIGIN="b")):
        login(there, account)
        assert there.post("/account/sessions/end-others/").status_code == 302
        assert logged_in(there)
    with override_settings(SESSYNC=site_settings(cluster, cluster.app_key)):
        assert not logged_in(here)


def test_logout_everywhere(cluster: LocalCluster, site: None, account: str) -> None:
    a, b = Browser(), Browser()
    login(a, account)
    login(b, account)
    assert a.post("/account/sessions/end-all/").status_code == 302
    assert not logged_in(a) and not logged_in(b)
    with Client(cluster.urls, cluster.app_key) as c:
        assert c.list_sessions(account) == []


def test_node_killed_mid_test(live_cluster: LocalCluster, site: None, account: str) -> None:
    b = Browser()
    login(b, account)
    leader = live_cluster.leader_url()
    assert leader is not None
    live_cluster.kill(live_cluster.node_of(leader))
    assert logged_in(b)
    assert login(Browser(), account).status_code == 302  # a login reaches the new leader


def test_backend_adopts_a_valid_cookie(site: None, account: str) -> None:
    b = Browser()
    login(b, account)
    del b.cookies["sessionid"]  # Django's session is gone; the sessync session lives on
    assert logged_in(b)


def test_django_login_without_sessync_cookie_is_ended(site: None, account: str) -> None:
    b = Browser()
    b.force_login(get_user_model().objects.get(username=account))  # no sessync cookie
    assert not logged_in(b)


def test_unavailable_cluster_gives_503(cluster: LocalCluster, account: str) -> None:
    b = Browser()
    with override_settings(SESSYNC=site_settings(cluster, cluster.app_key)):
        login(b, account)
    dead = site_settings(cluster, cluster.app_key, ENDPOINTS=["http://127.0.0.1:9"], TIMEOUT=1.0)
    with override_settings(SESSYNC=dead):
        r = b.get("/")
        assert r.status_code == 503 and r["Retry-After"] == "5"
    with override_settings(SESSYNC=dict(dead, ON_UNAVAILABLE="anonymous")):
        assert b.get("/").status_code == 302
    with override_settings(SESSYNC=site_settings(cluster, cluster.app_key)):
        assert logged_in(b)  # nothing was ended meanwhile


def test_settings_checks() -> None:
    from sessync.django.checks import check_settings

    with override_settings(SESSYNC={"API_KEY": "k", "COOKIE_SECURE": True, "ENDPONTS": []}):
        assert [m.id for m in check_settings(None)] == ["sessync.W001"]
    with override_settings(SESSYNC={"COOKIE_SECURE": False}, DEBUG=False):
        assert [m.id for m in check_settings(None)] == ["sessync.W002", "sessync.W003"]

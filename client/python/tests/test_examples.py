"""Smoke tests of the example apps against the test cluster: each one's login, a page that
needs the session, and logout, as its README describes (the Django one in a subprocess, since
this process already runs the test project's Django settings)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient

from .cluster import LocalCluster

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def example_env(cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """The examples read the cluster's endpoints and key from the environment."""
    monkeypatch.setenv("SESSYNC_ENDPOINTS", ",".join(cluster.urls))
    monkeypatch.setenv("SESSYNC_API_KEY", cluster.app_key)


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flask_example(example_env: None) -> None:
    app = load(EXAMPLES / "flask_app" / "app.py", "flask_example").app
    c = app.test_client()
    assert c.get("/").status_code == 302
    assert c.post("/login", data={"username": "bob", "password": "bob"}).status_code == 302
    home = c.get("/")
    assert home.status_code == 200 and b"Hello bob" in home.data and b"<script>" in home.data
    assert c.get("/sessions").status_code == 200
    assert c.post("/logout").status_code == 302
    assert c.get("/").status_code == 302


def test_fastapi_example(example_env: None) -> None:
    app = load(EXAMPLES / "fastapi_app" / "main.py", "fastapi_example").app
    with TestClient(app) as c:
        assert c.get("/me").status_code == 401
        assert c.post("/login", json={"username": "bob", "password": "bob"}).status_code == 200
        assert c.get("/me").json()["user"] == "bob"
        assert len(c.get("/sessions").json()) >= 1
        assert c.post("/logout").status_code == 200
        assert c.get("/me").status_code == 401


def test_django_example(example_env: None, tmp_path: Path) -> None:
    project = EXAMPLES / "django_app"
    env = dict(os.environ, DEMO_DB=str(tmp_path / "db.sqlite3"), DJANGO_SETTINGS_MODULE="")
    env.pop("DJANGO_SETTINGS_MODULE")
    manage = [sys.executable, "manage.py"]
    for command in (["migrate", "-v", "0"], ["demo_users"]):
        subprocess.run(manage + command, cwd=project, env=env, check=True, timeout=120)
    script = textwrap.dedent(
        """
        import os, django
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
        django.setup()
        from django.test import Client
        from django.test.utils import setup_test_environment
        setup_test_environment()
        c = Client()
        assert c.get("/").status_code == 302
        r = c.post("/accounts/login/", {"username": "bob", "password": "bob"})
        assert r.status_code == 302, r.status_code
        home = c.get("/")
        assert home.status_code == 200 and b"Hello bob" in home.content, home.content
        assert b"sessync-idle-warning" in home.content
        assert c.get("/accounts/sessions/").status_code == 200
        assert c.post("/accounts/logout/").status_code == 302
        assert c.get("/").status_code == 302
        print("django example ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "django example ok" in out.stdout

"""The ``SESSYNC`` settings of the Django integration, with their defaults, and the shared
client built from them (rebuilt when a test overrides the settings).

=====================  ==================================================================
``ENDPOINTS``          node URLs (list, or comma-separated string)
``API_KEY``            the app's key (role app); never logged
``TIMEOUT``            per-call deadline, seconds (10)
``ATTEMPT_TIMEOUT``    per-attempt timeout, seconds (None: only the deadline)
``CA_FILE``            PEM CA for https nodes; ``CLIENT_CERT``/``CLIENT_KEY`` for mTLS
``COOKIE_NAME``        the token cookie (``sessync``); HttpOnly always
``COOKIE_SECURE``      True (set False for local development over http only)
``COOKIE_SAMESITE``    ``Lax``; also ``COOKIE_PATH``, ``COOKIE_DOMAIN``
``TOUCH``              validate touches the session on each request (True)
``CONSISTENCY``        ``linearizable`` (default) or ``local``
``CACHE_MAX_AGE``      seconds a validate answer may be reused (0: no cache, the default)
``CACHE_MAX_ENTRIES``  bound of that cache (10000)
``ORIGIN``             ``origin`` recorded on created sessions (e.g. this site's name)
``TARGETS``            peer sites that end-all-others and log-out-everywhere reach
``USER_ID_FIELD``      the user attribute used as sessync user id (USERNAME_FIELD)
``REQUIRE_SESSION``    log out a Django login that has no sessync cookie (True)
``ADOPT``              log in an anonymous request that brings a valid cookie (True)
``ON_UNAVAILABLE``     ``error`` (503 page, default) or ``anonymous`` (treat as logged
                       out for this request, ending nothing) when the cluster cannot answer
``IDLE_WARNING``       seconds before the idle end the warning shows (60)
``IDLE_LOGOUT_URL``    where the idle script sends the browser (settings.LOGIN_URL)
``NO_TOUCH_PATHS``     paths whose requests validate without touching
``LIMIT_TEMPLATE``     ``sessync/limit_reached.html``; ``BLOCKED_TEMPLATE``,
                       ``SESSIONS_TEMPLATE``, ``UNAVAILABLE_TEMPLATE`` likewise
``PENDING_SECONDS``    how long a login refused at the limit may be retried (300)
=====================  ==================================================================
"""

from __future__ import annotations

import threading
from typing import Any, Dict, Optional

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from ..cache import ValidateCache
from ..client import Client
from ..web import CookieSettings

DEFAULTS: Dict[str, Any] = {
    "ENDPOINTS": ["http://127.0.0.1:7101", "http://127.0.0.1:7102", "http://127.0.0.1:7103"],
    "API_KEY": "",
    "TIMEOUT": 10.0,
    "ATTEMPT_TIMEOUT": None,
    "CA_FILE": None,
    "CLIENT_CERT": None,
    "CLIENT_KEY": None,
    "COOKIE_NAME": "sessync",
    "COOKIE_SECURE": True,
    "COOKIE_SAMESITE": "Lax",
    "COOKIE_PATH": "/",
    "COOKIE_DOMAIN": None,
    "TOUCH": True,
    "CONSISTENCY": "linearizable",
    "CACHE_MAX_AGE": 0,
    "CACHE_MAX_ENTRIES": 10_000,
    "ORIGIN": None,
    "TARGETS": [],
    "USER_ID_FIELD": None,
    "REQUIRE_SESSION": True,
    "ADOPT": True,
    "ON_UNAVAILABLE": "error",
    "IDLE_WARNING": 60,
    "IDLE_LOGOUT_URL": None,
    "NO_TOUCH_PATHS": [],
    "LIMIT_TEMPLATE": "sessync/limit_reached.html",
    "BLOCKED_TEMPLATE": "sessync/blocked.html",
    "SESSIONS_TEMPLATE": "sessync/sessions.html",
    "UNAVAILABLE_TEMPLATE": "sessync/unavailable.html",
    "PENDING_SECONDS": 300,
}

_lock = threading.Lock()
_client: Optional[Client] = None


def setting(name: str) -> Any:
    """One setting: ``SESSYNC[name]`` or its default."""
    configured: Dict[str, Any] = getattr(settings, "SESSYNC", {}) or {}
    if name not in DEFAULTS:
        raise KeyError(f"unknown SESSYNC setting {name}")
    return configured.get(name, DEFAULTS[name])


def cookie() -> CookieSettings:
    configured: Dict[str, Any] = {k: setting(k) for k in DEFAULTS if k.startswith("COOKIE_")}
    return CookieSettings.from_mapping(configured)


def get_client() -> Client:
    """The process's client, built from the settings on first use."""
    global _client
    with _lock:
        if _client is None:
            max_age = float(setting("CACHE_MAX_AGE") or 0)
            cache = (
                ValidateCache(max_age, int(setting("CACHE_MAX_ENTRIES"))) if max_age > 0 else None
            )
            _client = Client(
                setting("ENDPOINTS"),
                setting("API_KEY"),
                timeout=float(setting("TIMEOUT")),
                attempt_timeout=setting("ATTEMPT_TIMEOUT"),
                ca_file=setting("CA_FILE"),
                client_cert=setting("CLIENT_CERT"),
                client_key=setting("CLIENT_KEY"),
                cache=cache,
            )
        return _client


def reset_client() -> None:
    """Drops the client (the next call builds a new one from the settings)."""
    global _client
    with _lock:
        old, _client = _client, None
    if old is not None:
        old.close()


@receiver(setting_changed)
def _on_setting_changed(setting: str, **kwargs: Any) -> None:
    if setting == "SESSYNC":
        reset_client()

"""Django system checks of the ``SESSYNC`` settings (``manage.py check``): unknown keys (a
misspelt setting is otherwise silently ignored), a missing API key, a cookie without Secure
outside DEBUG, and the middleware's place after ``AuthenticationMiddleware``."""

from __future__ import annotations

from typing import Any, List

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from .conf import DEFAULTS

MIDDLEWARE = "sessync.django.middleware.SessyncMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


@register()
def check_settings(app_configs: Any, **kwargs: Any) -> List[CheckMessage]:
    found: List[CheckMessage] = []
    configured = getattr(settings, "SESSYNC", {}) or {}
    for key in sorted(set(configured) - set(DEFAULTS)):
        found.append(Warning(f"SESSYNC[{key!r}] is not a sessync setting", id="sessync.W001"))
    if not configured.get("API_KEY"):
        found.append(Warning("SESSYNC['API_KEY'] is not set", id="sessync.W002"))
    if configured.get("COOKIE_SECURE") is False and not settings.DEBUG:
        found.append(
            Warning(
                "SESSYNC['COOKIE_SECURE'] is False outside DEBUG: the token cookie would "
                "travel over plain http",
                id="sessync.W003",
            )
        )
    middleware = list(getattr(settings, "MIDDLEWARE", []) or [])
    if MIDDLEWARE in middleware and (
        AUTH_MIDDLEWARE not in middleware
        or middleware.index(MIDDLEWARE) < middleware.index(AUTH_MIDDLEWARE)
    ):
        found.append(Error(f"{MIDDLEWARE} must come after {AUTH_MIDDLEWARE}", id="sessync.E001"))
    return found

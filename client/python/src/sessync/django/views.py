"""The views of the Django integration (``sessync.django.urls``, namespace ``sessync``):

- ``sessions``: "where am I logged in": the user's live sessions with their devices, with
  buttons to end one (``end``), end every other one (``end_others``: a verify that keeps this
  one) and log out everywhere (``end_all``: an invalidate of every session);
- ``limit``: a login refused at the limit (``on_limit = "deny"``): the active sessions, each
  with a button that ends it and retries the login;
- ``blocked``: a login created ``blocked`` (``on_limit = "block_new"``): continue on this
  device (a verify: the others end) or cancel;
- ``status``: JSON for the idle script (``{valid, seconds_until_idle_end, ...}``); it touches
  the session only with ``?touch=1``;
- ``logout``: POST, Django's logout (which ends the sessync session).
"""

from __future__ import annotations

import time
from typing import Any, Dict, Optional

from django.conf import settings
from django.contrib.auth import get_user_model, login, logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from ..errors import NotFound
from .conf import get_client, setting
from .helpers import PENDING_KEY, current_session_id, result_of, user_id_of


def _safe_next(request: HttpRequest, candidate: Optional[str], default: str) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


def _home() -> str:
    return str(getattr(settings, "LOGIN_REDIRECT_URL", "/") or "/")


@login_required
def sessions(request: HttpRequest) -> HttpResponse:
    user_id = user_id_of(request.user)
    listed = get_client().list_sessions(user_id, state="live")
    context: Dict[str, Any] = {
        "sessions": listed,
        "current_session_id": current_session_id(request),
        "validation": result_of(request),
    }
    return render(request, setting("SESSIONS_TEMPLATE"), context)


@require_POST
@login_required
def end(request: HttpRequest, session_id: str) -> HttpResponse:
    client = get_client()
    try:
        target = client.get_session(session_id)
    except NotFound as e:
        raise Http404("no such session") from e
    if target.user_id != user_id_of(request.user):
        raise Http404("no such session")
    if session_id == current_session_id(request):
        logout(request)  # ends it through the signal
        return HttpResponseRedirect(str(settings.LOGIN_URL))
    client.end_session(session_id)
    return HttpResponseRedirect(reverse("sessync:sessions"))


@require_POST
@login_required
def end_others(request: HttpRequest) -> HttpResponse:
    session_id = current_session_id(request)
    get_client().verify(user_id_of(request.user), session_id, targets=setting("TARGETS"))
    return HttpResponseRedirect(reverse("sessync:sessions"))


@require_POST
@login_required
def end_all(request: HttpRequest) -> HttpResponse:
    get_client().invalidate(user_id_of(request.user), targets=setting("TARGETS"))
    request._sessync_already_ended = True  # type: ignore[attr-defined]
    logout(request)
    return HttpResponseRedirect(str(settings.LOGIN_URL))


def _pending(request: HttpRequest) -> Optional[Dict[str, Any]]:
    pending = request.session.get(PENDING_KEY)
    if not isinstance(pending, dict):
        return None
    if time.time() - float(pending.get("at", 0)) > float(setting("PENDING_SECONDS")):
        request.session.pop(PENDING_KEY, None)
        return None
    return pending


@require_http_methods(["GET", "POST"])
def limit(request: HttpRequest) -> HttpResponse:
    """The limit page of a refused login: end one session, and the login is retried."""
    pending = _pending(request)
    if pending is None:
        return HttpResponseRedirect(str(settings.LOGIN_URL))
    client = get_client()
    if request.method == "POST":
        session_id = request.POST.get("session_id", "")
        try:
            target = client.get_session(session_id) if session_id else None
        except NotFound:
            target = None
        if target is None or target.user_id != pending["user_id"]:
            raise Http404("no such session")
        client.end_session(session_id)
        user = get_user_model()._default_manager.get(pk=pending["pk"])
        # The retry: Django's login again, whose signal creates the session (or raises
        # LimitReached again, rendered by the middleware, if another login took the place).
        login(request, user, backend=pending.get("backend"))
        return HttpResponseRedirect(_safe_next(request, pending.get("next"), _home()))
    active = client.list_sessions(pending["user_id"])
    return render(
        request, setting("LIMIT_TEMPLATE"), {"sessions": active, "message": ""}, status=409
    )


@require_http_methods(["GET", "POST"])
@login_required
def blocked(request: HttpRequest) -> HttpResponse:
    v = result_of(request)
    next_url = _safe_next(request, request.GET.get("next") or request.POST.get("next"), _home())
    if v is None or not v.blocked:
        return HttpResponseRedirect(next_url)
    user_id = user_id_of(request.user)
    if request.method == "POST":
        if request.POST.get("action") == "continue":
            get_client().verify(user_id, current_session_id(request), targets=setting("TARGETS"))
            return HttpResponseRedirect(next_url)
        logout(request)
        return HttpResponseRedirect(str(settings.LOGIN_URL))
    active = get_client().list_sessions(user_id)
    return render(
        request,
        setting("BLOCKED_TEMPLATE"),
        {"sessions": active, "next": next_url},
        status=403,
    )


def status(request: HttpRequest) -> JsonResponse:
    v = result_of(request)
    if v is None or not v.valid:
        return JsonResponse({"valid": False, "reason": v.reason if v is not None else "unknown"})
    return JsonResponse(
        {
            "valid": True,
            "session_id": v.session.session_id if v.session is not None else None,
            "seconds_until_idle_end": v.seconds_until_idle_end,
            "seconds_until_session_end": v.seconds_until_session_end,
        }
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return HttpResponseRedirect(
        str(getattr(settings, "LOGOUT_REDIRECT_URL", None) or settings.LOGIN_URL)
    )

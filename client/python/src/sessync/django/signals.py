"""Django's login and logout signals, tied to sessync sessions.

``user_logged_in``: creates the user's sessync session (device: the request's User-Agent and
address) and asks the middleware to set the token in an HttpOnly cookie. A login refused at
the limit (``on_limit = "deny"``) is undone (Django ``logout``), remembered in the session for
a retry, and raises :class:`sessync.LimitReached` out of ``login()``: the middleware renders
the limit page, which lists the active sessions and lets the user end one and retry.

``user_logged_out``: ends the sessync session (``logout``) and deletes the cookie.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Optional

from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.http import HttpRequest

from ..errors import LimitReached, NotFound, SessyncError
from .conf import get_client, setting
from .helpers import (
    PENDING_KEY,
    SESSION_ID_KEY,
    current_session_id,
    delete_token_cookie,
    device_of,
    set_token_cookie,
    user_id_of,
)

log = logging.getLogger(__name__)


def on_login(sender: Any, request: Optional[HttpRequest], user: Any, **kwargs: Any) -> None:
    if request is None or getattr(request, "_sessync_adopting", False):
        return  # no request (a script), or the middleware adopting an existing session
    user_id = user_id_of(user)
    try:
        created = get_client().create_session(
            user_id, device=device_of(request), origin=setting("ORIGIN")
        )
    except LimitReached:
        backend = getattr(user, "backend", None)
        request._sessync_refused = True  # type: ignore[attr-defined]
        logout(request)
        request.session[PENDING_KEY] = {
            "pk": str(user.pk),
            "user_id": user_id,
            "backend": backend,
            "at": time.time(),
            "next": request.POST.get("next") or request.GET.get("next") or "",
        }
        raise
    request.session[SESSION_ID_KEY] = created.session.session_id
    request.session.pop(PENDING_KEY, None)
    set_token_cookie(request, created)


def on_logout(sender: Any, request: Optional[HttpRequest], user: Any, **kwargs: Any) -> None:
    if request is None:
        return
    delete_token_cookie(request)
    if getattr(request, "_sessync_refused", False) or getattr(
        request, "_sessync_already_ended", False
    ):
        return
    session_id = current_session_id(request)
    if session_id is None:
        return
    try:
        get_client().end_session(session_id)
    except NotFound:
        pass
    except SessyncError as e:
        # The Django logout goes on; the sessync session ends by idleness at the latest.
        log.warning("sessync: could not end session %s at logout: %s", session_id, e)


def connect() -> None:
    user_logged_in.connect(on_login, dispatch_uid="sessync.django.on_login")
    user_logged_out.connect(on_logout, dispatch_uid="sessync.django.on_logout")

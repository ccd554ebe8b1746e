"""``SessyncMiddleware``: validates (and touches) the request's sessync session on every
request, and keeps Django's login in step with it. Put it right after
``django.contrib.auth.middleware.AuthenticationMiddleware``.

- valid: ``request.sessync`` is the ``ValidateResult`` (``seconds_until_idle_end`` for the
  idle warning); an anonymous request with a valid cookie is logged in through
  ``SessyncBackend`` (``ADOPT``);
- blocked (``on_limit = "block_new"``): the user is sent to the blocked page, which offers to
  continue on this device (a verify, ending the others) or to cancel;
- ended or unknown: Django's ``logout()``, the cookie deleted, the reason kept in the session
  (``sessync_end_reason``) for the login page to show;
- cluster unavailable: a 503 page (``ON_UNAVAILABLE = "error"``), or the request goes on as
  anonymous (``"anonymous"``) without ending anything;
- a Django login without a sessync cookie is logged out (``REQUIRE_SESSION``).

On the way out it sets or deletes the token cookie as a login or logout in the request asked,
and it renders the limit page for a :class:`sessync.LimitReached` raised by ``login()``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional, Set, cast

from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.http import urlencode

from ..errors import BadRequest, InvalidArgument, LimitReached, Unavailable
from ..models import ValidateResult
from .conf import cookie, get_client, setting
from .helpers import ENDED_KEY, SESSION_ID_KEY, delete_token_cookie, user_id_of

log = logging.getLogger(__name__)

BACKEND = "sessync.django.backends.SessyncBackend"


def _path(name: str) -> Optional[str]:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


class SessyncMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.sessync = None  # type: ignore[attr-defined]
        early = self.check(request)
        response = early if early is not None else self.get_response(request)
        self.write_cookie(request, response)
        return response

    # --- on the way in --------------------------------------------------------------------

    def touches(self, request: HttpRequest) -> bool:
        if not setting("TOUCH"):
            return False
        if request.path_info == _path("sessync:status"):
            return request.GET.get("touch") == "1"  # the idle script asks without touching
        return request.path_info not in set(setting("NO_TOUCH_PATHS"))

    def check(self, request: HttpRequest) -> Optional[HttpResponse]:
        token = request.COOKIES.get(cookie().name) or None
        user = getattr(request, "user", None)
        logged_in = bool(user is not None and user.is_authenticated)
        if token is None:
            if logged_in and setting("REQUIRE_SESSION"):
                self.end_django_login(request, reason="unknown")
            return None
        try:
            v = get_client().validate(
                token, touch=self.touches(request), consistency=setting("CONSISTENCY")
            )
        except (InvalidArgument, BadRequest):  # a garbled cookie is no session
            v = ValidateResult(valid=False, reason="unknown")
        except Unavailable as e:
            return self.unavailable(request, e)
        request.sessync = v  # type: ignore[attr-defined]
        if v.valid and v.session is not None:
            if logged_in and user_id_of(user) != v.session.user_id:
                # The cookie is another user's session: trust neither.
                self.end_django_login(request, reason="unknown")
                delete_token_cookie(request)
                request.sessync = None  # type: ignore[attr-defined]
            elif not logged_in and setting("ADOPT"):
                self.adopt(request, token)
            return None
        if v.blocked:
            return self.blocked(request)
        delete_token_cookie(request)
        if logged_in:
            self.end_django_login(request, reason=v.reason or "unknown")
        return None

    def adopt(self, request: HttpRequest, token: str) -> None:
        """Logs in the user of a valid cookie that Django's session no longer knows."""
        user = authenticate(request, sessync_token=token)
        if user is None:
            return
        request._sessync_adopting = True  # type: ignore[attr-defined]
        try:
            login(request, user, backend=BACKEND)
        finally:
            request._sessync_adopting = False  # type: ignore[attr-defined]
        v = request.sessync  # type: ignore[attr-defined]
        if v is not None and v.session is not None:
            request.session[SESSION_ID_KEY] = v.session.session_id

    def end_django_login(self, request: HttpRequest, reason: str) -> None:
        """Django's logout for a session that sessync already ended (nothing to end)."""
        request._sessync_already_ended = True  # type: ignore[attr-defined]
        logout(request)
        request.session[ENDED_KEY] = reason
        request.sessync_end_reason = reason  # type: ignore[attr-defined]

    def blocked(self, request: HttpRequest) -> Optional[HttpResponse]:
        allowed: Set[Optional[str]] = {
            _path("sessync:blocked"),
            _path("sessync:logout"),
            _path("sessync:status"),
        }
        if request.path_info in allowed:
            return None
        target = _path("sessync:blocked")
        if target is None:
            return HttpResponse("This login waits for confirmation.", status=403)
        return HttpResponseRedirect(f"{target}?{urlencode({'next': request.get_full_path()})}")

    def unavailable(self, request: HttpRequest, error: Exception) -> Optional[HttpResponse]:
        log.warning("sessync: cannot validate the session: %s", error)
        if setting("ON_UNAVAILABLE") == "anonymous":
            from django.contrib.auth.models import AnonymousUser

            request.user = AnonymousUser()
            return None
        response = render(request, setting("UNAVAILABLE_TEMPLATE"), status=503)
        response["Retry-After"] = "5"
        return response

    # --- on the way out -------------------------------------------------------------------

    def write_cookie(self, request: HttpRequest, response: HttpResponse) -> None:
        c = cookie()
        created = getattr(request, "_sessync_created", None)
        if created is not None:
            lifetime = int(
                (created.session.expires_at - created.session.created_at).total_seconds()
            )
            response.set_cookie(c.name, created.token, **c.attributes(lifetime))
        elif getattr(request, "_sessync_delete_cookie", False) and c.name in request.COOKIES:
            response.delete_cookie(
                c.name, path=c.path, domain=c.domain, samesite=cast(Any, c.samesite)
            )

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> Optional[HttpResponse]:
        if isinstance(exception, LimitReached):
            context: dict[str, Any] = {
                "sessions": exception.active_sessions,
                "message": exception.message,
            }
            return render(request, setting("LIMIT_TEMPLATE"), context, status=409)
        if isinstance(exception, Unavailable):
            return self.unavailable(request, exception)
        return None

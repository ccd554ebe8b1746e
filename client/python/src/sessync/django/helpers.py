"""Request-level state of the Django integration, shared by the signal handlers, the
middleware, the backend and the views: which sessync user a Django user is, the device of a
request, and the cookie changes a response must carry.

Attributes set on the request (never holding the token in anything that is logged):
``request.sessync`` (the ``ValidateResult`` of this request, or None), and the private
``_sessync_*`` markers read by the middleware when the response goes out.
"""

from __future__ import annotations

from typing import Any, Optional

from django.contrib.auth import get_user_model
from django.http import HttpRequest

from ..models import CreateResult, Device, ValidateResult
from ..web import device_for
from .conf import setting

#: The Django session key that remembers the sessync session id of the login.
SESSION_ID_KEY = "sessync_session_id"
#: The Django session key of a login refused at the limit, waiting for a retry.
PENDING_KEY = "sessync_pending_login"
#: The Django session key that says why the previous session ended.
ENDED_KEY = "sessync_end_reason"


def user_id_field() -> str:
    field = setting("USER_ID_FIELD")
    return str(field) if field else str(get_user_model().USERNAME_FIELD)


def user_id_of(user: Any) -> str:
    """The sessync user id of a Django user."""
    return str(getattr(user, user_id_field()))


def user_for(user_id: str) -> Optional[Any]:
    """The active Django user whose sessync user id is ``user_id``, or None."""
    model = get_user_model()
    try:
        user = model._default_manager.get(**{user_id_field(): user_id})
    except (model.DoesNotExist, ValueError):
        return None
    return user if getattr(user, "is_active", True) else None


def device_of(request: HttpRequest) -> Device:
    return device_for(request.META.get("HTTP_USER_AGENT"), request.META.get("REMOTE_ADDR"))


def result_of(request: HttpRequest) -> Optional[ValidateResult]:
    """This request's validate answer, as the middleware left it."""
    value = getattr(request, "sessync", None)
    return value if isinstance(value, ValidateResult) else None


def current_session_id(request: HttpRequest) -> Optional[str]:
    """The sessync session of this request: validated, or made by a login in this request,
    or remembered in the Django session."""
    v = result_of(request)
    if v is not None and v.session is not None:
        return v.session.session_id
    created: Optional[CreateResult] = getattr(request, "_sessync_created", None)
    if created is not None:
        return created.session.session_id
    session = getattr(request, "session", None)
    if session is not None:
        value = session.get(SESSION_ID_KEY)
        return str(value) if value else None
    return None


def set_token_cookie(request: HttpRequest, created: CreateResult) -> None:
    """Asks the middleware to set the new token's cookie on the response."""
    request._sessync_created = created  # type: ignore[attr-defined]
    request._sessync_delete_cookie = False  # type: ignore[attr-defined]


def delete_token_cookie(request: HttpRequest) -> None:
    """Asks the middleware to delete the token cookie on the response."""
    request._sessync_created = None  # type: ignore[attr-defined]
    request._sessync_delete_cookie = True  # type: ignore[attr-defined]

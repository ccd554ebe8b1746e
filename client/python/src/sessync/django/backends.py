"""``SessyncBackend``: an authentication backend that accepts a sessync token. The middleware
uses it to log in an anonymous request that brings a valid session cookie (a Django session
that expired or was flushed while the sessync session lives on), like Django's
``RemoteUserMiddleware``/``RemoteUserBackend`` pair. Password logins stay with
``ModelBackend``; put this one after it in ``AUTHENTICATION_BACKENDS``.
"""

from __future__ import annotations

from typing import Any, Optional

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import BaseBackend
from django.http import HttpRequest

from ..errors import BadRequest, InvalidArgument
from ..models import ValidateResult
from .conf import get_client, setting
from .helpers import result_of, user_for


class SessyncBackend(BaseBackend):
    """``authenticate(request, sessync_token=...)``: the user of a valid sessync session."""

    def authenticate(
        self, request: Optional[HttpRequest], sessync_token: Optional[str] = None, **kwargs: Any
    ) -> Optional[Any]:
        if not sessync_token or kwargs:
            return None
        result: Optional[ValidateResult] = result_of(request) if request is not None else None
        if result is None:
            try:
                result = get_client().validate(
                    sessync_token, touch=bool(setting("TOUCH")), consistency=setting("CONSISTENCY")
                )
            except (InvalidArgument, BadRequest):  # a garbled cookie is no session
                return None
        if not result.valid or result.session is None:
            return None
        return user_for(result.session.user_id)

    def get_user(self, user_id: Any) -> Optional[Any]:
        model = get_user_model()
        try:
            user = model._default_manager.get(pk=user_id)
        except model.DoesNotExist:
            return None
        return user if getattr(user, "is_active", True) else None

"""``{% load sessync %}``: ``{% sessync_idle_warning %}`` emits the idle script (see
``sessync.web.idle_script``) for a request with a valid session, nothing otherwise. It needs
``django.template.context_processors.request``. ``{% sessync_idle_warning 120 %}`` warns 120 s
before the end instead of ``SESSYNC["IDLE_WARNING"]``."""

from __future__ import annotations

from typing import Any, Optional

from django import template
from django.conf import settings
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from ...web import idle_script
from ..conf import setting
from ..helpers import result_of

register = template.Library()


@register.simple_tag(takes_context=True)
def sessync_idle_warning(context: Any, warn_before: Optional[int] = None) -> SafeString:
    request = context.get("request")
    v = result_of(request) if request is not None else None
    if v is None or not v.valid or v.seconds_until_idle_end is None:
        return mark_safe("")
    logout_url = setting("IDLE_LOGOUT_URL") or str(settings.LOGIN_URL)
    script = idle_script(
        v.seconds_until_idle_end,
        status_url=reverse("sessync:status"),
        logout_url=logout_url,
        warn_before=int(warn_before if warn_before is not None else setting("IDLE_WARNING")),
        nonce=getattr(request, "csp_nonce", None),
    )
    return mark_safe(script)  # built from numbers and URLs, JSON-escaped

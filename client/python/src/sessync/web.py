"""Framework-neutral pieces of the web integrations: the cookie that carries the token, the
device description of a login, and the idle-warning script.

The token is a bearer secret: it lives only in an HttpOnly cookie (never readable by page
scripts), Secure unless turned off for local development over http, SameSite=Lax, and it is
never logged or put in a ``repr``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Dict, Literal, Mapping, Optional, Tuple, Union

from .models import Device

__all__ = [
    "CookieSettings",
    "device_for",
    "idle_script",
    "read_binding",
    "sign_binding",
    "truncate_utf8",
]

#: Longest device field the node accepts, in bytes.
MAX_DEVICE_FIELD_BYTES = 512


@dataclass(frozen=True)
class CookieSettings:
    """How the token cookie is set. ``secure=False`` only for local development over http."""

    name: str = "sessync"
    secure: bool = True
    samesite: str = "Lax"
    path: str = "/"
    domain: Optional[str] = None

    def __post_init__(self) -> None:
        if self.samesite not in ("Lax", "Strict", "None"):
            raise ValueError("samesite must be Lax, Strict or None")
        if self.samesite == "None" and not self.secure:
            raise ValueError("SameSite=None cookies must be Secure")

    @property
    def samesite_literal(self) -> Literal["lax", "strict", "none"]:
        """``samesite`` as Starlette's ``set_cookie`` types it."""
        value = self.samesite.lower()
        if value == "strict":
            return "strict"
        return "none" if value == "none" else "lax"

    def attributes(self, max_age: Optional[int]) -> Dict[str, Any]:
        """Keyword arguments for ``response.set_cookie`` in Flask, Starlette and Django."""
        out: Dict[str, Any] = {
            "httponly": True,
            "secure": self.secure,
            "samesite": self.samesite,
            "path": self.path,
            "domain": self.domain,
        }
        if max_age is not None:
            out["max_age"] = max(0, int(max_age))
        return out

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], prefix: str = "COOKIE_") -> CookieSettings:
        """From settings such as ``{"COOKIE_NAME": ..., "COOKIE_SECURE": False}``."""
        d = cls()
        return cls(
            name=str(raw.get(prefix + "NAME", d.name)),
            secure=bool(raw.get(prefix + "SECURE", d.secure)),
            samesite=str(raw.get(prefix + "SAMESITE", d.samesite)),
            path=str(raw.get(prefix + "PATH", d.path)),
            domain=raw.get(prefix + "DOMAIN", d.domain),
        )


def truncate_utf8(text: Optional[str], limit: int = MAX_DEVICE_FIELD_BYTES) -> Optional[str]:
    """``text`` cut to at most ``limit`` UTF-8 bytes (on a character boundary), without control
    characters, which the node refuses; None stays None."""
    if text is None:
        return None
    clean = "".join(ch for ch in text if ch.isprintable())
    data = clean.encode("utf-8")[:limit]
    return data.decode("utf-8", errors="ignore") or None


def describe_user_agent(user_agent: Optional[str]) -> Optional[str]:
    """A short device name from a User-Agent ("Firefox on Linux"), for "where am I logged in"."""
    if not user_agent:
        return None
    ua = user_agent.lower()
    browser = next(
        (
            name
            for key, name in (
                ("edg/", "Edge"),
                ("opr/", "Opera"),
                ("firefox/", "Firefox"),
                ("chrome/", "Chrome"),
                ("safari/", "Safari"),
                ("curl/", "curl"),
                ("python", "Python"),
            )
            if key in ua
        ),
        None,
    )
    system = next(
        (
            name
            for key, name in (
                ("android", "Android"),
                ("iphone", "iPhone"),
                ("ipad", "iPad"),
                ("windows", "Windows"),
                ("mac os", "macOS"),
                ("linux", "Linux"),
            )
            if key in ua
        ),
        None,
    )
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown device"


def device_for(user_agent: Optional[str], ip: Optional[str], name: Optional[str] = None) -> Device:
    """The device of a login from the request: its User-Agent, address and a name (given, or
    made from the User-Agent), each cut to the node's limits."""
    return Device(
        name=truncate_utf8(name or describe_user_agent(user_agent)),
        user_agent=truncate_utf8(user_agent),
        ip=truncate_utf8(ip),
    )


def idle_script(
    seconds_until_idle_end: int,
    *,
    status_url: str,
    logout_url: str,
    warn_before: int = 60,
    nonce: Optional[str] = None,
) -> str:
    """A small ``<script>`` that logs the user out in the browser when the session's idle time
    runs out (as django-auto-logout does): ``warn_before`` seconds before, it shows a warning
    with a "Stay logged in" button (which asks ``status_url?touch=1``); at the end it asks
    ``status_url?touch=0`` whether another tab kept the session alive, and if not, goes to
    ``logout_url``. ``status_url`` must answer ``{valid, seconds_until_idle_end}`` and touch
    the session only when asked to. It holds no secret: the token
    stays in its HttpOnly cookie."""
    config = json.dumps(
        {
            "seconds": max(0, int(seconds_until_idle_end)),
            "warn": max(0, int(warn_before)),
            "status": status_url,
            "logout": logout_url,
        }
    ).replace("</", "<\\/")
    nonce_attr = f' nonce="{nonce}"' if nonce else ""
    return (
        f"<script{nonce_attr}>(function(c){{"
        "var box=null,timer=null;"
        "function warn(left){if(!box){box=document.createElement('div');"
        "box.setAttribute('role','alert');box.id='sessync-idle-warning';"
        "box.style.cssText='position:fixed;bottom:1em;right:1em;padding:.75em 1em;"
        "background:#fff3cd;border:1px solid #c9a227;z-index:99999;font:14px sans-serif';"
        "var t=document.createElement('span');var b=document.createElement('button');"
        "b.textContent='Stay logged in';b.style.marginLeft='1em';"
        "b.onclick=function(){check(true);};box.appendChild(t);box.appendChild(b);"
        "document.body.appendChild(box);}"
        "box.firstChild.textContent='You will be logged out in '+Math.max(0,Math.round(left))+"
        "' s for inactivity.';}"
        "function clear(){if(box){box.remove();box=null;}}"
        "function plan(s){var end=Date.now()+s*1000;clearInterval(timer);"
        "timer=setInterval(function(){var left=(end-Date.now())/1000;"
        "if(left<=0){clearInterval(timer);check(false);}"
        "else if(left<=c.warn){warn(left);}},1000);}"
        "function check(touch){var u=c.status+(c.status.indexOf('?')<0?'?':'&')+"
        "'touch='+(touch?'1':'0');"
        "fetch(u,{credentials:'same-origin',cache:'no-store'})"
        ".then(function(r){return r.ok?r.json():{valid:false};})"
        ".then(function(j){if(j&&j.valid&&j.seconds_until_idle_end>0){clear();"
        "plan(j.seconds_until_idle_end);}else{window.location.href=c.logout;}})"
        ".catch(function(){plan(5);});}"
        "plan(c.seconds);"
        f"}})({config});</script>"
    )


# --- which session a token is --------------------------------------------------------------
#
# validate answers a blocked session with ``{valid: false, reason: "blocked"}`` alone: neither
# its id nor its user. To offer "continue here" (a verify of that session) the app must know
# both from elsewhere, and must not take them from the browser unchecked (a forged id would
# let one user supersede another's sessions). So at login the integrations set a companion
# cookie, ``<name>_sid``, holding the session id and user id with an HMAC (the app's secret)
# over them and the SHA-256 of the token: it is only good together with that token.


def _mac(secret: Union[str, bytes], token: str, session_id: str, user_id: str) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    token_hash = hashlib.sha256(token.encode()).hexdigest()
    msg = "\x1f".join(("sessync-binding-v1", token_hash, session_id, user_id)).encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def sign_binding(secret: Union[str, bytes], token: str, session_id: str, user_id: str) -> str:
    """The companion cookie's value for a new session."""
    user = base64.urlsafe_b64encode(user_id.encode()).decode().rstrip("=")
    return f"{session_id}.{user}.{_mac(secret, token, session_id, user_id)}"


def read_binding(
    secret: Union[str, bytes], token: str, value: Optional[str]
) -> Optional[Tuple[str, str]]:
    """(session_id, user_id) from a companion cookie, if it was signed for ``token``."""
    if not value or value.count(".") != 2:
        return None
    session_id, user, mac = value.split(".")
    try:
        user_id = base64.urlsafe_b64decode(user + "=" * (-len(user) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    if not hmac.compare_digest(mac, _mac(secret, token, session_id, user_id)):
        return None
    return session_id, user_id

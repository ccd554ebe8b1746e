"""Flask integration: the ``Sessync`` extension, ``login_user``/``logout_user`` helpers, the
``login_required`` decorator and ``current_session``.

Setup::

    from flask import Flask
    from sessync.flask import Sessync, login_required, login_user, logout_user, current_session

    app = Flask(__name__)
    app.config.update(
        SESSYNC_ENDPOINTS="http://127.0.0.1:7101,http://127.0.0.1:7102,http://127.0.0.1:7103",
        SESSYNC_API_KEY="demo-app-key-change-me",
        SESSYNC_COOKIE_SECURE=False,  # local http only
    )
    Sessync(app)

    @app.post("/login")
    def login():
        ...check the password...
        login_user(username)          # creates the sessync session, sets the HttpOnly cookie
        return redirect("/")

    @app.get("/")
    @login_required                   # validates (and touches) the session on each request
    def home():
        return f"hello {current_session.user_id}"

Configuration keys (``app.config``): ``SESSYNC_ENDPOINTS`` (list or comma-separated),
``SESSYNC_API_KEY``, ``SESSYNC_TIMEOUT`` (10 s), ``SESSYNC_ATTEMPT_TIMEOUT``,
``SESSYNC_CA_FILE``/``SESSYNC_CLIENT_CERT``/``SESSYNC_CLIENT_KEY``, ``SESSYNC_COOKIE_NAME``
(``sessync``), ``SESSYNC_COOKIE_SECURE`` (True), ``SESSYNC_COOKIE_SAMESITE`` (``Lax``),
``SESSYNC_TOUCH`` (True), ``SESSYNC_CONSISTENCY`` (``linearizable``), ``SESSYNC_CACHE_MAX_AGE``
(0: no cache) and ``SESSYNC_CACHE_MAX_ENTRIES``, ``SESSYNC_ORIGIN`` (the ``origin`` of created
sessions), ``SESSYNC_TARGETS`` (peer sites that "log out everywhere" and "end other sessions"
reach), ``SESSYNC_LOGIN_VIEW`` (where ``login_required`` sends the anonymous; else 401) and
``SESSYNC_BLOCKED_VIEW`` (where it sends a blocked session; else 403).

Set the app's ``SECRET_KEY``: it signs the companion cookie that names a blocked session (whose
validate answer names neither it nor its user), which "continue here" (``end_other_sessions``)
needs.

``login_user`` raises :class:`sessync.LimitReached` under ``on_limit = "deny"``: catch it and
show ``e.active_sessions`` so the user can end one (``end_session``) and try again. A cluster
that cannot answer raises :class:`sessync.Unavailable`; ``login_required`` answers it with 503.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar, cast

from flask import Flask, Response, abort, current_app, g, redirect, request, url_for
from werkzeug.local import LocalProxy

from .cache import ValidateCache
from .client import Client
from .errors import BadRequest, InvalidArgument, NotFound, Unavailable
from .models import CreateResult, InvalidateResult, SessionView, ValidateResult, VerifyResult
from .web import CookieSettings, device_for, read_binding, sign_binding

__all__ = [
    "Sessync",
    "current_session",
    "current_validation",
    "login_required",
    "login_user",
    "logout_user",
]

F = TypeVar("F", bound=Callable[..., Any])

_DEFAULTS: Dict[str, Any] = {
    "SESSYNC_ENDPOINTS": "http://127.0.0.1:7101,http://127.0.0.1:7102,http://127.0.0.1:7103",
    "SESSYNC_API_KEY": "",
    "SESSYNC_TIMEOUT": 10.0,
    "SESSYNC_ATTEMPT_TIMEOUT": None,
    "SESSYNC_CA_FILE": None,
    "SESSYNC_CLIENT_CERT": None,
    "SESSYNC_CLIENT_KEY": None,
    "SESSYNC_COOKIE_NAME": "sessync",
    "SESSYNC_COOKIE_SECURE": True,
    "SESSYNC_COOKIE_SAMESITE": "Lax",
    "SESSYNC_TOUCH": True,
    "SESSYNC_CONSISTENCY": "linearizable",
    "SESSYNC_CACHE_MAX_AGE": 0,
    "SESSYNC_CACHE_MAX_ENTRIES": 10_000,
    "SESSYNC_ORIGIN": None,
    "SESSYNC_TARGETS": [],
    "SESSYNC_LOGIN_VIEW": None,
    "SESSYNC_BLOCKED_VIEW": None,
}


class Sessync:
    """The Flask extension. ``Sessync(app)`` or ``Sessync()`` then ``init_app(app)``; pass
    ``client`` to use a client of your own (tests do)."""

    def __init__(self, app: Optional[Flask] = None, client: Optional[Client] = None) -> None:
        self._client = client
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        for key, value in _DEFAULTS.items():
            app.config.setdefault(key, value)
        app.extensions["sessync"] = self
        if self._client is None:
            max_age = float(app.config["SESSYNC_CACHE_MAX_AGE"] or 0)
            cache = (
                ValidateCache(max_age, int(app.config["SESSYNC_CACHE_MAX_ENTRIES"]))
                if max_age > 0
                else None
            )
            self._client = Client(
                app.config["SESSYNC_ENDPOINTS"],
                app.config["SESSYNC_API_KEY"],
                timeout=float(app.config["SESSYNC_TIMEOUT"]),
                attempt_timeout=app.config["SESSYNC_ATTEMPT_TIMEOUT"],
                ca_file=app.config["SESSYNC_CA_FILE"],
                client_cert=app.config["SESSYNC_CLIENT_CERT"],
                client_key=app.config["SESSYNC_CLIENT_KEY"],
                cache=cache,
            )
        app.after_request(self._after_request)

    # --- state ----------------------------------------------------------------------------

    @property
    def client(self) -> Client:
        if self._client is None:
            raise InvalidArgument("Sessync is not initialised: call init_app(app)")
        return self._client

    @staticmethod
    def cookie() -> CookieSettings:
        c = current_app.config
        return CookieSettings(
            name=c["SESSYNC_COOKIE_NAME"],
            secure=bool(c["SESSYNC_COOKIE_SECURE"]),
            samesite=c["SESSYNC_COOKIE_SAMESITE"],
        )

    def token(self) -> Optional[str]:
        """The token of this request: one set by ``login_user`` in it, else the cookie's."""
        pending = g.get("_sessync_new_token")
        if pending is not None:
            return cast(str, pending)
        if g.get("_sessync_clear"):
            return None
        return request.cookies.get(self.cookie().name) or None

    def validation(self) -> Optional[ValidateResult]:
        """The validate answer for this request's token (asked once per request; None without
        a token). Raises :class:`sessync.Unavailable` when the cluster cannot answer."""
        if "_sessync_validation" in g:
            return cast(Optional[ValidateResult], g._sessync_validation)
        token = self.token()
        result: Optional[ValidateResult] = None
        if token is not None:
            try:
                result = self.client.validate(
                    token,
                    touch=bool(current_app.config["SESSYNC_TOUCH"]),
                    consistency=current_app.config["SESSYNC_CONSISTENCY"],
                )
            except (InvalidArgument, BadRequest):  # a garbled cookie is no session
                result = ValidateResult(valid=False, reason="unknown")
            if not result.valid and not result.blocked:
                g._sessync_clear = True  # ended or unknown: drop the cookie
        g._sessync_validation = result
        return result

    def identity(self) -> Optional[Tuple[str, str]]:
        """(session_id, user_id) of this request's session, valid or blocked: from the validate
        answer, else from the signed companion cookie set at login (a blocked session's
        validate answer names neither; see ``sessync.web.sign_binding``). Needs the app's
        ``SECRET_KEY`` for the blocked case."""
        v = self.validation()
        if v is not None and v.session is not None:
            return v.session.session_id, v.session.user_id
        token = self.token()
        secret = current_app.secret_key
        if token is None or not secret:
            return None
        value = g.get("_sessync_new_binding") or request.cookies.get(self.cookie().name + "_sid")
        return read_binding(secret, token, value)

    def current_session(self) -> Optional[SessionView]:
        """This request's session if it is valid, else None."""
        v = self.validation()
        return v.session if v is not None and v.valid else None

    # --- login and logout -----------------------------------------------------------------

    def login_user(
        self,
        user_id: str,
        *,
        device_name: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> CreateResult:
        """Creates the user's session and sets the cookie on this request's response. The
        answer's ``session.state`` is ``blocked`` under ``block_new`` at the limit."""
        device = device_for(request.headers.get("User-Agent"), request.remote_addr, device_name)
        created = self.client.create_session(
            user_id,
            device=device,
            origin=current_app.config["SESSYNC_ORIGIN"],
            idempotency_key=idempotency_key,
        )
        g._sessync_new_token = created.token
        if current_app.secret_key:
            g._sessync_new_binding = sign_binding(
                current_app.secret_key, created.token, created.session.session_id, user_id
            )
        g._sessync_new_max_age = int(
            (created.session.expires_at - created.session.created_at).total_seconds()
        )
        g._sessync_clear = False
        g.pop("_sessync_validation", None)
        return created

    def logout_user(self) -> Optional[SessionView]:
        """Ends this request's session (``logout``) and clears the cookie."""
        ident = self.identity()
        ended: Optional[SessionView] = None
        if ident is not None:
            try:
                ended = self.client.end_session(ident[0])
            except NotFound:
                ended = None
        self._forget()
        return ended

    def logout_everywhere(self) -> Optional[InvalidateResult]:
        """Ends every session of this request's user, on every site in ``SESSYNC_TARGETS``."""
        session = self.current_session()
        if session is None:
            return None
        result = self.client.invalidate(
            session.user_id, targets=current_app.config["SESSYNC_TARGETS"]
        )
        self._forget()
        return result

    def end_other_sessions(self) -> Optional[VerifyResult]:
        """Keeps this request's session (activating it if blocked: "continue here") and ends
        the user's others (``superseded``), on every site in ``SESSYNC_TARGETS``."""
        ident = self.identity()
        if ident is None:
            return None
        session_id, user_id = ident
        result = self.client.verify(
            user_id, session_id, targets=current_app.config["SESSYNC_TARGETS"]
        )
        g.pop("_sessync_validation", None)
        return result

    def end_session(self, session_id: str, *, user_id: Optional[str] = None) -> SessionView:
        """Ends one session of this request's user (from a "where am I logged in" list), or
        of ``user_id`` when the app vouches for it (the user whose login hit the limit);
        NotFound if the session is not theirs."""
        session = self.current_session()
        owner = user_id if user_id is not None else (session.user_id if session else None)
        target = self.client.get_session(session_id)
        if owner is None or target.user_id != owner:
            raise NotFound(f"no session {session_id} of this user")
        return self.client.end_session(session_id)

    def sessions(self) -> List[SessionView]:
        """This request's user's live sessions (active and blocked), newest first."""
        session = self.current_session()
        if session is None:
            return []
        return self.client.list_sessions(session.user_id, state="live")

    def _forget(self) -> None:
        g._sessync_clear = True
        g.pop("_sessync_new_token", None)
        g.pop("_sessync_new_binding", None)
        g._sessync_validation = None

    def _after_request(self, response: Response) -> Response:
        cookie = self.cookie()
        token = g.get("_sessync_new_token")
        if token is not None:
            attributes = cookie.attributes(g.get("_sessync_new_max_age"))
            response.set_cookie(cookie.name, token, **attributes)
            binding = g.get("_sessync_new_binding")
            if binding is not None:
                response.set_cookie(cookie.name + "_sid", binding, **attributes)
        elif g.get("_sessync_clear"):
            for name in (cookie.name, cookie.name + "_sid"):
                if request.cookies.get(name):
                    response.delete_cookie(
                        name,
                        path=cookie.path,
                        domain=cookie.domain,
                        secure=cookie.secure,
                        httponly=True,
                        samesite=cookie.samesite,
                    )
        return response


# --- module-level helpers ----------------------------------------------------------------


def _ext() -> Sessync:
    ext = current_app.extensions.get("sessync")
    if ext is None:
        raise InvalidArgument("Sessync(app) was not set up on this app")
    return cast(Sessync, ext)


def login_user(user_id: str, *, device_name: Optional[str] = None) -> CreateResult:
    """``Sessync.login_user`` of the current app."""
    return _ext().login_user(user_id, device_name=device_name)


def logout_user() -> Optional[SessionView]:
    """``Sessync.logout_user`` of the current app."""
    return _ext().logout_user()


def login_required(view: F) -> F:
    """Lets the request through only with a valid session: else redirects to
    ``SESSYNC_LOGIN_VIEW`` (or answers 401); a blocked session goes to ``SESSYNC_BLOCKED_VIEW``
    (or 403); a cluster that cannot answer gets 503 (the user is not logged out for it)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ext = _ext()
        try:
            v = ext.validation()
        except Unavailable:
            abort(503, description="The session service is unavailable; try again shortly.")
        if v is not None and v.valid:
            return view(*args, **kwargs)
        config = current_app.config
        if v is not None and v.blocked:
            if config["SESSYNC_BLOCKED_VIEW"]:
                return redirect(url_for(config["SESSYNC_BLOCKED_VIEW"], next=request.path))
            abort(403, description="This login waits for confirmation (on_limit = block_new).")
        if config["SESSYNC_LOGIN_VIEW"]:
            return redirect(url_for(config["SESSYNC_LOGIN_VIEW"], next=request.path))
        abort(401)

    return cast(F, wrapper)


def _current_session() -> Optional[SessionView]:
    return _ext().current_session()


def _current_validation() -> Optional[ValidateResult]:
    return _ext().validation()


#: This request's valid session (a ``SessionView``), or a proxy of None: test it with
#: ``if current_session:`` (a proxy is never ``is None``).
current_session: Optional[SessionView] = cast(Optional[SessionView], LocalProxy(_current_session))
#: This request's validate answer (with ``seconds_until_idle_end``), or a proxy of None.
current_validation: Optional[ValidateResult] = cast(
    Optional[ValidateResult], LocalProxy(_current_validation)
)

"""FastAPI/Starlette integration: the ``Sessync`` helper (async client, cookie settings, login
and logout), the ``SessyncMiddleware`` that validates each request's session once, the
``require_session`` dependency, and ``SessionEndWatcher``, which closes WebSocket connections
when their session ends (from the events stream, or by polling when the key may not follow it).

Setup::

    from fastapi import Depends, FastAPI, Response
    from sessync import AsyncClient, SessionView
    from sessync.fastapi import Sessync, SessyncMiddleware, require_session

    sessync = Sessync(AsyncClient(NODES, "demo-app-key-change-me"), cookie_secure=False)
    app = FastAPI(lifespan=sessync.lifespan)     # closes the client (and the watcher) at exit
    app.add_middleware(SessyncMiddleware, sessync=sessync)

    @app.post("/login")
    async def login(request: Request, response: Response, form: ...):
        await sessync.login(request, response, form.username)   # sets the HttpOnly cookie

    @app.get("/me")
    async def me(session: SessionView = Depends(require_session)):
        return {"user": session.user_id}

``require_session`` answers 401 without a valid session, 403 for a blocked one (``block_new``)
and 503 when the cluster cannot answer; ``sessync.login`` raises :class:`sessync.LimitReached`
under ``on_limit = "deny"`` (show ``e.active_sessions``; end one; retry).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    List,
    MutableMapping,
    Optional,
    Sequence,
    Set,
    Tuple,
)

import anyio
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketState

from .aio import AsyncClient
from .errors import (
    BadRequest,
    EventsTrimmed,
    Forbidden,
    InvalidArgument,
    NotFound,
    SessyncError,
    Unauthorized,
    Unavailable,
)
from .events import LaggedEvent, SessionEvent, TrimmedEvent
from .models import (
    CreateResult,
    InvalidateResult,
    SessionState,
    SessionView,
    ValidateResult,
    VerifyResult,
)
from .web import CookieSettings, device_for, read_binding, sign_binding

__all__ = [
    "SessionEndWatcher",
    "Sessync",
    "SessyncMiddleware",
    "optional_session",
    "require_session",
]

log = logging.getLogger(__name__)

#: Where the middleware keeps a request's validate answer (in ``request.state``).
STATE_KEY = "sessync"
#: Where the middleware keeps an Unavailable error of this request's validate.
ERROR_KEY = "sessync_error"
#: The WebSocket close code sent when the session ends (4000-4999: the application's own).
SESSION_ENDED_CLOSE_CODE = 4401


class Sessync:
    """The async client and the settings of the integration, shared by the middleware, the
    dependencies and the login/logout helpers. Keep one per app (``app.state.sessync`` is set
    by the middleware and by ``lifespan``). ``secret_key`` signs the companion cookie that
    names a session whose validate answer does not (a blocked one): without it, "continue
    here" for a blocked login is not available."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        cookie_name: str = "sessync",
        cookie_secure: bool = True,
        cookie_samesite: str = "Lax",
        touch: bool = True,
        consistency: str = "linearizable",
        origin: Optional[str] = None,
        targets: Sequence[str] = (),
        secret_key: Optional[str] = None,
    ) -> None:
        self.client = client
        self.secret_key = secret_key
        self.cookie = CookieSettings(
            name=cookie_name, secure=cookie_secure, samesite=cookie_samesite
        )
        self.touch = touch
        self.consistency = consistency
        self.origin = origin
        self.targets = list(targets)
        self._watcher: Optional[SessionEndWatcher] = None

    # --- lifecycle ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        """A FastAPI/Starlette ``lifespan``: registers this helper on ``app.state`` and, at
        shutdown, stops the watcher and closes the clients (the watcher's too)."""
        app.state.sessync = self
        try:
            yield
        finally:
            if self._watcher is not None:
                await self._watcher.stop()
                if self._watcher.events_client is not self.client:
                    await self._watcher.events_client.close()
            await self.client.close()

    def watcher(self, **kwargs: Any) -> SessionEndWatcher:
        """The app's :class:`SessionEndWatcher` (made on first use; ``kwargs`` go to it)."""
        if self._watcher is None:
            self._watcher = SessionEndWatcher(self.client, **kwargs)
        return self._watcher

    # --- validation -----------------------------------------------------------------------

    def token_of(self, conn: HTTPConnection) -> Optional[str]:
        return conn.cookies.get(self.cookie.name) or None

    async def validate(self, conn: HTTPConnection) -> Optional[ValidateResult]:
        """The validate answer for this request's cookie, asked once per request (the
        middleware asks first; a dependency then reuses it). None without a cookie."""
        state: MutableMapping[str, Any] = conn.scope.setdefault("state", {})
        if isinstance(state.get(ERROR_KEY), Unavailable):
            raise state[ERROR_KEY]
        if STATE_KEY in state:
            cached: Optional[ValidateResult] = state[STATE_KEY]
            return cached
        token = self.token_of(conn)
        result: Optional[ValidateResult] = None
        if token is not None:
            try:
                result = await self.client.validate(
                    token, touch=self.touch, consistency=self.consistency
                )
            except (InvalidArgument, BadRequest):  # a garbled cookie is no session
                result = ValidateResult(valid=False, reason="unknown")
        state[STATE_KEY] = result
        return result

    async def require_session(self, request: Request) -> SessionView:
        """Dependency: the request's valid session, else 401 (403 if blocked, 503 if the
        cluster cannot answer)."""
        return await _require(self, request)

    async def optional_session(self, request: Request) -> Optional[SessionView]:
        """Dependency: the request's valid session, or None."""
        try:
            v = await self.validate(request)
        except Unavailable as e:
            raise HTTPException(503, "the session service is unavailable") from e
        return v.session if v is not None and v.valid else None

    # --- login and logout -----------------------------------------------------------------

    async def login(
        self,
        request: Request,
        response: Response,
        user_id: str,
        *,
        device_name: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> CreateResult:
        """Creates the user's session and sets the cookie on ``response``."""
        client_host = request.client.host if request.client else None
        created = await self.client.create_session(
            user_id,
            device=device_for(request.headers.get("user-agent"), client_host, device_name),
            origin=self.origin,
            idempotency_key=idempotency_key,
        )
        lifetime = int((created.session.expires_at - created.session.created_at).total_seconds())
        attributes = self.cookie.attributes(lifetime)
        response.set_cookie(self.cookie.name, created.token, **attributes)
        if self.secret_key:
            binding = sign_binding(
                self.secret_key, created.token, created.session.session_id, user_id
            )
            response.set_cookie(self.cookie.name + "_sid", binding, **attributes)
        request.scope.setdefault("state", {}).pop(STATE_KEY, None)
        return created

    async def identity(self, conn: HTTPConnection) -> Optional[Tuple[str, str]]:
        """(session_id, user_id) of the request's session, valid or blocked (a blocked one's
        from the signed companion cookie; see ``sessync.web.sign_binding``)."""
        v = await self.validate(conn)
        if v is not None and v.session is not None:
            return v.session.session_id, v.session.user_id
        token = self.token_of(conn)
        if token is None or not self.secret_key:
            return None
        return read_binding(self.secret_key, token, conn.cookies.get(self.cookie.name + "_sid"))

    async def logout(self, request: Request, response: Response) -> Optional[SessionView]:
        """Ends the request's session (``logout``) and clears the cookie."""
        ident = await self.identity(request)
        ended = None
        if ident is not None:
            with contextlib.suppress(NotFound):
                ended = await self.client.end_session(ident[0])
        self.clear_cookie(response)
        return ended

    async def logout_everywhere(
        self, request: Request, response: Response
    ) -> Optional[InvalidateResult]:
        """Ends every session of the request's user (on every site in ``targets``)."""
        session = await self.optional_session(request)
        if session is None:
            return None
        result = await self.client.invalidate(session.user_id, targets=self.targets)
        self.clear_cookie(response)
        return result

    async def end_other_sessions(self, request: Request) -> Optional[VerifyResult]:
        """Keeps the request's session (activating it if blocked: "continue here"), ends the
        user's others."""
        ident = await self.identity(request)
        if ident is None:
            return None
        session_id, user_id = ident
        result = await self.client.verify(user_id, session_id, targets=self.targets)
        request.scope.setdefault("state", {}).pop(STATE_KEY, None)
        return result

    def clear_cookie(self, response: Response) -> None:
        for name in (self.cookie.name, self.cookie.name + "_sid"):
            response.delete_cookie(
                name,
                path=self.cookie.path,
                domain=self.cookie.domain,
                secure=self.cookie.secure,
                httponly=True,
                samesite=self.cookie.samesite_literal,
            )


async def _require(sessync: Sessync, conn: HTTPConnection) -> SessionView:
    try:
        v = await sessync.validate(conn)
    except Unavailable as e:
        raise HTTPException(503, "the session service is unavailable; try again") from e
    if v is not None and v.valid and v.session is not None:
        return v.session
    if v is not None and v.blocked:
        raise HTTPException(403, "this login waits for confirmation (on_limit = block_new)")
    raise HTTPException(401, "not logged in")


def _sessync_of(conn: HTTPConnection) -> Sessync:
    found = getattr(conn.app.state, "sessync", None)
    if not isinstance(found, Sessync):
        raise RuntimeError("no Sessync on app.state: use Sessync.lifespan or SessyncMiddleware")
    return found


async def require_session(request: Request) -> SessionView:
    """Dependency using the app's ``Sessync`` (``app.state.sessync``): the request's valid
    session, else 401 (403 if blocked, 503 if the cluster cannot answer)."""
    return await _require(_sessync_of(request), request)


async def optional_session(request: Request) -> Optional[SessionView]:
    """Dependency using the app's ``Sessync``: the request's valid session, or None."""
    return await _sessync_of(request).optional_session(request)


class SessyncMiddleware:
    """Pure ASGI middleware: validates (and touches) the session of every HTTP request and
    WebSocket handshake once, keeps the answer in ``request.state.sessync`` for the
    dependencies, and clears the cookie of a session that has ended. It never rejects a
    request itself: ``require_session`` does, on the routes that need it. A request that
    finds the cluster unavailable goes on without an answer (the dependency answers 503)."""

    def __init__(self, app: ASGIApp, sessync: Sessync) -> None:
        self.app = app
        self.sessync = sessync

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        app_state = getattr(scope.get("app"), "state", None)
        if app_state is not None and getattr(app_state, "sessync", None) is None:
            app_state.sessync = self.sessync
        conn = HTTPConnection(scope)
        ended = False
        if self.sessync.token_of(conn) is not None:
            try:
                v = await self.sessync.validate(conn)
                ended = v is not None and not v.valid and not v.blocked
            except Unavailable as e:
                # Kept, so the dependency answers 503 at once instead of waiting again.
                scope.setdefault("state", {})[ERROR_KEY] = e
        if not ended or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookie = self.sessync.cookie

        async def send_clearing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                secure = "; Secure" if cookie.secure else ""
                for name in (cookie.name, cookie.name + "_sid"):
                    # A login in the same request sets a new cookie: leave that one alone.
                    if any(v.startswith(name + "=") for v in headers.getlist("set-cookie")):
                        continue
                    headers.append(
                        "set-cookie",
                        f'{name}=""; Max-Age=0; Path={cookie.path}; HttpOnly; '
                        f"SameSite={cookie.samesite}{secure}",
                    )
            await send(message)

        await self.app(scope, receive, send_clearing)


# --- WebSockets closed when their session ends -------------------------------------------


class SessionEndWatcher:
    """Follows session ends for the app's open connections: one events stream for the
    process (``GET /v1/events``), fanned out to the sessions registered with :meth:`watch`.

    When the stream cannot be followed (the key's role may not, or it keeps failing) the
    watcher polls ``GET /v1/sessions/{id}`` every ``poll_interval`` seconds instead; after a
    ``lagged`` or ``trimmed`` event it re-checks every watched session, so no end is missed.
    """

    def __init__(
        self,
        client: AsyncClient,
        *,
        events_client: Optional[AsyncClient] = None,
        poll_interval: float = 5.0,
        use_events: bool = True,
        read_timeout: float = 45.0,
    ) -> None:
        self.client = client
        self.events_client = events_client or client
        self.poll_interval = poll_interval
        self.use_events = use_events
        self.read_timeout = read_timeout
        self._watched: Dict[str, Set[anyio.Event]] = {}
        self._runner: Optional[asyncio.Task[None]] = None
        self.mode = "idle"  # "events" or "polling" once running

    async def start(self) -> None:
        """Starts the background task on the running asyncio loop (idempotent)."""
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stops the background task (the lifespan of ``Sessync`` calls it at shutdown)."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await runner

    def watching(self) -> List[str]:
        return sorted(self._watched)

    @contextlib.asynccontextmanager
    async def watch(self, session_id: str) -> AsyncIterator[anyio.Event]:
        """Registers ``session_id``; yields an event that is set once the session has ended
        (checked once at registration too, so an end just before it is not missed)."""
        await self.start()
        ended = anyio.Event()
        self._watched.setdefault(session_id, set()).add(ended)
        try:
            await self._check(session_id)
            yield ended
        finally:
            waiters = self._watched.get(session_id)
            if waiters is not None:
                waiters.discard(ended)
                if not waiters:
                    del self._watched[session_id]

    async def close_when_ended(
        self,
        websocket: WebSocket,
        session_id: str,
        handler: Callable[[], Awaitable[None]],
        *,
        code: int = SESSION_ENDED_CLOSE_CODE,
    ) -> bool:
        """Runs ``handler`` (the socket's receive/send loop) until it returns, or until the
        session ends: then cancels it and closes the socket with ``code``. True if the
        session's end closed it."""
        closed_by_end = False
        async with self.watch(session_id) as ended, anyio.create_task_group() as tg:

            async def run_handler() -> None:
                await handler()
                tg.cancel_scope.cancel()

            async def close_on_end() -> None:
                nonlocal closed_by_end
                await ended.wait()
                closed_by_end = True
                tg.cancel_scope.cancel()

            tg.start_soon(run_handler)
            tg.start_soon(close_on_end)
        if closed_by_end and websocket.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close(code=code, reason="session ended")
        return closed_by_end

    # --- the background task --------------------------------------------------------------

    def _ended(self, session_id: str) -> None:
        for waiter in self._watched.get(session_id, ()):
            waiter.set()

    async def _check(self, session_id: str) -> None:
        try:
            s = await self.client.get_session(session_id)
        except NotFound:
            self._ended(session_id)
            return
        except SessyncError as e:
            log.warning("sessync: cannot check session %s: %s", session_id, e)
            return
        if s.state is SessionState.ENDED:
            self._ended(session_id)

    async def _check_all(self) -> None:
        for session_id in list(self._watched):
            await self._check(session_id)

    async def _run(self) -> None:
        if self.use_events:
            await self._follow_events()
        self.mode = "polling"
        while True:
            await anyio.sleep(self.poll_interval)
            await self._check_all()

    async def _follow_events(self) -> None:
        """Follows the stream until it cannot; then returns (the caller polls)."""
        last_id: Optional[str] = None
        while True:
            stream = self.events_client.events(
                last_event_id=last_id,
                on_trimmed="yield",
                read_timeout=self.read_timeout,
                on_connect=self._check_all,  # ends between registration and the stream
            )
            self.mode = "events"
            try:
                async for event in stream:
                    if isinstance(event, SessionEvent):
                        if event.session.state is SessionState.ENDED:
                            self._ended(event.session.session_id)
                    elif isinstance(event, (LaggedEvent, TrimmedEvent)):
                        await self._check_all()
                last_id = stream.last_event_id
            except (Forbidden, Unauthorized) as e:
                log.info("sessync: events not available to this key (%s); polling instead", e)
                return
            except EventsTrimmed:
                await self._check_all()
                last_id = None
            except SessyncError as e:
                log.warning("sessync: events stream failed (%s); polling instead", e)
                return
            finally:
                await stream.aclose()
            # The stream ended for good after its reconnects: catch up, then follow again.
            await self._check_all()

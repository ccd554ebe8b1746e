"""The FastAPI app of the tests (like ``examples/fastapi_app``): login, a route behind the
``require_session`` dependency, logout, log out everywhere, end other sessions, the limit and
blocked flows, and a WebSocket closed when its session ends."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from fastapi import Depends, FastAPI, Request, Response, WebSocket
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.websockets import WebSocketDisconnect

from sessync import AsyncClient, LimitReached, SessionView
from sessync.fastapi import Sessync, SessyncMiddleware, require_session


class Login(BaseModel):
    username: str
    device: Optional[str] = None
    session_id: Optional[str] = None  # for /limit/end: the session to end first


def session_json(s: SessionView) -> Dict[str, Any]:
    return {"session_id": s.session_id, "state": s.state.value, "device": s.device.name}


def create_app(
    endpoints: List[str],
    api_key: str,
    *,
    events_key: Optional[str] = None,
    poll_interval: float = 5.0,
    use_events: bool = True,
) -> FastAPI:
    sessync = Sessync(
        AsyncClient(endpoints, api_key, timeout=15), cookie_secure=False, secret_key="test-only"
    )
    watcher = sessync.watcher(
        events_client=AsyncClient(endpoints, events_key) if events_key else None,
        poll_interval=poll_interval,
        use_events=use_events,
    )
    app = FastAPI(lifespan=sessync.lifespan)
    app.add_middleware(SessyncMiddleware, sessync=sessync)
    app.state.watcher = watcher

    @app.post("/login", status_code=201)
    async def login(body: Login, request: Request, response: Response) -> Any:
        try:
            created = await sessync.login(request, response, body.username, device_name=body.device)
        except LimitReached as e:
            return JSONResponse(
                {
                    "error": "limit_reached",
                    "sessions": [session_json(s) for s in e.active_sessions],
                },
                status_code=409,
            )
        return session_json(created.session)

    @app.post("/limit/end", status_code=201)
    async def limit_end(body: Login, request: Request, response: Response) -> Any:
        target = await sessync.client.get_session(body.session_id or "")
        if target.user_id != body.username:  # the app vouches for the user
            return JSONResponse({"error": "not yours"}, status_code=404)
        await sessync.client.end_session(target.session_id)
        created = await sessync.login(request, response, body.username)
        return session_json(created.session)

    @app.get("/me")
    async def me(session: SessionView = Depends(require_session)) -> Dict[str, Any]:
        return {"user": session.user_id, "session_id": session.session_id}

    @app.post("/continue")
    async def continue_here(request: Request) -> Dict[str, Any]:
        result = await sessync.end_other_sessions(request)
        return {"ended": result.ended if result else None}

    @app.post("/logout")
    async def logout(request: Request, response: Response) -> Dict[str, Any]:
        await sessync.logout(request, response)
        return {"ok": True}

    @app.post("/logout-everywhere")
    async def logout_everywhere(
        request: Request, response: Response, session: SessionView = Depends(require_session)
    ) -> Dict[str, Any]:
        result = await sessync.logout_everywhere(request, response)
        return {"ended": result.ended if result else 0}

    @app.post("/end-others")
    async def end_others(
        request: Request, session: SessionView = Depends(require_session)
    ) -> Dict[str, Any]:
        result = await sessync.end_other_sessions(request)
        return {"ended": result.ended if result else 0}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        v = await sessync.validate(websocket)
        if v is None or not v.valid or v.session is None:
            await websocket.close(code=4401)
            return
        await websocket.accept()

        async def echo() -> None:
            try:
                while True:
                    text = await websocket.receive_text()
                    await websocket.send_text("echo:" + text)
            except WebSocketDisconnect:
                return

        await watcher.close_when_ended(websocket, v.session.session_id, echo)

    return app

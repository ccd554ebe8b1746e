"""Example FastAPI app using sessync: a JSON API with a cookie login, a route behind the
``require_session`` dependency, "where am I logged in", log out everywhere, and a WebSocket
that the server closes (code 4401) as soon as its session ends anywhere.

Run it against scripts/cluster.sh's cluster (see README.md next to this file).
Demo users: alice/alice, bob/bob.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List

from fastapi import Depends, FastAPI, HTTPException, Request, Response, WebSocket
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.websockets import WebSocketDisconnect

from sessync import AsyncClient, LimitReached, SessionView
from sessync.fastapi import Sessync, SessyncMiddleware, require_session

USERS = {"alice": "alice", "bob": "bob"}  # demo only
NODES = os.environ.get(
    "SESSYNC_ENDPOINTS", "http://127.0.0.1:7101,http://127.0.0.1:7102,http://127.0.0.1:7103"
)
APP_KEY = os.environ.get("SESSYNC_API_KEY", "demo-app-key-change-me")

sessync = Sessync(
    AsyncClient(NODES, APP_KEY),
    cookie_secure=False,  # local http only; keep the default (True) in production
    origin="fastapi-example",
    secret_key=os.environ.get("SESSYNC_COOKIE_SECRET", "demo-only-change-me"),
)
# One /v1/events stream for the process closes every socket whose session ends; if the stream
# cannot be followed, the watcher polls each open socket's session every 2 s instead.
watcher = sessync.watcher(poll_interval=2.0)
app = FastAPI(lifespan=sessync.lifespan)
app.add_middleware(SessyncMiddleware, sessync=sessync)


class Credentials(BaseModel):
    username: str
    password: str


def view(s: SessionView) -> Dict[str, Any]:
    return {
        "session_id": s.session_id,
        "state": s.state.value,
        "device": s.device.name,
        "ip": s.device.ip,
        "last_seen_at": s.last_seen_at.isoformat(),
    }


@app.post("/login")
async def login(body: Credentials, request: Request, response: Response) -> Any:
    if USERS.get(body.username) != body.password:
        raise HTTPException(401, "wrong user or password")
    try:
        created = await sessync.login(request, response, body.username)
    except LimitReached as e:
        # Offer the user to end one of these (DELETE /sessions/{id} needs a session, so a
        # real app keeps the pending user server-side, as examples/flask_app does).
        return JSONResponse(
            {"error": "limit_reached", "active_sessions": [view(s) for s in e.active_sessions]},
            status_code=409,
        )
    return view(created.session)


@app.get("/me")
async def me(session: SessionView = Depends(require_session)) -> Dict[str, Any]:
    return {"user": session.user_id, **view(session)}


@app.get("/sessions")
async def sessions(session: SessionView = Depends(require_session)) -> List[Dict[str, Any]]:
    return [view(s) for s in await sessync.client.list_sessions(session.user_id, state="live")]


@app.delete("/sessions/{session_id}")
async def end(session_id: str, session: SessionView = Depends(require_session)) -> Any:
    target = await sessync.client.get_session(session_id)
    if target.user_id != session.user_id:
        raise HTTPException(404, "no such session")
    return view(await sessync.client.end_session(session_id))


@app.post("/sessions/end-others")
async def end_others(request: Request, _: SessionView = Depends(require_session)) -> Any:
    result = await sessync.end_other_sessions(request)
    return {"ended": result.ended if result else 0}


@app.post("/logout")
async def logout(request: Request, response: Response) -> Dict[str, bool]:
    await sessync.logout(request, response)
    return {"ok": True}


@app.post("/logout-everywhere")
async def logout_everywhere(request: Request, response: Response) -> Dict[str, int]:
    result = await sessync.logout_everywhere(request, response)
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
                await websocket.send_text("echo: " + await websocket.receive_text())
        except WebSocketDisconnect:
            return

    await watcher.close_when_ended(websocket, v.session.session_id, echo)

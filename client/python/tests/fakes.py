"""Test helpers without a server: a session JSON factory and a scripted fake cluster for
``httpx.MockTransport`` that records every request (which node, which headers, which body)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import httpx

NODES = ["http://n1:7101", "http://n2:7102", "http://n3:7103"]


def session_json(
    session_id: str = "s_0123456789abcdef0123456789abcdef",
    user_id: str = "alice",
    state: str = "active",
    end_reason: Optional[str] = None,
    **extra: Any,
) -> Dict[str, Any]:
    body: Dict[str, Any] = {
        "session_id": session_id,
        "user_id": user_id,
        "state": state,
        "end_reason": end_reason,
        "device": {"name": "laptop", "user_agent": "pytest"},
        "origin": "web",
        "created_at": "2026-01-01T00:00:00.000Z",
        "last_seen_at": "2026-01-01T00:00:01.500Z",
        "idle_expires_at": "2026-01-01T00:15:03.500Z",
        "expires_at": "2026-01-01T08:00:00.000Z",
        "ended_at": None if state != "ended" else "2026-01-01T00:05:00.000Z",
    }
    body.update(extra)
    return body


def error_body(code: str, message: str = "m", **extra: Any) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, **extra}}).encode()


@dataclass
class Seen:
    """One request as the fake cluster saw it."""

    node: str
    method: str
    path: str
    headers: Dict[str, str]
    body: Any


Handler = Callable[[str, httpx.Request], httpx.Response]


@dataclass
class FakeCluster:
    """Answers each request with ``handler(node, request)``; records them all. ``down`` nodes
    refuse connections."""

    handler: Handler
    down: set[str] = field(default_factory=set)
    seen: List[Seen] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        node = f"{request.url.scheme}://{request.url.host}:{request.url.port}"
        body = json.loads(request.content) if request.content else None
        self.seen.append(
            Seen(node, request.method, request.url.raw_path.decode(), dict(request.headers), body)
        )
        if node in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return self.handler(node, request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def nodes_seen(self) -> List[str]:
        return [s.node for s in self.seen]


def ok(body: Any, status: int = 200, leader: Optional[str] = None) -> httpx.Response:
    headers = {"x-sessync-leader": leader} if leader else {}
    return httpx.Response(status, json=body, headers=headers)

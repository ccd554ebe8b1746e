"""Where each attempt of a call goes, shared by the sync and async clients (pure, no I/O).

The rules are the Rust client's (``client/src/transport.rs``): nodes forward writes to their
leader themselves, so the client only has to find a node that answers. Reads (GET, validate)
take turns over the endpoints, since any node answers them linearizably; writes start at the
leader once a node has named it (every answer carries ``x-sessync-leader``), else at the
current endpoint, whose node forwards them. On a refused connection, a timeout or a 503 a call
moves to the next endpoint, for at most ``rounds`` passes over the list, with a jittered
exponential backoff between attempts, and always within the per-call deadline. The endpoint that
answered becomes the current one.

A request that may have reached a node (the connection broke after it was sent, or the
per-attempt timeout cut it short) is sent again only when repeating it is harmless: GET, DELETE,
validate, touch and every create (each carries an idempotency key).
"""

from __future__ import annotations

import random
import threading
from typing import List, Optional, Sequence
from urllib.parse import quote, urlsplit

from .errors import InvalidArgument

#: The header in which every node names the leader's advertised URL.
LEADER_HEADER = "x-sessync-leader"
#: Backoff before the second attempt, in seconds; it doubles up to MAX_BACKOFF.
BASE_BACKOFF = 0.025
MAX_BACKOFF = 0.8
DEFAULT_TIMEOUT = 10.0
DEFAULT_ROUNDS = 5

VALIDATE_PATH = "/v1/sessions/validate"


def normalize_endpoint(raw: str) -> str:
    """Checks that an endpoint is an http(s) base URL and drops trailing slashes."""
    trimmed = raw.strip().rstrip("/")
    parts = urlsplit(trimmed)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(f"endpoint `{raw}` is not an http:// or https:// URL")
    return trimmed


def normalize_endpoints(endpoints: Sequence[str] | str) -> List[str]:
    """A list of endpoints from a list or a comma-separated string; at least one."""
    items = endpoints.split(",") if isinstance(endpoints, str) else list(endpoints)
    items = [e for e in items if e.strip()]
    if not items:
        raise InvalidArgument("at least one endpoint is needed")
    return [normalize_endpoint(e) for e in items]


def encode_component(value: str) -> str:
    """Percent-encodes one path segment or query value (all but RFC 3986 unreserved)."""
    return quote(value, safe="-._~")


def user_segment(user_id: str) -> str:
    """The path segment for a user id; ``.`` and ``..`` cannot be one."""
    if user_id in (".", ".."):
        raise InvalidArgument(f"user id `{user_id}` cannot be sent as a path segment")
    if not user_id:
        raise InvalidArgument("user id must not be empty")
    return encode_component(user_id)


def is_read(method: str, path: str) -> bool:
    """Whether a request only reads, so any node may answer it."""
    return method == "GET" or (method == "POST" and path == VALIDATE_PATH)


def backoff_ceiling(attempt: int) -> float:
    """Upper bound of the pause after failed attempt ``attempt`` (0-based), in seconds."""
    return min(BASE_BACKOFF * float(2 ** min(attempt, 16)), MAX_BACKOFF)


def jittered_backoff(attempt: int) -> float:
    """A pause uniform in [ceiling/2, ceiling]."""
    ceiling = backoff_ceiling(attempt)
    return random.uniform(ceiling / 2, ceiling)


class Router:
    """The endpoints and what the client has learnt about them: the current one, the leader
    the nodes named, and the round-robin counter of reads. Thread-safe; shared by every call
    of a client."""

    def __init__(self, endpoints: Sequence[str] | str, rounds: int = DEFAULT_ROUNDS) -> None:
        self.endpoints = normalize_endpoints(endpoints)
        self.rounds = max(1, rounds)
        self._current = 0
        self._leader: Optional[int] = None
        self._reads = 0
        self._lock = threading.Lock()

    @property
    def current(self) -> int:
        return self._current

    @property
    def leader(self) -> Optional[str]:
        """The leader's URL as the nodes last named it, if it is one of the endpoints."""
        i = self._leader
        return None if i is None else self.endpoints[i]

    def attempts(self) -> int:
        return len(self.endpoints) * self.rounds

    def first(self, method: str, path: str) -> int:
        """Where a call starts: reads take turns; writes go to the leader if known, else to
        the current endpoint."""
        with self._lock:
            if is_read(method, path):
                i = self._reads % len(self.endpoints)
                self._reads += 1
                return i
            if self._leader is not None:
                return self._leader
            return self._current

    def index_for_attempt(self, start: int, attempt: int) -> int:
        return (start + attempt) % len(self.endpoints)

    def answered(self, index: int, leader_url: Optional[str]) -> None:
        """A node answered (anything but a 503): it becomes current; learn the leader it named."""
        with self._lock:
            self._current = index
            if leader_url:
                url = leader_url.strip().rstrip("/")
                if url in self.endpoints:
                    self._leader = self.endpoints.index(url)

    def failed(self, index: int) -> None:
        """A node did not answer (or answered 503): a leader that does not answer is no longer
        worth going to first; the next call starts past it."""
        with self._lock:
            if self._leader == index:
                self._leader = None
            self._current = (index + 1) % len(self.endpoints)

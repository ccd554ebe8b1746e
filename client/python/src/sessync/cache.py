"""An optional, bounded cache of validate answers (off unless the app creates one).

Validating on every request costs one round trip to the cluster. An app that can live with an
answer up to ``max_age`` seconds old may keep them here: a cached answer comes back with
``ValidateResult.cached_age`` set to its age, so the app can tell. The cache is bounded by age
and by entry count (least recently used entries go first), keyed by the SHA-256 of the token
(the token itself is never stored), and forgets a session as soon as this client ends,
verifies or invalidates it. Ends made elsewhere (another app, another site, idleness) are seen
only when an entry expires: keep ``max_age`` short (seconds, shorter than the policy's
``touch_interval`` if touches matter, since a cache hit sends no touch).
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections import OrderedDict
from typing import Callable, Dict, Optional, Set, Tuple

from .errors import InvalidArgument
from .models import ValidateResult

__all__ = ["ValidateCache"]


def token_key(token: str) -> str:
    """What the cache keys a token by: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ValidateCache:
    """A thread-safe LRU of validate answers, at most ``max_entries`` of them, each served for
    at most ``max_age`` seconds after the cluster gave it."""

    def __init__(
        self,
        max_age: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_age <= 0:
            raise InvalidArgument("max_age must be more than 0 seconds")
        if max_entries < 1:
            raise InvalidArgument("max_entries must be at least 1")
        self.max_age = float(max_age)
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, Tuple[ValidateResult, float]] = OrderedDict()
        self._by_session: Dict[str, Set[str]] = {}
        self._by_user: Dict[str, Set[str]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return (
            f"ValidateCache(max_age={self.max_age}, max_entries={self.max_entries}, "
            f"size={len(self)})"
        )

    def get(self, token: str) -> Optional[ValidateResult]:
        """The cached answer for ``token`` with ``cached_age`` set, or None."""
        key = token_key(token)
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            result, stored = entry
            age = now - stored
            if age > self.max_age or age < 0:
                self._drop(key)
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
        return dataclasses.replace(result, cached_age=age)

    def put(self, token: str, result: ValidateResult) -> None:
        key = token_key(token)
        with self._lock:
            self._drop(key)
            self._entries[key] = (dataclasses.replace(result, cached_age=None), self._clock())
            if result.session is not None:
                self._by_session.setdefault(result.session.session_id, set()).add(key)
                self._by_user.setdefault(result.session.user_id, set()).add(key)
            while len(self._entries) > self.max_entries:
                self._drop(next(iter(self._entries)))

    def forget_token(self, token: str) -> None:
        with self._lock:
            self._drop(token_key(token))

    def forget_session(self, session_id: str) -> None:
        with self._lock:
            for key in list(self._by_session.get(session_id, ())):
                self._drop(key)

    def forget_user(self, user_id: str) -> None:
        with self._lock:
            for key in list(self._by_user.get(user_id, ())):
                self._drop(key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._by_session.clear()
            self._by_user.clear()

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is None or entry[0].session is None:
            return
        session = entry[0].session
        for index, name in (
            (self._by_session, session.session_id),
            (self._by_user, session.user_id),
        ):
            keys = index.get(name)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[name]

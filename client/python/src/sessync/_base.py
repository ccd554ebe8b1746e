"""What the sync and async clients share: their settings (endpoints, key, deadlines, TLS,
cache), building requests, sorting out what one attempt came to, and reading answers.
The retry loops themselves are in ``client.py`` and ``aio.py``; the routing rules in
``_routing.py``.
"""

from __future__ import annotations

import json
import os
import ssl
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, TypeVar, Union

import httpx

from ._calls import Call
from ._routing import DEFAULT_ROUNDS, DEFAULT_TIMEOUT, LEADER_HEADER, Router
from ._version import __version__
from .cache import ValidateCache
from .errors import DecodeError, InvalidArgument, SessyncError, TransportError, error_from_response
from .models import ValidateResult

T = TypeVar("T")

PathLike = Union[str, "os.PathLike[str]"]

#: What an attempt came to when there was no answer.
NOT_SENT = "not_sent"  # never reached the node: trying elsewhere is always safe
UNCERTAIN = "uncertain"  # may have reached the node: repeat only if harmless
TIMED_OUT = "timed_out"  # the per-call deadline passed


@dataclass(frozen=True)
class Answer:
    """One answer: status, body (not decoded), and the leader the node named."""

    status: int
    body: bytes
    leader: Optional[str]
    endpoint: str


@dataclass(frozen=True)
class Failure:
    """One attempt without an answer."""

    kind: str
    message: str


def classify(error: httpx.HTTPError, cut_short: bool) -> str:
    """Sorts an httpx failure: refused connections never sent anything; a timeout is the
    deadline's unless the per-attempt timeout cut it short; anything else may have been sent."""
    if isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout)):
        return NOT_SENT
    if isinstance(error, httpx.PoolTimeout):
        return NOT_SENT
    if isinstance(error, httpx.TimeoutException):
        return UNCERTAIN if cut_short else TIMED_OUT
    return UNCERTAIN


def worth_retrying(outcome: Union[Answer, Failure], repeatable: bool) -> bool:
    """Whether a call may go on to the next attempt after ``outcome`` (a 503 or no answer):
    always if the request never reached a node; if it may have, only when repeating it is
    harmless; never once the deadline has passed."""
    if isinstance(outcome, Answer):
        return True
    return outcome.kind == NOT_SENT or (outcome.kind == UNCERTAIN and repeatable)


def describe(error: BaseException) -> str:
    """An httpx error with its causes (which is where "connection refused" is)."""
    parts = [str(error) or type(error).__name__]
    cause = error.__cause__ or error.__context__
    while cause is not None and len(parts) < 5:
        text = str(cause) or type(cause).__name__
        if text not in parts:
            parts.append(text)
        cause = cause.__cause__ or cause.__context__
    return ": ".join(parts)


def ssl_context(
    ca_file: Optional[PathLike] = None,
    client_cert: Optional[PathLike] = None,
    client_key: Optional[PathLike] = None,
) -> Optional[ssl.SSLContext]:
    """A TLS context trusting ``ca_file`` (PEM) besides the system roots and showing
    ``client_cert`` (PEM chain, with ``client_key`` or a key in the same file) to nodes that
    require client certificates. None when nothing is set (httpx's defaults)."""
    if ca_file is None and client_cert is None:
        if client_key is not None:
            raise InvalidArgument("client_key needs client_cert")
        return None
    ctx = ssl.create_default_context()
    try:
        if ca_file is not None:
            ctx.load_verify_locations(cafile=os.fspath(ca_file))
        if client_cert is not None:
            key = None if client_key is None else os.fspath(client_key)
            ctx.load_cert_chain(os.fspath(client_cert), key)
    except (OSError, ssl.SSLError) as e:
        raise InvalidArgument(f"TLS files do not read: {e}") from e
    return ctx


class ClientBase:
    """Settings and answer handling of :class:`sessync.Client` and
    :class:`sessync.AsyncClient`. The API key is kept out of ``repr``."""

    def __init__(
        self,
        endpoints: Union[Sequence[str], str],
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        attempt_timeout: Optional[float] = None,
        rounds: int = DEFAULT_ROUNDS,
        ca_file: Optional[PathLike] = None,
        client_cert: Optional[PathLike] = None,
        client_key: Optional[PathLike] = None,
        cache: Optional[ValidateCache] = None,
    ) -> None:
        if timeout <= 0:
            raise InvalidArgument("timeout must be more than 0 seconds")
        if attempt_timeout is not None and attempt_timeout <= 0:
            raise InvalidArgument("attempt_timeout must be more than 0 seconds")
        self.router = Router(endpoints, rounds)
        self._api_key = api_key
        self.timeout = float(timeout)
        self.attempt_timeout = attempt_timeout
        self.cache = cache
        self._ssl = ssl_context(ca_file, client_cert, client_key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoints={self.router.endpoints!r})"

    @property
    def endpoints(self) -> list[str]:
        return list(self.router.endpoints)

    @property
    def current_endpoint(self) -> str:
        return self.router.endpoints[self.router.current]

    @property
    def leader(self) -> Optional[str]:
        """The leader's URL as the nodes last named it (None until one did)."""
        return self.router.leader

    def _httpx_options(self) -> Dict[str, Any]:
        """Options for the httpx client: TLS, no redirects, no proxies from the environment
        (a sessync node is never behind a forward proxy of the app's)."""
        opts: Dict[str, Any] = {"follow_redirects": False, "trust_env": False}
        if self._ssl is not None:
            opts["verify"] = self._ssl
        return opts

    def _headers(self, has_body: bool, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        headers = {"accept": "application/json", "user-agent": f"sessync-python/{__version__}"}
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        if has_body:
            headers["content-type"] = "application/json"
        if extra:
            headers.update({k.lower(): v for k, v in extra.items()})
        return headers

    @staticmethod
    def _encode(call: Call[Any]) -> Optional[bytes]:
        if call.body is None:
            return None
        return json.dumps(call.body, separators=(",", ":")).encode("utf-8")

    @staticmethod
    def _answer_of(response: httpx.Response, endpoint: str) -> Answer:
        return Answer(
            status=response.status_code,
            body=response.content,
            leader=response.headers.get(LEADER_HEADER),
            endpoint=endpoint,
        )

    @staticmethod
    def _read(call: Call[T], answer: Answer) -> T:
        """The 2xx answer read by the call, or the error the status and body map to."""
        if not 200 <= answer.status < 300:
            raise error_from_response(answer.status, answer.body)
        try:
            decoded = json.loads(answer.body) if answer.body else None
        except ValueError as e:
            # The body is not quoted: a success answer may hold a token.
            raise DecodeError(
                f"{call.path}: the answer is not JSON ({e}); {len(answer.body)} bytes"
            ) from e
        try:
            return call.parse(answer.status, decoded)
        except SessyncError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise DecodeError(f"{call.path}: unexpected answer: {e}") from e

    def _give_up(self, call: Call[Any], last: Union[Answer, Failure, None]) -> SessyncError:
        """The error for a call whose every attempt failed."""
        if isinstance(last, Answer):
            return error_from_response(last.status, last.body)
        if isinstance(last, Failure):
            return TransportError(last.message)
        return TransportError(
            f"{call.method} {call.path}: no attempt fitted in the {self.timeout}s deadline"
        )

    # --- the validate cache ---------------------------------------------------------------

    def _cached(self, token: str, use_cache: bool) -> Optional[ValidateResult]:
        if self.cache is None or not use_cache:
            return None
        return self.cache.get(token)

    def _remember(self, token: str, result: ValidateResult) -> None:
        if self.cache is not None:
            self.cache.put(token, result)

    def _forget_session(self, session_id: str) -> None:
        if self.cache is not None:
            self.cache.forget_session(session_id)

    def _forget_user(self, user_id: str) -> None:
        if self.cache is not None:
            self.cache.forget_user(user_id)

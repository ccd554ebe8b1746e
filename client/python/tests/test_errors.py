"""The mapping of error answers onto exceptions (pure; mirrors the Rust client's tests)."""

from __future__ import annotations

import json

import pytest

from sessync import errors
from sessync.models import SessionState

from .fakes import error_body, session_json


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "bad_request", errors.BadRequest),
        (401, "unauthorized", errors.Unauthorized),
        (403, "forbidden", errors.Forbidden),
        (404, "not_found", errors.NotFound),
        (408, "request_timeout", errors.RequestTimeout),
        (409, "conflict", errors.Conflict),
        (409, "already_initialized", errors.AlreadyInitialized),
        (409, "limit_reached", errors.LimitReached),
        (413, "payload_too_large", errors.PayloadTooLarge),
        (429, "outbox_full", errors.OutboxFull),
        (500, "internal", errors.InternalError),
        (503, "unavailable", errors.Unavailable),
        (503, "clock_skew", errors.ClockSkew),
    ],
)
def test_each_code_has_its_class(status: int, code: str, cls: type[errors.SessyncError]) -> None:
    e = errors.error_from_response(status, error_body(code, "why"))
    assert type(e) is cls
    assert (e.code, e.status, e.message) == (code, status, "why")
    assert isinstance(e, errors.SessyncError)


def test_unavailable_family() -> None:
    assert errors.error_from_response(503, error_body("clock_skew")).is_unavailable
    assert errors.TransportError("refused").is_unavailable
    assert errors.TransportError("refused").status is None
    assert errors.TransportError("refused").code is None
    assert not errors.error_from_response(404, error_body("not_found")).is_unavailable
    # A limit is not a conflict: code catching Conflict must not swallow a refused login.
    assert not isinstance(
        errors.error_from_response(409, error_body("limit_reached")), errors.Conflict
    )


def test_bad_request_keeps_field() -> None:
    e = errors.error_from_response(
        400, error_body("bad_request", "field `user_id`", field="user_id")
    )
    assert isinstance(e, errors.BadRequest)
    assert e.field == "user_id"
    assert str(e) == "HTTP 400 bad_request: field `user_id`"


def test_limit_reached_carries_sessions() -> None:
    body = error_body("limit_reached", "limit 1", active_sessions=[session_json(), {"odd": 1}])
    e = errors.error_from_response(409, body)
    assert isinstance(e, errors.LimitReached)
    assert len(e.active_sessions) == 1  # the odd entry is skipped, the limit stays
    assert e.active_sessions[0].state is SessionState.ACTIVE
    bare = errors.error_from_response(409, error_body("limit_reached"))
    assert isinstance(bare, errors.LimitReached) and bare.active_sessions == []


def test_odd_bodies() -> None:
    unknown = errors.error_from_response(405, error_body("method_not_allowed", "use POST"))
    assert type(unknown) is errors.ApiError
    assert unknown.message == "method_not_allowed: use POST"
    assert unknown.code == "method_not_allowed"
    plain = errors.error_from_response(502, b"Bad Gateway")
    assert type(plain) is errors.ApiError and plain.message == "Bad Gateway"
    empty = errors.error_from_response(404, b"")
    assert type(empty) is errors.NotFound
    assert empty.message == "HTTP status 404 with an empty body"
    long = errors.error_from_response(500, b"x" * 1000)
    assert len(long.message) <= errors.MAX_QUOTED_BODY + 1
    # A 409 without a body is a plain conflict; a 503 without one is unavailable.
    assert type(errors.error_from_response(409, b"")) is errors.Conflict
    assert type(errors.error_from_response(503, b"")) is errors.Unavailable
    # A known code with a status that does not go with it: the status decides.
    odd = errors.error_from_response(404, error_body("unavailable"))
    assert type(odd) is errors.NotFound
    not_json_error = errors.error_from_response(400, json.dumps({"error": "flat"}).encode())
    assert type(not_json_error) is errors.BadRequest


def test_invalid_argument_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        raise errors.InvalidArgument("no endpoints")

"""The sync and async clients against the real 3-node cluster: every app endpoint, leader
discovery, error mapping, idempotent creates, failover when a node dies, and the events
stream."""

from __future__ import annotations

import time
from typing import Any, Callable, Dict

import pytest

from sessync import (
    AsyncClient,
    Client,
    Device,
    EndReason,
    EventStream,
    SessionEvent,
    SessionState,
    TrimmedEvent,
    errors,
)

from .cluster import LocalCluster


def test_session_lifecycle(client: Client, user: str) -> None:
    created = client.create_session(user, device=Device(name="laptop", ip="10.0.0.1"), origin="web")
    assert created.session.user_id == user and created.session.state is SessionState.ACTIVE
    assert len(created.token) == 43 and created.token not in repr(created)
    assert not created.replayed

    v = client.validate(created.token)
    assert v.valid and v.session is not None and v.session.session_id == created.session.session_id
    assert v.seconds_until_idle_end is not None and v.seconds_until_idle_end > 800
    assert v.seconds_until_session_end is not None and v.seconds_until_session_end > 28000
    local = client.validate(created.token, touch=False, consistency="local")
    assert local.valid

    t = client.touch(created.session.session_id)
    assert t.session.session_id == created.session.session_id
    assert client.get_session(created.session.session_id).device.name == "laptop"

    second = client.create_session(user, device={"name": "phone"})
    listed = client.list_sessions(user)
    assert [s.session_id for s in listed] == [
        second.session.session_id,
        created.session.session_id,
    ]  # newest first

    verified = client.verify(user, second.session.session_id, targets=["nowhere"])
    assert verified.verified == second.session.session_id and verified.ended == 1
    assert verified.fanout == {"nowhere": "unknown_site"}
    gone = client.validate(created.token)
    assert not gone.valid and gone.reason == "superseded"

    ended = client.end_session(second.session.session_id)
    assert ended.state is SessionState.ENDED and ended.end_reason is EndReason.LOGOUT
    assert client.end_session(second.session.session_id).end_reason is EndReason.LOGOUT
    assert client.list_sessions(user) == []
    assert len(client.list_sessions(user, include_ended=True)) == 2

    third = client.create_session(user)
    fourth = client.create_session(user)
    assert client.invalidate(user, third.session.session_id).ended == 1
    assert client.invalidate(user).ended == 1
    assert not client.validate(fourth.token).valid


def test_writes_go_to_the_leader(cluster: LocalCluster, client: Client, user: str) -> None:
    client.create_session(user)
    assert client.leader is not None
    assert client.leader == cluster.leader_url()


def test_errors_are_typed(cluster: LocalCluster, client: Client, user: str) -> None:
    with pytest.raises(errors.BadRequest) as bad:
        client.create_session(user, device={"name": "x" * 600})
    assert bad.value.field == "device.name" and bad.value.status == 400
    with pytest.raises(errors.NotFound):
        client.get_session("s_0123456789abcdef0123456789abcdef")
    with pytest.raises(errors.Unauthorized), Client(cluster.urls, "wrong-key") as wrong:
        wrong.get_session("s_0123456789abcdef0123456789abcdef")
    with pytest.raises(errors.Forbidden):
        client.set_policy(idle_timeout="30m")
    created = client.create_session(user)
    client.end_session(created.session.session_id)
    with pytest.raises(errors.Conflict):
        client.touch(created.session.session_id)
    with pytest.raises(errors.PayloadTooLarge):
        client.request("POST", "/v1/sessions", {"user_id": user, "origin": "x" * 20000})
    assert not client.validate("not-a-real-token").valid


def test_limit_reached_lists_the_active_sessions(
    client: Client, user: str, policy: Callable[..., Dict[str, Any]]
) -> None:
    policy(on_limit="deny", max_concurrent_sessions=1)
    first = client.create_session(user, device={"name": "first"})
    with pytest.raises(errors.LimitReached) as info:
        client.create_session(user)
    assert [s.session_id for s in info.value.active_sessions] == [first.session.session_id]
    assert info.value.active_sessions[0].device.name == "first"


def test_idempotent_create_returns_the_same_session(client: Client, user: str) -> None:
    a = client.create_session(user, idempotency_key="login-attempt-1")
    b = client.create_session(user, idempotency_key="login-attempt-1")
    assert b.replayed and b.session.session_id == a.session.session_id
    # A replay hands out a fresh token; the first one keeps working.
    assert b.token != a.token
    assert client.validate(b.token).valid and client.validate(a.token).valid
    with Client(client.endpoints, "") as anonymous:
        with pytest.raises(errors.Unauthorized):
            anonymous.create_session(user, idempotency_key="login-attempt-1")


def test_other_app_key_reusing_an_idempotency_key_conflicts(
    cluster: LocalCluster, client: Client, user: str
) -> None:
    client.create_session(user, idempotency_key="shared-key")
    with Client(cluster.urls, cluster.other_app_key) as other, pytest.raises(errors.Conflict):
        other.create_session(user, idempotency_key="shared-key")


def test_failover_when_the_leader_dies(live_cluster: LocalCluster, user: str) -> None:
    cluster = live_cluster
    with Client(cluster.urls, cluster.app_key, timeout=15) as c:
        created = c.create_session(user)
        leader = c.leader
        assert leader is not None
        cluster.kill(cluster.node_of(leader))
        # Reads and writes go on: the dead node refuses connections, the others elect.
        assert c.validate(created.token).valid
        second = c.create_session(user)
        assert c.leader is not None and c.leader != leader
        assert c.get_session(second.session.session_id).state is SessionState.ACTIVE


def test_no_quorum_is_unavailable_within_the_deadline(live_cluster: LocalCluster) -> None:
    cluster = live_cluster
    cluster.kill(2)
    cluster.kill(3)
    start = time.monotonic()
    with Client(cluster.urls, cluster.app_key, timeout=3) as c, pytest.raises(errors.Unavailable):
        c.create_session("nobody")
    assert time.monotonic() - start < 6


def next_session_event(stream: EventStream) -> SessionEvent:
    for event in stream:
        if isinstance(event, SessionEvent):
            return event
    raise AssertionError("the stream ended")


def test_events_stream_sessions(cluster: LocalCluster, client: Client, user: str) -> None:
    """An app key follows one user's changes, in order, from the moment it is connected."""
    with client.events(user_id=user, read_timeout=20).connect() as stream:
        created = client.create_session(user)
        client.create_session("someone-else-" + user)  # filtered out by user_id
        client.end_session(created.session.session_id)
        got = [next_session_event(stream), next_session_event(stream)]
    assert [e.session.state for e in got] == [SessionState.ACTIVE, SessionState.ENDED]
    assert all(e.session.session_id == created.session.session_id for e in got)
    assert got[1].index > got[0].index and got[0].id and got[1].id
    assert stream.last_event_id == got[1].id


def test_events_resume_after_a_gap(client: Client, user: str) -> None:
    """What changed while no stream was open comes first after a resume with its last id."""
    with client.events(user_id=user, read_timeout=20).connect() as stream:
        first = client.create_session(user)
        seen = next_session_event(stream)
        assert seen.session.session_id == first.session.session_id
        last_id = stream.last_event_id
    second = client.create_session(user)  # while nobody listens
    client.end_session(first.session.session_id)
    with client.events(user_id=user, last_event_id=last_id, read_timeout=20) as resumed:
        got = [next_session_event(resumed), next_session_event(resumed)]
    assert [(e.session.session_id, e.session.state) for e in got] == [
        (second.session.session_id, SessionState.ACTIVE),
        (first.session.session_id, SessionState.ENDED),
    ]


def test_events_follow_on_when_their_node_dies(live_cluster: LocalCluster, user: str) -> None:
    cluster = live_cluster
    with Client(cluster.urls, cluster.app_key, timeout=15) as c:
        stream = c.events(user_id=user, read_timeout=10, max_reconnects=20).connect()
        with stream:
            created = c.create_session(user)
            assert next_session_event(stream).session.state is SessionState.ACTIVE
            assert stream.connected_to is not None
            cluster.kill(cluster.node_of(stream.connected_to))
            c.end_session(created.session.session_id)
            event = next_session_event(stream)  # from another node, resumed by its id
            assert event.session.state is SessionState.ENDED
            assert stream.connected_to is not None
            assert cluster.node_of(stream.connected_to) in cluster.running()


def test_events_trimmed(client: Client) -> None:
    """A position older than retention: the stream says so first (yielded, or raised)."""
    with client.events(last_event_id="1-0", read_timeout=20) as stream:
        first = next(iter(stream))
    assert isinstance(first, TrimmedEvent) and first.last_event_id == "1-0"
    assert first.kept_since is not None
    raising = client.events(last_event_id="1-0", on_trimmed="raise", read_timeout=20)
    with pytest.raises(errors.EventsTrimmed) as info, raising:
        next(iter(raising))
    assert info.value.last_event_id == "1-0"
    with pytest.raises(errors.BadRequest) as bad, client.events(last_event_id="nonsense") as s:
        next(iter(s))
    assert bad.value.field == "Last-Event-ID"


async def test_async_client_against_the_cluster(cluster: LocalCluster, user: str) -> None:
    async with AsyncClient(cluster.urls, cluster.app_key) as c:
        created = await c.create_session(user, device={"name": "async"})
        v = await c.validate(created.token)
        assert v.valid
        assert [s.session_id for s in await c.list_sessions(user)] == [created.session.session_id]
        await c.end_session(created.session.session_id)
        assert not (await c.validate(created.token)).valid
        assert c.leader == cluster.leader_url()


async def test_async_failover(live_cluster: LocalCluster, user: str) -> None:
    cluster = live_cluster
    async with AsyncClient(cluster.urls, cluster.app_key, timeout=15) as c:
        created = await c.create_session(user)
        leader = c.leader
        assert leader is not None
        cluster.kill(cluster.node_of(leader))
        assert (await c.validate(created.token)).valid
        await c.create_session(user)
        assert c.leader != leader


def test_config_shows_the_policy(client: Client, admin: Client) -> None:
    app_view = client.get_config()
    assert app_view.policy is not None and app_view.policy.idle_timeout_seconds == 900
    assert app_view.site is None  # the policy alone, for front ends
    full = admin.get_config()
    assert full.site == "pytest" and full.policy == app_view.policy

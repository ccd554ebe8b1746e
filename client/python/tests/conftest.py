"""Shared fixtures: the real 3-node cluster (started once per test session, killed at the
end), clients on it, a fresh user id per test, and ``policy`` for tests that change the
replicated policy (it is put back after the test).

Without a node binary the cluster tests are skipped, unless ``SESSYNC_REQUIRE_CLUSTER=1`` (CI
sets it), which makes that a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Dict

import pytest

from sessync import Client

from .cluster import BASE_POLICY, LocalCluster, node_binary


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    binary = node_binary()
    if binary is None:
        message = (
            "no sessync-node binary (set SESSYNC_NODE_BIN or build it into "
            "/var/tmp/sessync-target/release)"
        )
        if os.environ.get("SESSYNC_REQUIRE_CLUSTER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    root: Path = tmp_path_factory.mktemp("sessync-cluster")
    c = LocalCluster(binary, root)
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture
def live_cluster(cluster: LocalCluster) -> Iterator[LocalCluster]:
    """The cluster with every node running again after the test (tests may kill one)."""
    yield cluster
    for node in range(1, cluster.size + 1):
        if node not in cluster.running():
            cluster.restart(node)
    cluster.wait_ready()


@pytest.fixture
def client(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster.urls, cluster.app_key) as c:
        yield c


@pytest.fixture
def admin(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster.urls, cluster.admin_key) as c:
        yield c


@pytest.fixture
def user() -> str:
    return "user-" + uuid.uuid4().hex[:12]


@pytest.fixture
def policy(cluster: LocalCluster) -> Iterator[Callable[..., Dict[str, Any]]]:
    """``policy(on_limit="deny", max_concurrent_sessions=1)`` changes the replicated policy
    for this test; the base policy is put back afterwards."""
    changed = False

    def change(**keys: Any) -> Dict[str, Any]:
        nonlocal changed
        changed = True
        return cluster.set_policy(**keys)

    yield change
    if changed:
        cluster.set_policy(**BASE_POLICY)

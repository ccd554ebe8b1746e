"""A real 3-node sessync cluster for the tests, started from the built ``sessync-node``.

Modelled on ``cluster-config/examples/local-3``: one TOML config per node in a temporary
directory, free loopback ports, a random cluster secret and random API keys (configured by
their SHA-256, as the node wants), then ``POST /cluster/init`` with the admin key and a wait
until every node is ready. :meth:`LocalCluster.kill` and :meth:`LocalCluster.restart` let a
test take a node away; :meth:`LocalCluster.stop` kills every process the cluster started.

The binary: ``$SESSYNC_NODE_BIN``, else ``/var/tmp/sessync-target/release/sessync-node`` (the
target dir of ``.cargo/config.toml``).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import httpx

DEFAULT_BIN = "/var/tmp/sessync-target/release/sessync-node"

#: The policy the cluster starts with; tests that change it put it back.
BASE_POLICY: Dict[str, Any] = {
    "idle_timeout": "15m",
    "max_lifetime": "8h",
    "max_concurrent_sessions": 3,
    "on_limit": "block_new",
    "touch_interval": "1s",
}


def node_binary() -> Optional[str]:
    path = os.environ.get("SESSYNC_NODE_BIN") or DEFAULT_BIN
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def free_ports(n: int) -> List[int]:
    """``n`` distinct free loopback ports (bound at once, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


class LocalCluster:
    """Three nodes on 127.0.0.1 with fresh data in ``root``."""

    def __init__(self, binary: str, root: Path, size: int = 3) -> None:
        self.binary = binary
        self.root = root
        self.size = size
        self.ports = free_ports(size)
        self.urls = [f"http://127.0.0.1:{p}" for p in self.ports]
        self.app_key = "app-" + secrets.token_urlsafe(24)
        self.other_app_key = "app2-" + secrets.token_urlsafe(24)  # a second "site" app
        self.admin_key = "admin-" + secrets.token_urlsafe(24)
        self.procs: Dict[int, subprocess.Popen[bytes]] = {}
        self._logs: Dict[int, Any] = {}
        self.http = httpx.Client(timeout=5.0, trust_env=False)

    # --- configuration --------------------------------------------------------------------

    def config_path(self, node: int) -> Path:
        return self.root / f"node-{node}.toml"

    def log_path(self, node: int) -> Path:
        return self.root / f"node-{node}.log"

    def write_configs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        secret = self.root / "cluster.secret"
        secret.write_text(secrets.token_urlsafe(32) + "\n")
        secret.chmod(0o600)
        keys = [
            ("app", self.app_key, "app"),
            ("app2", self.other_app_key, "app"),
            ("admin", self.admin_key, "admin"),
        ]
        for node in range(1, self.size + 1):
            lines = [
                "# Written by client/python/tests/cluster.py for one test run.",
                f"node_id = {node}",
                'site = "pytest"',
                f'listen = "127.0.0.1:{self.ports[node - 1]}"',
                f'advertise_url = "{self.urls[node - 1]}"',
                f'data_dir = "data-{node}"',
                'cluster_secret_file = "cluster.secret"',
                "",
                "[policy]",
                *(f"{k} = {_toml_value(v)}" for k, v in BASE_POLICY.items()),
                "",
            ]
            for name, key, role in keys:
                lines += [
                    "[[api_keys]]",
                    f'name = "{name}"',
                    f'sha256 = "{_sha256(key)}"',
                    f'role = "{role}"',
                    "",
                ]
            lines += ["[metrics]", "open = true", "", "[log]", 'level = "warn"', ""]
            self.config_path(node).write_text("\n".join(lines))

    # --- processes ------------------------------------------------------------------------

    def start_node(self, node: int) -> None:
        if node in self.procs and self.procs[node].poll() is None:
            return
        log = open(self.log_path(node), "ab")  # noqa: SIM115 - closed in stop()/kill()
        self._logs[node] = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSYNC_")}
        self.procs[node] = subprocess.Popen(
            [self.binary, "--config", str(self.config_path(node))],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=self.root,
        )

    def start(self, timeout: float = 60.0) -> None:
        """Writes the configs, starts every node, initialises the cluster, waits for ready."""
        self.write_configs()
        for node in range(1, self.size + 1):
            self.start_node(node)
        for node in range(1, self.size + 1):
            self.wait_for(node, "/healthz", timeout)
        members = {str(n): self.urls[n - 1] for n in range(1, self.size + 1)}
        r = self.http.post(
            self.urls[0] + "/cluster/init",
            json={"members": members},
            headers={"authorization": f"Bearer {self.admin_key}"},
        )
        if r.status_code != 200:
            raise RuntimeError(f"cluster init answered {r.status_code}: {r.text}")
        self.wait_ready(timeout)

    def wait_for(self, node: int, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = self.urls[node - 1] + path
        while True:
            proc = self.procs.get(node)
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"node {node} exited ({proc.returncode}): {self.tail(node)}")
            try:
                if self.http.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"node {node}: {path} not 200 in {timeout}s: {self.tail(node)}")
            time.sleep(0.1)

    def wait_ready(self, timeout: float = 60.0, nodes: Optional[List[int]] = None) -> None:
        for node in nodes or self.running():
            self.wait_for(node, "/readyz", timeout)

    def running(self) -> List[int]:
        return [n for n, p in sorted(self.procs.items()) if p.poll() is None]

    def leader_url(self) -> Optional[str]:
        for node in self.running():
            try:
                # The leader's URL is told to authenticated callers only.
                r = self.http.get(
                    self.urls[node - 1] + "/v1/config",
                    headers={"authorization": f"Bearer {self.admin_key}"},
                    timeout=1.0,
                )
            except httpx.HTTPError:
                continue
            leader = r.headers.get("x-sessync-leader")
            if leader:
                return str(leader).rstrip("/")
        return None

    def node_of(self, url: str) -> int:
        return self.urls.index(url.rstrip("/")) + 1

    def kill(self, node: int) -> None:
        """SIGKILL: the node dies at once, as in a crash."""
        proc = self.procs.get(node)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        log = self._logs.pop(node, None)
        if log is not None:
            log.close()

    def restart(self, node: int, timeout: float = 60.0) -> None:
        self.kill(node)
        self.start_node(node)
        self.wait_ready(timeout, nodes=[node])

    def stop(self) -> None:
        """Stops every node (SIGTERM, then SIGKILL after 10 s) and closes the logs."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 10
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for log in self._logs.values():
            log.close()
        self._logs.clear()
        self.http.close()

    def tail(self, node: int, lines: int = 20) -> str:
        try:
            text = self.log_path(node).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # --- admin helpers --------------------------------------------------------------------

    def admin(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        """One admin call, on any running node that answers."""
        last: Optional[str] = None
        for node in self.running():
            try:
                r = self.http.request(
                    method,
                    self.urls[node - 1] + path,
                    json=body,
                    headers={"authorization": f"Bearer {self.admin_key}"},
                )
            except httpx.HTTPError as e:
                last = str(e)
                continue
            if r.status_code == 503:
                last = r.text
                continue
            r.raise_for_status()
            return r.json()
        raise RuntimeError(f"no node answered {method} {path}: {last}")

    def set_policy(self, **changes: Any) -> Dict[str, Any]:
        answer: Dict[str, Any] = self.admin("PUT", "/v1/config/policy", changes)
        return answer

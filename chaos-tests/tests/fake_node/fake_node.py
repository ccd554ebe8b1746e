#!/usr/bin/env python3
"""A stand-in for sessync-node, used only by the harness self-test (harness_selftest.rs).

It reads the config the harness wrote (failing loudly on a missing key), refuses to start if a
SESSYNC_* variable leaked into its environment, checks API keys by their SHA-256, and fakes
just enough of the cluster endpoints: membership is kept in data_dir/state.json (so a restart
keeps it and a wipe loses it), and the leader is the lowest-numbered member that answers
/healthz, so killing it moves leadership to the next one.
"""
import hashlib
import json
import os
import sys
import tomllib
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

if sys.argv[1:2] != ["--config"] or len(sys.argv) != 3:
    sys.exit("usage: fake_node.py --config FILE")
with open(sys.argv[2], "rb") as f:
    cfg = tomllib.load(f)
leaked = sorted(k for k in os.environ if k.startswith("SESSYNC_"))
if leaked:
    sys.exit(f"SESSYNC_* variables leaked into the node's environment: {leaked}")
NODE_ID = cfg["node_id"]
HOST, PORT = cfg["listen"].rsplit(":", 1)
assert cfg["advertise_url"] == f"http://{cfg['listen']}", cfg["advertise_url"]
DATA = cfg["data_dir"]
os.makedirs(DATA, exist_ok=True)
STATE = os.path.join(DATA, "state.json")
KEYS = {k["sha256"]: k["role"] for k in cfg["api_keys"]}
with open(cfg["cluster_secret_file"]) as f:
    assert len(f.read().strip()) == 64
for key in ("idle_timeout", "max_lifetime", "max_concurrent_sessions", "on_limit"):
    cfg["policy"][key]
for key in ("heartbeat_interval", "election_timeout_min", "election_timeout_max"):
    cfg["raft"][key]
print(f"fake node {NODE_ID} on {cfg['listen']}, policy {cfg['policy']}", flush=True)


def load():
    try:
        with open(STATE) as f:
            return json.load(f)
    except FileNotFoundError:
        return {"members": {}, "voters": []}


def save(st):
    with open(STATE + ".tmp", "w") as f:
        json.dump(st, f)
    os.replace(STATE + ".tmp", STATE)


def alive(url):
    try:
        urllib.request.urlopen(url + "/healthz", timeout=0.3)
        return True
    except Exception:
        return False


def post(url, path, body, auth):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": auth})
    try:
        urllib.request.urlopen(req, timeout=1)
    except Exception as e:
        print(f"could not tell {url}: {e}", flush=True)


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, code, message):
        self.reply(status, {"error": {"code": code, "message": message}})

    def is_admin(self):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return False
        return KEYS.get(hashlib.sha256(auth[7:].encode()).hexdigest()) == "admin"

    def body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return json.loads(self.rfile.read(n) or b"{}")

    def spread(self, st):
        """Tells every member (old and new) the new membership."""
        targets = set(st["members"].values()) | set(load()["members"].values())
        save(st)
        for url in targets:
            if url != cfg["advertise_url"]:
                post(url, "/fake/adopt", st, self.headers.get("Authorization", ""))

    def do_GET(self):
        if self.path in ("/healthz", "/readyz"):
            return self.reply(200, {"ok": True})
        if not self.is_admin():
            return self.error(401, "unauthorized", "an admin key is needed")
        st = load()
        members = {int(k): v for k, v in st["members"].items()}
        if self.path == "/cluster/status":
            leader = next((i for i in sorted(st["voters"])
                           if i == NODE_ID or alive(members[i])), None)
            return self.reply(200, {
                "node_id": NODE_ID, "site": cfg["site"],
                "role": "leader" if leader == NODE_ID else ("follower" if members else "learner"),
                "initialized": bool(st["voters"]), "leader": leader,
                "leader_url": members.get(leader), "term": leader or 0,
                "last_log_index": len(st["voters"]) or None,
                "last_applied": len(st["voters"]) or None, "snapshot_index": None,
                "members": [{"node_id": i, "url": u, "voter": i in st["voters"]}
                            for i, u in sorted(members.items())],
            })
        if self.path == "/cluster/digest":
            return self.reply(200, {"applied": len(st["voters"]) or None,
                                    "digest": hashlib.sha256(json.dumps(st, sort_keys=True)
                                                             .encode()).hexdigest()})
        self.error(404, "not_found", f"no route {self.path}")

    def do_POST(self):
        if not self.is_admin():
            return self.error(401, "unauthorized", "an admin key is needed")
        body, st = self.body(), load()
        if self.path == "/fake/adopt":
            save(body)
            return self.reply(200, {"ok": True})
        if self.path == "/cluster/init":
            if st["voters"]:
                return self.error(409, "already_initialized", "this cluster is initialised")
            st = {"members": body["members"], "voters": sorted(int(k) for k in body["members"])}
        elif self.path == "/cluster/learners":
            st["members"][str(body["node_id"])] = body["url"]
        elif self.path == "/cluster/membership":
            st["voters"] = sorted(body["voters"])
            st["members"] = {k: v for k, v in st["members"].items()
                             if int(k) in st["voters"] or body.get("retain")}
        else:
            return self.error(404, "not_found", f"no route {self.path}")
        self.spread(st)
        self.reply(200, {"ok": True, "log_index": len(st["voters"])})

    def log_message(self, fmt, *args):
        print(f"node {NODE_ID}: " + fmt % args, flush=True)


ThreadingHTTPServer((HOST, int(PORT)), Handler).serve_forever()

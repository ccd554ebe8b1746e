#!/usr/bin/env bash
# Offline checks of deploy/: the Kubernetes manifests parse and agree with each other and with
# the node (ports = the config's listen port, probe paths /healthz and /readyz that
# docs/openapi.json has, secret files mounted where the config names them, replicas = the
# bootstrap's expect), the ConfigMap's config is accepted by the real config parser
# (`sessyncctl config check`, run as a pod would: host name sessync-0, its advertise URL and
# secrets given), and the Containerfile holds the package's binaries at the package's paths.
# Needs python3 with PyYAML, openssl, and the release sessyncctl (`cargo build --release -p
# sessync-ctl`). No container runtime or cluster is used.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
ctl="$target/release/sessyncctl"
[ -x "$ctl" ] || { echo "deploy-check: $ctl is missing; run: cargo build --release -p sessync-ctl" >&2; exit 1; }
work=$(mktemp -d /tmp/sessync-deploy-check.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The manifests' own consistency; writes the ConfigMap's config and the pod's environment.
python3 - "$work" <<'PY'
import glob, json, re, sys, tomllib
import yaml

work = sys.argv[1]
problems = []
def check(ok, what):
    if not ok:
        problems.append(what)

docs = {}
for path in sorted(glob.glob("deploy/k8s/*.yaml")):
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            if doc is None:
                continue
            for key in ("apiVersion", "kind", "metadata"):
                check(key in doc, f"{path}: a document without {key}")
            docs[(doc["kind"], doc["metadata"]["name"])] = doc
def one(kind):
    found = [d for (k, _), d in docs.items() if k == kind]
    if len(found) != 1:
        sys.exit(f"deploy-check: expected one {kind} in deploy/k8s, found {len(found)}")
    return found[0]

sts, cm, pdb = one("StatefulSet"), one("ConfigMap"), one("PodDisruptionBudget")
config_text = cm["data"]["sessync.toml"]
config = tomllib.loads(config_text)
listen_port = int(config["listen"].rsplit(":", 1)[1])
tls = "tls" in config
scheme = "https" if tls else "http"

pod = sts["spec"]["template"]
labels = pod["metadata"]["labels"]
(container,) = pod["spec"]["containers"]
ports = {p["name"]: p["containerPort"] for p in container["ports"]}
check(list(ports.values()) == [listen_port], f"containerPort(s) {ports} != listen port {listen_port}")
def port_number(p):
    return ports.get(p, p) if isinstance(p, str) else p

# Probes: the paths the node serves, on its port, in its scheme.
openapi_paths = json.load(open("docs/openapi.json"))["paths"]
for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
    get = container[probe]["httpGet"]
    check(get["path"] == path, f"{probe} path {get['path']} != {path}")
    check(get["path"] in openapi_paths, f"{probe} path {get['path']} is not in docs/openapi.json")
    check(port_number(get["port"]) == listen_port, f"{probe} port {get['port']} != {listen_port}")
    check(get.get("scheme", "HTTP").lower() == scheme, f"{probe} scheme {get.get('scheme')} != {scheme}")

# Services: select the pods, name the node's port; the headless one is the StatefulSet's and
# publishes pods before they are ready.
headless = docs.get(("Service", sts["spec"]["serviceName"]))
check(headless is not None, f"no Service named {sts['spec']['serviceName']} (the StatefulSet's serviceName)")
for (kind, name), svc in docs.items():
    if kind != "Service":
        continue
    sel = svc["spec"]["selector"]
    check(all(labels.get(k) == v for k, v in sel.items()), f"Service {name} selects {sel}, not the pods {labels}")
    for p in svc["spec"]["ports"]:
        check(p["port"] == listen_port, f"Service {name} port {p['port']} != {listen_port}")
        check(port_number(p.get("targetPort", p["port"])) == listen_port, f"Service {name} targetPort {p.get('targetPort')} != {listen_port}")
if headless:
    check(headless["spec"].get("clusterIP") == "None", "the peers Service is not headless (clusterIP: None)")
    check(headless["spec"].get("publishNotReadyAddresses") is True, "the peers Service lacks publishNotReadyAddresses: true")

# Bootstrap: all replicas expected, started together, found through the headless Service.
boot = config.get("bootstrap", {})
check(boot.get("expect") == sts["spec"]["replicas"], f"bootstrap.expect {boot.get('expect')} != replicas {sts['spec']['replicas']}")
check(sts["spec"].get("podManagementPolicy") == "Parallel", "podManagementPolicy is not Parallel (pods would wait for a first ready one)")
check(boot.get("node_id_from_hostname") is True, "bootstrap.node_id_from_hostname is not true")
dns_host, dns_port = boot.get("dns", ":").rsplit(":", 1)
check(dns_host.split(".")[0] == sts["spec"]["serviceName"], f"bootstrap.dns {boot.get('dns')} is not the headless Service")
check(dns_port == str(listen_port), f"bootstrap.dns port {dns_port} != {listen_port}")
env = {e["name"]: e for e in container.get("env", [])}
check(env.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name", "POD_NAME is not the pod's name (downward API)")
advertise = env.get("SESSYNC_ADVERTISE_URL", {}).get("value", "")
want = f"{scheme}://$(POD_NAME).{sts['spec']['serviceName']}:{listen_port}"
check(advertise == want, f"SESSYNC_ADVERTISE_URL {advertise!r} != {want!r}")

# Files: the config where the image reads it; every file the config names is mounted there.
mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
cfg_mount = mounts.get("/etc/sessync/sessync.toml")
check(cfg_mount is not None and volumes[cfg_mount["name"]].get("configMap", {}).get("name") == cm["metadata"]["name"],
      "the ConfigMap is not mounted at /etc/sessync/sessync.toml")
def mounted(path, what):
    for mp, m in mounts.items():
        if path.startswith(mp.rstrip("/") + "/"):
            vol = volumes.get(m["name"], {})
            items = vol.get("secret", vol.get("configMap", {})).get("items")
            rel = path[len(mp.rstrip("/")) + 1:]
            check(items is None or rel in [i["path"] for i in items], f"{what} {path}: {rel} is not an item of volume {m['name']}")
            return m
    problems.append(f"{what} {path} is not under any volumeMount")
files = [("cluster_secret_file", config["cluster_secret_file"])]
files += [(f"tls.{k}", v) for k, v in config.get("tls", {}).items() if k.endswith("_file")]
for key, path in files:
    m = mounted(path, key)
    if m:
        check("secret" in volumes[m["name"]], f"{key} {path} is not mounted from a Secret")
data_mount = mounts.get(config["data_dir"])
claims = [c["metadata"]["name"] for c in sts["spec"].get("volumeClaimTemplates", [])]
check(data_mount is not None and data_mount["name"] in claims, f"data_dir {config['data_dir']} is not a volumeClaimTemplate's mount")

# Non-root, read-only root, no privileges.
psc, csc = pod["spec"].get("securityContext", {}), container.get("securityContext", {})
check(psc.get("runAsNonRoot") is True, "the pod lacks runAsNonRoot: true")
check(csc.get("readOnlyRootFilesystem") is True, "the container lacks readOnlyRootFilesystem: true")
check(csc.get("allowPrivilegeEscalation") is False, "the container lacks allowPrivilegeEscalation: false")
check(pdb["spec"].get("maxUnavailable") == 1, "the PodDisruptionBudget's maxUnavailable is not 1")
check(all(labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items()), "the PodDisruptionBudget does not select the pods")
grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
check(grace >= 30, f"terminationGracePeriodSeconds {grace} leaves a leader no time to hand over")

# The Containerfile: the package's binaries at the package's paths, the node's port, the
# data volume, the StatefulSet's user.
cf = open("deploy/Containerfile").read()
deb = tomllib.load(open("node/Cargo.toml", "rb"))["package"]["metadata"]["deb"]
package_bins = sorted("/" + dest + src.rsplit("/", 1)[1] for src, dest, _ in deb["assets"] if dest == "usr/bin/")
copied = sorted(re.findall(r"^COPY\b.*\s(\S+)$", cf, re.M))
check(copied == package_bins, f"Containerfile COPYs {copied}, the package holds {package_bins}")
entry = json.loads(re.search(r"^ENTRYPOINT (.*)$", cf, re.M).group(1))
unit = open("deploy/debian/sessync.service").read()
exec_start = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1).split()
check(entry == exec_start, f"Containerfile ENTRYPOINT {entry} != the unit's ExecStart {exec_start}")
check(entry[-1] == "/etc/sessync/sessync.toml", f"the image reads {entry[-1]}, the ConfigMap is at /etc/sessync/sessync.toml")
check(re.search(rf"^EXPOSE {listen_port}$", cf, re.M) is not None, f"Containerfile does not EXPOSE {listen_port}")
check(f'VOLUME ["{config["data_dir"]}"]' in cf, f"Containerfile has no VOLUME {config['data_dir']}")
check("StateDirectory=sessync" in unit and config["data_dir"] == "/var/lib/sessync", "data_dir is not the unit's /var/lib/sessync")
user = re.search(r"^USER (\d+):(\d+)$", cf, re.M)
check(user is not None and int(user.group(1)) == psc.get("runAsUser"), "Containerfile's numeric USER is not the pod's runAsUser")

if problems:
    sys.exit("deploy-check: FAIL:\n  " + "\n  ".join(problems))
open(f"{work}/sessync.toml", "w").write(config_text)
open(f"{work}/advertise_url", "w").write(advertise.replace("$(POD_NAME)", "sessync-0"))
print(f"deploy-check: {len(docs)} manifests parse and agree (port {listen_port}, /healthz, /readyz, {len(files)} secret files)")
PY

# The real parser, as pod sessync-0 would run it: its host name, advertise URL and secrets
# (given by environment here; where the files are mounted was checked above).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=sessync \
  -addext "subjectAltName=DNS:*.sessync-peers,DNS:sessync" -addext "extendedKeyUsage=serverAuth,clientAuth" \
  -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
check_env=(SESSYNC_ADVERTISE_URL="$(cat "$work/advertise_url")" HOSTNAME=sessync-0
  SESSYNC_CLUSTER_SECRET="$(openssl rand -hex 32)" SESSYNC_DATA_DIR="$work/data"
  SESSYNC_TLS_CERT_FILE="$work/tls.crt" SESSYNC_TLS_KEY_FILE="$work/tls.key" SESSYNC_TLS_CA_FILE="$work/tls.crt")
if [ "$(id -u)" -eq 0 ] && unshare --uts true 2>/dev/null; then
  # Its own UTS namespace: the host name is sessync-0 for the check only.
  run() { env "${check_env[@]}" unshare --uts sh -c 'hostname sessync-0 && exec "$@"' sh "$@"; }
else
  run() { env "${check_env[@]}" "$@"; }
fi
if ! run "$ctl" config check "$work/sessync.toml" >"$work/check.out" 2>&1; then
  echo "deploy-check: FAIL: the ConfigMap's config is refused by the node's config parser:" >&2
  cat "$work/check.out" >&2
  exit 1
fi
echo "deploy-check: the ConfigMap's config passes sessyncctl config check (as pod sessync-0)"

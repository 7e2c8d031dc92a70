# SPDX-License-Identifier: LGPL-2.1-or-later
"""HTTPS on the mesh: certificates from the mesh CA, trusted by the system.

- `meshctl cert --out DIR` on nas gives a key and certificate for
  nas.mesh.internal and its addresses; a small TLS server uses them on port
  8443. On client, `curl https://nas.mesh.internal:8443/` (name through the
  mesh NSS module, no -k) fails with a certificate error until `meshctl
  trust install`, works after it, and fails again after `meshctl trust
  remove`.
- With a 20 s certificate lifetime meshd renews by itself, runs
  [Certificate] ReloadCommand= with the MESHD_*_FILE variables, and keeps
  key and certificate in step; an expired or removed node gets no new
  certificate and keeps its files.

The trust store: every client command runs in the client's network
namespace and in a private mount namespace (unshare --mount, private
propagation; see meshlab.NssResolver), where directories of the test are
bind-mounted over /usr/local/share/ca-certificates and /etc/ssl/certs, and
an empty tmpfs over update-ca-certificates' hook directory (Java's hook
would reach dpkg). update-ca-certificates, meshctl and curl there see only
the test's trust store, kept across commands in those directories; the
host's trust store is checked to be unchanged.
"""

import hashlib
import ipaddress
import json
import os
import re
import stat
import time
from pathlib import Path

import pytest

import meshlab
from meshlab import wait_until

TRUST_DIR = Path("/usr/local/share/ca-certificates")
ETC_CERTS = Path("/etc/ssl/certs")
HTTPS_PORT = 8443
BODY = "hello from nas over mesh TLS"
CERT_LIFETIME_S = 20        # meshd-control serve --cert-lifetime for the renewal test

TRUST_SCRIPT = r"""
set -e
local=$1 certs=$2
shift 2
mount --bind "$local" /usr/local/share/ca-certificates
mount --bind "$certs" /etc/ssl/certs
if [ -d /etc/ca-certificates/update.d ]; then
        mount -t tmpfs meshlab-hooks /etc/ca-certificates/update.d
fi
exec "$@"
"""

TLS_SERVER = r"""
import http.server, socket, ssl, sys

cert, key, port, body = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].encode() + b"\n"

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("request", fmt % args, flush=True)

class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6

    def server_bind(self):      # both families: curl may try IPv6 or IPv4 first
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

srv = Server(("::", port), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("ready", flush=True)
srv.serve_forever()
"""

# The hook: records its environment, the serial it sees and whether key and
# certificate belong together at that moment.
RELOAD_HOOK = r"""#!/bin/sh
out=$(dirname "$0")/reload.log
{
        echo "run"
        echo "cert=$MESHD_CERT_FILE"
        echo "key=$MESHD_KEY_FILE"
        echo "ca=$MESHD_CA_FILE"
        echo "fullchain=$MESHD_FULLCHAIN_FILE"
        echo "dir=$MESHD_CERT_DIR"
        echo "notify=${NOTIFY_SOCKET:-none}"
        openssl x509 -in "$MESHD_CERT_FILE" -noout -serial
        if [ "$(openssl x509 -in "$MESHD_FULLCHAIN_FILE" -noout -pubkey)" = \
             "$(openssl pkey -in "$MESHD_KEY_FILE" -pubout)" ]; then
                echo "pair=match"
        else
                echo "pair=MISMATCH"
        fi
        echo "end"
} >> "$out"
"""

# A Varlink call from a process that is not root: GetCertificateAuthority is
# for everyone, GetCertificate (it returns the key) for root only.
VARLINK_CALL = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(json.dumps({"method": sys.argv[2], "parameters": {}}).encode() + b"\0")
data = b""
while not data.endswith(b"\0"):
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(data.rstrip(b"\0").decode())
"""


def serial(path: Path) -> str:
    cp = meshlab.run(["openssl", "x509", "-in", path, "-noout", "-serial"])
    return cp.stdout.strip().split("=", 1)[1].lower()


def cert_text(path: Path) -> str:
    return meshlab.run(["openssl", "x509", "-in", path, "-noout", "-text"]).stdout


def san_addresses(text: str) -> set:
    """The IP subjectAltNames in `openssl x509 -text` output."""
    return {ipaddress.ip_address(a.strip()) for a in re.findall(r"IP Address:([0-9A-Fa-f:.]+)", text)}


def files_snapshot(d: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def host_trust_store() -> tuple:
    """What the tests must never change on the host."""
    bundle = ETC_CERTS / "ca-certificates.crt"
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest() if bundle.exists() else None
    local = sorted(os.listdir(TRUST_DIR)) if TRUST_DIR.is_dir() else None
    links = sorted(p.name for p in ETC_CERTS.iterdir()) if ETC_CERTS.is_dir() else None
    return digest, local, links


def reload_runs(log: Path) -> list[dict]:
    """The hook's records, one dict per finished run."""
    if not log.exists():
        return []
    runs, current = [], None
    for line in log.read_text().splitlines():
        if line == "run":
            current = {}
        elif line == "end" and current is not None:
            runs.append(current)
            current = None
        elif current is not None and "=" in line:
            k, v = line.split("=", 1)
            current[k] = v.lower() if k == "serial" else v
    return runs


class TrustStore:
    """Commands in a node's namespace with the mesh NSS module active and
    the test's own trust store in place of the system's."""

    def __init__(self, lab, node):
        self.node = node
        root = lab.dir / f"trust-{node.name}"
        self.local = root / "local"          # over /usr/local/share/ca-certificates
        self.certs = root / "etc-ssl-certs"  # over /etc/ssl/certs
        self.local.mkdir(parents=True)
        self.certs.mkdir(parents=True)
        self.nss = meshlab.NssResolver(lab, node, meshlab.write_nsswitch(lab, node, True))

    def run(self, *argv, timeout=60, env=None):
        return self.nss.run("sh", "-c", TRUST_SCRIPT, "sh", self.local, self.certs, *argv, timeout=timeout,
                            env=env)

    def meshctl(self, *args):
        # meshctl trust also writes the browsers' policies: the test's, not /etc's.
        browsers = {"MESHCTL_CHROMIUM_POLICY_DIR": str(self.local.parent / "chromium-policies"),
                    "MESHCTL_FIREFOX_POLICIES": str(self.local.parent / "firefox-policies.json")}
        return self.run(meshlab.binary("meshctl"), "--socket", self.node.socket, *args, env=browsers)

    def curl(self, url):
        return self.run("curl", "-sS", "--max-time", "10", url, timeout=30)


@pytest.fixture
def two_nodes(lab, control):
    if not meshlab.NSS_LIBRARY.exists():
        raise FileNotFoundError(f"{meshlab.NSS_LIBRARY} is missing: build it first")
    for tool in ("curl", "update-ca-certificates", "openssl"):
        if not any(os.access(Path(d) / tool, os.X_OK) for d in
                   os.environ.get("PATH", "").split(":") + ["/usr/sbin", "/sbin"]):
            raise FileNotFoundError(f"{tool} is missing: run tools/setup")
    if not TRUST_DIR.is_dir():
        raise FileNotFoundError(f"{TRUST_DIR} is missing: install ca-certificates (tools/setup)")
    key = control.authkey(reusable=True)
    nodes = {n: lab.add_node(n, authkey=key) for n in ("client", "nas")}
    for n in nodes.values():
        n.start()
    for n in nodes.values():
        n.wait_ready(30)
    for n in nodes.values():
        wait_until(lambda: n.status().get("peers_reachable") == 1, 20, what=f"{n.name} reaching its peer")
    hosts = nodes["client"].runtime_dir / "hosts"
    wait_until(lambda: hosts.exists() and "\tnas " in hosts.read_text(), 10, what="nas in client's hosts table")
    return nodes


def start_tls_server(lab, node, cert: Path, key: Path):
    log = lab.dir / f"tls-{node.name}.log"
    script = lab.dir / "tls_server.py"
    script.write_text(TLS_SERVER)
    proc = node.ns.popen([meshlab.PYTHON, script, cert, key, HTTPS_PORT, BODY], log=log)
    wait_until(lambda: proc.poll() is not None or "ready" in log.read_text(), 15, what="the TLS server")
    assert proc.poll() is None, f"TLS server exited:\n{log.read_text()}"
    return proc


def test_https_by_mesh_name_after_trust_install(lab, control, two_nodes):
    client, nas = two_nodes["client"], two_nodes["nas"]
    host_before = host_trust_store()
    out = lab.dir / "nas-tls"

    cp = nas.meshctl("cert", "--out", out)
    assert cp.returncode == 0, f"meshctl cert --out: {cp.stderr}"
    assert "not renewed" in cp.stdout, cp.stdout
    crt, key, ca = out / "nas.mesh.internal.crt", out / "nas.mesh.internal.key", out / "mesh-ca.crt"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    status = nas.status()
    text = cert_text(crt)
    want = {status["ipv4"]} | ({status["ipv6"]} if status.get("ipv6") else set())
    assert f"DNS:{status['fqdn']}" in text, text
    assert f"CN = {status['fqdn']}" in text, text
    assert san_addresses(text) == {ipaddress.ip_address(a) for a in want}, text
    cp = meshlab.run(["openssl", "verify", "-CAfile", ca, crt], check=False)
    assert cp.returncode == 0, f"openssl verify: {cp.stdout}{cp.stderr}"
    # fullchain: the certificate, then the CA.
    assert crt.read_text().count("BEGIN CERTIFICATE") == 2

    # The daemon's own copy: 0700 directory, 0600 files, the same certificate.
    certs = nas.state_dir / "certs"
    assert stat.S_IMODE(certs.stat().st_mode) == 0o700
    for f in ("cert.pem", "key.pem", "ca.pem", "fullchain.pem"):
        assert stat.S_IMODE((certs / f).stat().st_mode) == 0o600, f
    assert serial(certs / "cert.pem") == serial(crt)

    start_tls_server(lab, nas, crt, key)
    trust = TrustStore(lab, client)
    url = f"https://{status['fqdn']}:{HTTPS_PORT}/"

    # Nothing installed: remove is a no-op that fills our copy of /etc/ssl/certs.
    cp = trust.meshctl("trust", "remove")
    assert cp.returncode == 0, f"trust remove (nothing installed): {cp.stderr}"
    assert "not in the system trust store" in cp.stdout, cp.stdout
    assert (trust.certs / "ca-certificates.crt").exists()

    cp = trust.curl(url)
    assert cp.returncode == 60, f"curl before trust install: rc {cp.returncode}\n{cp.stdout}{cp.stderr}"
    assert "certificate" in cp.stderr, cp.stderr

    cp = trust.meshctl("trust", "install")
    assert cp.returncode == 0, f"trust install: {cp.stderr}"
    installed = trust.local / "meshd-mesh.internal.crt"
    assert installed.read_text() == ca.read_text()
    assert stat.S_IMODE(installed.stat().st_mode) == 0o644

    cp = trust.curl(url)
    assert cp.returncode == 0, f"curl {url}: rc {cp.returncode}\n{cp.stderr}"
    assert cp.stdout.strip() == BODY
    # By address too: the certificate carries the IP, the CA permits the range.
    cp = trust.curl(f"https://{status['ipv4']}:{HTTPS_PORT}/")
    assert cp.returncode == 0, f"curl by address: rc {cp.returncode}\n{cp.stderr}"

    cp = trust.meshctl("trust", "install")
    assert cp.returncode == 0 and "Already trusted" in cp.stdout, f"second install: {cp.stdout}{cp.stderr}"

    cp = trust.meshctl("trust", "remove")
    assert cp.returncode == 0, f"trust remove: {cp.stderr}"
    assert not installed.exists()
    cp = trust.curl(url)
    assert cp.returncode == 60, f"curl after trust remove: rc {cp.returncode}\n{cp.stdout}{cp.stderr}"

    assert host_trust_store() == host_before, "the host's trust store changed"


def test_certificate_calls_for_non_root(lab, control, two_nodes):
    """GetCertificate returns the private key: root only. The CA is public.
    `meshctl trust` refuses to run as non-root before touching anything."""
    nas = two_nodes["nas"]
    # Let uid 65534 with gid 0 reach the socket (0660 root:root, no group meshd here).
    lab.short.chmod(0o711)
    as_nobody = ["setpriv", "--reuid=65534", "--regid=0", "--clear-groups"]

    cp = nas.exec(*as_nobody, meshlab.binary("meshctl"), "--socket", nas.socket, "cert")
    assert cp.returncode == 1, f"meshctl cert as nobody: rc {cp.returncode}\n{cp.stdout}{cp.stderr}"
    assert "permission denied" in cp.stderr and "root" in cp.stderr, cp.stderr
    assert not (nas.state_dir / "certs").exists(), "a refused call made a certificate"

    call = [*as_nobody, meshlab.PYTHON, "-c", VARLINK_CALL, nas.socket]
    cp = nas.exec(*call, "io.meshd.GetCertificateAuthority")
    assert cp.returncode == 0, cp.stderr
    reply = json.loads(cp.stdout)
    assert "error" not in reply, reply
    assert reply["parameters"]["ca"].startswith("-----BEGIN CERTIFICATE-----")
    assert reply["parameters"]["domain"] == "mesh.internal"
    cp = nas.exec(*call, "io.meshd.GetCertificate")
    assert json.loads(cp.stdout).get("error") == "io.meshd.PermissionDenied", cp.stdout

    cp = nas.exec(*as_nobody, meshlab.binary("meshctl"), "--socket", nas.socket, "trust", "install")
    assert cp.returncode == 1 and "must run as root" in cp.stderr, f"{cp.stdout}{cp.stderr}"


def add_node_with_hook(lab, name, key) -> tuple:
    node = lab.add_node(name, authkey=key)
    hook_dir = lab.dir / f"hook-{name}"
    hook_dir.mkdir()
    hook = hook_dir / "reload.sh"
    hook.write_text(RELOAD_HOOK)
    node.config.write_text(node.config.read_text() + f"\n[Certificate]\nReloadCommand=/bin/sh {hook}\n")
    return node, hook_dir / "reload.log"


def test_renewal_runs_hook_and_refused_nodes_keep_their_files(lab):
    """Lifetime 20 s: meshd renews after about 13 s, by itself, and runs the
    hook each time it writes a certificate; the hook sees a matching pair.
    Then `nodes expire nas` and `nodes remove web`: no node gets a new
    certificate, `meshctl cert --renew` fails with a clear message, the
    files stay as they were."""
    control = lab.add_control(hub_args=["--cert-lifetime", f"{CERT_LIFETIME_S}s"])
    key = control.authkey(reusable=True)
    nas, nas_log = add_node_with_hook(lab, "nas", key)
    web, web_log = add_node_with_hook(lab, "web", key)
    for n in (nas, web):
        n.start()
    for n in (nas, web):
        n.wait_ready(30)

    certs = {n.name: n.state_dir / "certs" for n in (nas, web)}
    # No certificate until one is asked for: nothing to renew. A request
    # meshd does not make leaves no trace, so this is watched over a window:
    # READY came after start-up, and 2 s more is ample for one it would make.
    time.sleep(2)
    assert not certs["nas"].exists() and not certs["web"].exists()

    first = {}
    for n, log in ((nas, nas_log), (web, web_log)):
        cp = n.meshctl("cert")
        assert cp.returncode == 0, f"{n.name}: meshctl cert: {cp.stderr}"
        assert str(certs[n.name]) in cp.stdout, cp.stdout
        first[n.name] = serial(certs[n.name] / "cert.pem")
        wait_until(lambda: len(reload_runs(log)) >= 1, 10, what=f"{n.name}'s first hook run")

    # A restart loads the certificate from the files and keeps renewing it.
    web.restart()
    web.wait_ready(30)
    cp = web.meshctl("cert")
    assert cp.returncode == 0, f"web: meshctl cert after restart: {cp.stderr}"
    last_run = web.log.read_text(errors="replace").rsplit("=== meshlab", 1)[1]
    assert f"Loaded certificate for web.mesh.internal (serial {first['web']})" in last_run, \
        web.log_tail()

    # Renewal by meshd itself, before expiry, and the hook after it.
    wait_until(lambda: serial(certs["nas"] / "cert.pem") != first["nas"], CERT_LIFETIME_S + 20,
               interval=0.5, what="nas renewing its certificate")
    wait_until(lambda: serial(certs["web"] / "cert.pem") != first["web"], CERT_LIFETIME_S + 20,
               interval=0.5, what="web renewing its certificate after a restart")
    renewed = serial(certs["nas"] / "cert.pem")
    runs = wait_until(lambda: [r for r in reload_runs(nas_log) if r.get("serial") == renewed], 10,
                      what="the hook run for the renewed certificate")
    d = str(certs["nas"])
    assert runs[-1] == {"cert": f"{d}/cert.pem", "key": f"{d}/key.pem", "ca": f"{d}/ca.pem",
                        "fullchain": f"{d}/fullchain.pem", "dir": d, "serial": renewed,
                        "pair": "match", "notify": "none"}, runs[-1]
    assert all(r["pair"] == "match" for r in reload_runs(nas_log)), reload_runs(nas_log)
    assert [p.name for p in nas.state_dir.iterdir() if p.name.startswith(".certs")] == [], \
        "leftover certificate sets"
    assert stat.S_IMODE(certs["nas"].stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in certs["nas"].iterdir()} == {0o600}

    # meshctl cert --renew: a new certificate (and key) at once.
    old_key = (certs["nas"] / "key.pem").read_bytes()
    cp = nas.meshctl("cert", "--renew")
    assert cp.returncode == 0, f"meshctl cert --renew: {cp.stderr}"
    third = serial(certs["nas"] / "cert.pem")
    assert third not in (first["nas"], renewed)
    assert (certs["nas"] / "key.pem").read_bytes() != old_key, "renewal kept the old key"
    wait_until(lambda: [r for r in reload_runs(nas_log) if r.get("serial") == third], 10,
               what="the hook run after meshctl cert --renew")

    # Expired and removed nodes: nothing new, files kept.
    before = {n.name: files_snapshot(certs[n.name]) for n in (nas, web)}
    hook_runs = {n.name: len(reload_runs(log)) for n, log in ((nas, nas_log), (web, web_log))}
    control.command("nodes", "expire", "nas")
    control.remove_node("web")
    for n in (nas, web):
        cp = n.meshctl("cert", "--renew")
        assert cp.returncode == 1, f"{n.name}: cert --renew after refusal: rc {cp.returncode}\n{cp.stdout}"
        # Refused by the control server, or (once meshd saw its own removal
        # on the netmap poll) not a member any more.
        assert re.search(r"refused a certificate|not joined a mesh", cp.stderr), cp.stderr
        assert "\n" not in cp.stderr.strip(), f"more than one line: {cp.stderr}"

    # Past the whole lifetime: no renewal came, the files are the old ones.
    time.sleep(CERT_LIFETIME_S + 2)
    for n, log in ((nas, nas_log), (web, web_log)):
        assert files_snapshot(certs[n.name]) == before[n.name], f"{n.name}'s certificate files changed"
        assert len(reload_runs(log)) == hook_runs[n.name], f"{n.name}'s hook ran again"
        text = n.log.read_text(errors="replace")
        assert re.search(r"refused a certificate|no longer accepts this node", text), \
            f"{n.name}: no refusal in the log"

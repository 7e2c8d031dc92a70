# SPDX-License-Identifier: LGPL-2.1-or-later
"""HTTPS on the mesh in real browsers: Chromium and Firefox ESR accept a
node's meshd certificate after `meshctl trust install` and refuse it after
`meshctl trust remove`, system-wide (root) and per user (`--user`).

- n1 gets its certificate with `meshctl cert --out` and serves a page over
  HTTPS on port 8443 with Strict-Transport-Security (a small Python server
  in n1's namespace). The server logs every finished TLS handshake and
  request, and every failed handshake: a browser that refuses the
  certificate sends an alert and no request. The test reads the verdict from
  that log, never from a sleep. Chromium's HSTS state afterwards shows it
  took the header, which a browser does only over a trusted connection.
- On n2 the browsers load https://n1.mesh.internal:8443/ headless, with no
  certificate flags (`--no-sandbox` is Chromium's process sandbox, which
  needs more than a network namespace gives). The name resolves through the
  mesh NSS module (`meshctl nss enable`): nsswitch.conf then has a service
  Chromium's own resolver does not know, so Chromium asks getaddrinfo.
- System-wide: meshctl writes Chromium's managed policy CACertificates and
  a SecurityDevices entry in Firefox's policies.json that loads p11-kit's
  trust module (Firefox then follows the system store), next to the
  update-ca-certificates store. Firefox keeps its profile across install and
  remove: a profile that loaded the device still refuses after remove.
- Per user: an unprivileged user (uid 65534, in the socket's group as a
  member of group meshd would be) with a fresh HOME starts Firefox once, as
  a real user would have, so that a profile exists; `trust install --user`
  puts the CA into ~/.pki/nssdb (Chromium) and the profile, `remove --user`
  takes it out again.

Nothing on the host changes: every n2 command runs in a private mount
namespace (meshlab.NssResolver, installed=True) with an overlay over /etc
whose upper directory is the test's (update-ca-certificates' /etc/ssl/certs,
the browsers' policies), the test's directory over
/usr/local/share/ca-certificates and an empty tmpfs over
update-ca-certificates' hooks. Browsers get a HOME in the test's
directories. The host's /etc is checked to be unchanged.

Timings on 2 shared cores: Chromium ~1-2 s and Firefox ~3-6 s a load, the
whole file about a minute.
"""

import base64
import hashlib
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

import meshlab
from meshlab import wait_until

HTTPS_PORT = 8443
BODY = "hello from n1 over mesh TLS"
BROWSER_TIMEOUT = 90          # a load's verdict on a slow machine
USER = 65534                  # the unprivileged user (nobody)
FIREFOX_DEVICE = "meshd: system trust store"
NICKNAME = "meshd mesh CA (mesh.internal)"

TLS_SERVER = r"""
import http.server, socket, ssl, sys

cert, key, port, body = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
page = f"<html><body><p id='hello'>{body}</p></body></html>\n".encode()

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, fmt, *args):
        print("request", self.client_address[0], fmt % args, flush=True)

class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    # The handshake in the request's thread, so that its failure is logged.
    def finish_request(self, sock, addr):
        try:
            tls = ctx.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            print("tls-error", addr[0], e, flush=True)
            return
        self.RequestHandlerClass(tls, addr, self)

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = Server(("::", port), Handler)
print("ready", flush=True)
srv.serve_forever()
"""

# In n2's namespaces: the test's /etc overlay and trust store, then argv.
MOUNT_SCRIPT = r"""
set -e
upper=$1 work=$2 local=$3 nsswitch=$4
shift 4
mount -t overlay meshlab-etc -o "lowerdir=/etc,upperdir=$upper,workdir=$work" /etc
mount --bind "$nsswitch" /etc/nsswitch.conf
mount --bind "$local" /usr/local/share/ca-certificates
if [ -d /etc/ca-certificates/update.d ]; then
        mount -t tmpfs meshlab-hooks /etc/ca-certificates/update.d
fi
exec "$@"
"""

# Runs a browser until n1's log has its verdict: the GET of / ("loaded") or
# a failed handshake ("refused"). Chromium --dump-dom exits by itself (its
# output is the DOM); Firefox is stopped once the verdict is in.
BROWSE = r"""
import os, signal, subprocess, sys, time

log, offset, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
wait_exit, output, argv = sys.argv[4] == "1", sys.argv[5], sys.argv[6:]
with open(output, "wb") as out:
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
deadline = time.monotonic() + timeout
verdict = None
while verdict is None and time.monotonic() < deadline:
    with open(log) as f:
        f.seek(offset)
        for line in f:
            if line.startswith("request ") and '"GET / ' in line:
                verdict = "loaded"
            elif line.startswith("tls-error "):
                verdict = "refused"
            if verdict:
                break
    if verdict is None and p.poll() is not None:
        verdict = f"exited {p.returncode} without a request"
    if verdict is None:
        time.sleep(0.05)
if wait_exit and verdict:
    try:
        p.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
try:
    os.killpg(p.pid, signal.SIGKILL)
except ProcessLookupError:
    pass
p.wait()
print(verdict or "timeout")
"""


def host_etc_state() -> dict:
    """What the test must never change on the host."""
    state = {}
    for p in ("/etc/chromium", "/etc/firefox", "/etc/firefox-esr", "/usr/local/share/ca-certificates"):
        d = Path(p)
        state[p] = sorted(str(f.relative_to(d)) for f in d.rglob("*")) if d.is_dir() else None
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    state["bundle"] = hashlib.sha256(bundle.read_bytes()).hexdigest() if bundle.exists() else None
    return state


class Client:
    """n2 with the mesh NSS module and the test's own /etc and trust store."""

    def __init__(self, lab, node, name):
        self.lab, self.node = lab, node
        root = lab.dir / f"client-{name}"
        self.upper, self.work, self.local = root / "etc-upper", root / "etc-work", root / "local"
        self.root_home = root / "root-home"
        for d in (self.upper, self.work, self.local, self.root_home):
            d.mkdir(parents=True)
        self.nsswitch = meshlab.write_nsswitch(lab, node, True)
        self.nss = meshlab.NssResolver(lab, node, self.nsswitch)
        self.browse_script = lab.dir / "browse.py"
        self.browse_script.write_text(BROWSE)
        self.count = 0

    def run(self, *argv, user=None, home=None, env=None, timeout=60):
        prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] if user is not None else []
        environment = {"HOME": str(home or self.root_home), "MOZ_CRASHREPORTER_DISABLE": "1",
                       **{k: "" for k in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME")}}
        environment.update(env or {})
        return self.nss.run("sh", "-c", MOUNT_SCRIPT, "sh", self.upper, self.work, self.local, self.nsswitch,
                            "env", *[f"{k}={v}" for k, v in environment.items()], *prefix, *argv,
                            installed=True, timeout=timeout)

    def meshctl(self, *args, user=None, home=None, env=None):
        return self.run(meshlab.binary("meshctl"), *args, user=user, home=home, env=env)

    def browse(self, browser, url, server_log: Path, *, user=None, home=None, profile=None):
        """'loaded' or 'refused' (or why neither), the browser's output and
        (Chromium) its user data directory."""
        self.count += 1
        output = self.lab.dir / f"browser-{self.count}.out"
        data = (home or self.lab.dir) / f"chromium-data-{self.count}"
        if browser == "chromium":
            argv = ["chromium", "--headless", "--no-sandbox", f"--user-data-dir={data}", "--dump-dom", url]
        else:
            argv = ["firefox-esr", "--headless", "--no-remote", *(["--profile", profile] if profile else []), url]
        if user is not None:
            argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
        offset = server_log.stat().st_size
        cp = self.run(meshlab.PYTHON, self.browse_script, server_log, offset, BROWSER_TIMEOUT,
                      "1" if browser == "chromium" else "0", output, *argv,
                      home=home, timeout=BROWSER_TIMEOUT + 30)
        assert cp.returncode == 0, f"browse helper: {cp.stdout}{cp.stderr}"
        return cp.stdout.strip().splitlines()[-1], output.read_text(errors="replace"), data


def chromium_hsts(data: Path, host: str) -> dict | None:
    """Chromium's HSTS entry for host in its user data directory (kept by
    the SHA-256 of the name in DNS wire format), written when it exits."""
    wire = b"".join(bytes([len(label)]) + label.encode() for label in host.split(".")) + b"\0"
    key = base64.b64encode(hashlib.sha256(wire).digest()).decode()
    state = data / "Default" / "TransportSecurity"
    if not state.exists():
        return None
    return next((e for e in json.loads(state.read_text()).get("sts", []) if e.get("host") == key), None)


def assert_hsts(data: Path, url: str):
    """A browser takes HSTS only from a connection it trusts: the entry
    shows the header arrived over a certificate Chromium accepted, and that
    the page loads where a certificate error could not be clicked away."""
    entry = chromium_hsts(data, url.split("/")[2].split(":")[0])
    assert entry and entry["mode"] == "force-https" and entry["sts_include_subdomains"], entry


@pytest.fixture
def https_mesh(lab, control):
    """n1 serving its meshd certificate on 8443, n2 a client; the URL and
    n1's server log."""
    for tool in ("chromium", "firefox-esr", "certutil", "update-ca-certificates"):
        if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
            raise FileNotFoundError(f"{tool} is missing: run tools/setup")
    if not meshlab.NSS_LIBRARY.exists():
        raise FileNotFoundError(f"{meshlab.NSS_LIBRARY} is missing: build it first")
    key = control.authkey(reusable=True)
    nodes = {n: lab.add_node(n, authkey=key) for n in ("n1", "n2")}
    for n in nodes.values():
        n.start()
    for n in nodes.values():
        n.wait_ready(30)
    for n in nodes.values():
        wait_until(lambda: n.status().get("peers_reachable") == 1, 20, what=f"{n.name} reaching its peer")
    hosts = nodes["n2"].runtime_dir / "hosts"
    wait_until(lambda: hosts.exists() and "\tn1 " in hosts.read_text(), 10, what="n1 in n2's hosts table")

    n1 = nodes["n1"]
    out = lab.dir / "n1-tls"
    cp = n1.meshctl("cert", "--out", out)
    assert cp.returncode == 0, f"meshctl cert --out: {cp.stderr}"
    fqdn = n1.status()["fqdn"]
    script = lab.dir / "tls_server.py"
    script.write_text(TLS_SERVER)
    log = lab.dir / "tls-n1.log"
    proc = n1.ns.popen([meshlab.PYTHON, script, out / f"{fqdn}.crt", out / f"{fqdn}.key", HTTPS_PORT, BODY],
                       log=log)
    wait_until(lambda: proc.poll() is not None or "ready" in log.read_text(), 15, what="the TLS server")
    assert proc.poll() is None, f"TLS server exited:\n{log.read_text()}"
    return nodes["n2"], f"https://{fqdn}:{HTTPS_PORT}/", log


def test_browsers_trust_system_wide(lab, https_mesh):
    n2, url, log = https_mesh
    host_before = host_etc_state()
    client = Client(lab, n2, "system")
    profile = lab.dir / "firefox-profile"
    profile.mkdir()
    # The administrator's own Firefox policy stays through install and remove.
    policies = client.upper / "firefox" / "policies" / "policies.json"
    policies.parent.mkdir(parents=True)
    policies.write_text('{"policies": {"DisableTelemetry": true}}\n')

    assert client.browse("chromium", url, log)[0] == "refused"
    assert client.browse("firefox", url, log, profile=profile)[0] == "refused"

    cp = client.meshctl("trust", "install")
    assert cp.returncode == 0, f"trust install: {cp.stdout}{cp.stderr}"
    chromium_policy = client.upper / "chromium" / "policies" / "managed" / "meshd.json"
    assert chromium_policy.exists(), cp.stdout
    doc = json.loads(policies.read_text())["policies"]
    assert doc["DisableTelemetry"] is True, doc
    assert doc["SecurityDevices"]["Add"][FIREFOX_DEVICE].endswith("/p11-kit-trust.so"), doc

    verdict, dom, data = client.browse("chromium", url, log)
    assert verdict == "loaded", dom
    assert BODY in dom, dom
    assert_hsts(data, url)
    verdict, out, _ = client.browse("firefox", url, log, profile=profile)
    assert verdict == "loaded", out

    cp = client.meshctl("trust", "install")
    assert cp.returncode == 0 and "Already trusted" in cp.stdout, f"second install: {cp.stdout}{cp.stderr}"
    assert "already" in cp.stdout.split("Firefox:")[1], cp.stdout

    cp = client.meshctl("trust", "remove")
    assert cp.returncode == 0, f"trust remove: {cp.stdout}{cp.stderr}"
    assert not (client.upper / "chromium" / "policies").exists(), "Chromium's policy directories stayed"
    assert json.loads(policies.read_text()) == {"policies": {"DisableTelemetry": True}}
    assert not list(client.local.iterdir())

    assert client.browse("chromium", url, log)[0] == "refused"
    # The same profile: it loaded the device, which now follows a store
    # without the mesh CA.
    assert client.browse("firefox", url, log, profile=profile)[0] == "refused"

    # Without the administrator's policies: meshctl's file and directories
    # come and go.
    shutil.rmtree(client.upper / "firefox")
    cp = client.meshctl("trust", "install")
    assert cp.returncode == 0 and policies.exists(), f"{cp.stdout}{cp.stderr}"
    cp = client.meshctl("trust", "remove")
    assert cp.returncode == 0, cp.stderr
    assert not (client.upper / "firefox").exists(), "Firefox's policy file or directories stayed"
    assert host_etc_state() == host_before, "the host's /etc changed"


def test_browsers_trust_per_user(lab, https_mesh):
    n2, url, log = https_mesh
    client = Client(lab, n2, "user")
    home = Path(tempfile.mkdtemp(prefix="meshlab-home-", dir="/tmp"))
    try:
        os.chown(home, USER, USER)
        home.chmod(0o700)
        # The user reaches meshd's socket as a member of group meshd would.
        os.chown(n2.socket, 0, USER)

        # A real user has started Firefox before: that makes the profile.
        cp = client.run("firefox-esr", "--headless", "--screenshot", home / "first.png", "about:blank",
                        user=USER, home=home, timeout=BROWSER_TIMEOUT)
        assert cp.returncode == 0, f"first Firefox start: {cp.stdout}{cp.stderr}"
        assert list(home.glob("**/profiles.ini")), "Firefox made no profile"

        assert client.browse("chromium", url, log, user=USER, home=home)[0] == "refused"
        assert client.browse("firefox", url, log, user=USER, home=home)[0] == "refused"

        cp = client.meshctl("trust", "install", "--user", user=USER, home=home)
        assert cp.returncode == 0, f"trust install --user: {cp.stdout}{cp.stderr}"
        assert "Chromium" in cp.stdout and "Firefox profile" in cp.stdout, cp.stdout
        assert (home / ".pki" / "nssdb" / "cert9.db").exists()
        assert stat.S_IMODE((home / ".pki").stat().st_mode) == 0o700

        verdict, dom, data = client.browse("chromium", url, log, user=USER, home=home)
        assert verdict == "loaded", dom
        assert BODY in dom, dom
        assert_hsts(data, url)
        verdict, out, _ = client.browse("firefox", url, log, user=USER, home=home)
        assert verdict == "loaded", out

        cp = client.meshctl("trust", "install", "--user", user=USER, home=home)
        assert cp.returncode == 0 and "now trusts" not in cp.stdout, f"second install: {cp.stdout}{cp.stderr}"

        cp = client.meshctl("trust", "remove", "--user", user=USER, home=home)
        assert cp.returncode == 0, f"trust remove --user: {cp.stdout}{cp.stderr}"
        for db in [home / ".pki" / "nssdb", *[p.parent for p in home.glob("**/cert9.db")]]:
            listing = client.run("certutil", "-L", "-d", f"sql:{db}", user=USER, home=home)
            assert listing.returncode == 0 and "meshd" not in listing.stdout, f"{db}: {listing.stdout}"

        assert client.browse("chromium", url, log, user=USER, home=home)[0] == "refused"
        assert client.browse("firefox", url, log, user=USER, home=home)[0] == "refused"

        cp = client.meshctl("trust", "remove", "--user", user=USER, home=home)
        assert cp.returncode == 0 and "none of" in cp.stdout, cp.stdout
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_trust_bad_input_changes_nothing(lab, https_mesh):
    """No certutil, a broken policies.json, no meshd: one line, exit 1,
    nothing written. The paths are moved with meshctl's variables."""
    n2, _, _ = https_mesh
    client = Client(lab, n2, "bad")
    home = lab.dir / "bad-home"
    home.mkdir()
    moved = lab.dir / "moved"
    moved.mkdir()
    env = {"MESHCTL_CA_CERTIFICATES_DIR": moved / "ca", "MESHCTL_CHROMIUM_POLICY_DIR": moved / "chromium",
           "MESHCTL_FIREFOX_POLICIES": moved / "policies.json"}

    cp = client.meshctl("trust", "install", "--user", home=home, env={"PATH": "/nonexistent"})
    assert cp.returncode == 1 and "certutil not found" in cp.stderr, f"{cp.stdout}{cp.stderr}"
    assert len(cp.stderr.strip().splitlines()) == 1, cp.stderr
    assert not list(home.iterdir())

    # root with a HOME that is not root's (sudo keeping the user's): refused.
    os.chown(home, USER, USER)
    cp = client.meshctl("trust", "install", "--user", home=home)
    assert cp.returncode == 1 and "belongs to another user" in cp.stderr, f"{cp.stdout}{cp.stderr}"
    assert not list(home.iterdir())
    os.chown(home, 0, 0)

    (moved / "policies.json").write_text('{"policies": {"DisableTelemetry": true,}\n')
    before = (moved / "policies.json").read_text()
    for verb in ("install", "remove"):
        cp = client.meshctl("trust", verb, env=env)
        assert cp.returncode == 1 and "not valid JSON" in cp.stderr, f"{verb}: {cp.stdout}{cp.stderr}"
        assert len(cp.stderr.strip().splitlines()) == 1, cp.stderr
    assert sorted(p.name for p in moved.iterdir()) == ["policies.json"]
    assert (moved / "policies.json").read_text() == before
    assert not (client.upper / "ssl").exists(), "update-ca-certificates ran"

    (moved / "policies.json").unlink()
    cp = client.meshctl("--socket", lab.dir / "no-such.sock", "trust", "install", env=env)
    assert cp.returncode == 1 and len(cp.stderr.strip().splitlines()) == 1, f"{cp.stdout}{cp.stderr}"
    assert not list(moved.iterdir())
    cp = client.meshctl("--socket", lab.dir / "no-such.sock", "trust", "install", "--user", home=home)
    assert cp.returncode == 1 and not list(home.iterdir()), f"{cp.stdout}{cp.stderr}"

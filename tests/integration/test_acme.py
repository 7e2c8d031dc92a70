# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 15: node certificates from a public ACME CA through DNS-01.

In the control server's namespace run pebble (Debian's test ACME CA, its
HTTPS with a certificate made here, validation queries sent to our
authoritative server) and Knot (authoritative for mesh.example.test, a
TSIG key allowed to update it). meshd-control serves with
--cert-issuer=acme; lego publishes the _acme-challenge record there by RFC
2136 with TSIG.

- A node gets n1.mesh.example.test through the normal path (`meshctl
  cert`): the certificate chains to pebble's root (fetched from pebble's
  management port), a client trusting only that root accepts it when n1
  serves it, an explicit renewal gives a new one, and no _acme-challenge
  record is left in the zone.
- A wrong TSIG key, Knot stopped and an order the CA fails (pebble asking a
  dead DNS server) each give one clear journal line on the control server
  naming the cause, the node keeps its certificate, and the server retries
  with a doubling wait.
- The CA's rate limit (a proxy in front of pebble answers newOrder with
  429 rateLimited): one clear line, the node keeps and serves its
  certificate, the server retries after a doubling wait and at the earliest
  when the problem's "retry after TIME UTC" says, and renews once the CA
  lets orders through.
- A CSR for a name the node does not own is refused as with the mesh CA; a
  CSR with the node's own addresses is answered "pending, ask for NAME
  alone".

Timings (2 cores, shared, release build): the happy path ~12 s, the
failures ~40 s (three failures, each waited out twice), the rate limit
~31 s, the refusals ~3 s, wildcard mode ~11 s.
"""

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import meshlab
from meshlab import wait_until
from test_ca import make_csr
from test_cert import HTTPS_PORT, BODY, VARLINK_CALL, serial, start_tls_server
from test_hub import api, register

DOMAIN = "mesh.example.test"
PEBBLE_PORT, PEBBLE_MGMT_PORT, PROXY_PORT = 14000, 15000, 14443
DNS_PORT = 53
RETRY = 2          # --acme-retry: the server's first wait after a failure


def tool_missing():
    for tool in ("pebble", "knotd", "kdig", "lego", "openssl", "curl"):
        if subprocess.run(["sh", "-c", f"command -v {tool} || test -x /usr/sbin/{tool}"],
                          capture_output=True).returncode != 0:
            return tool
    return None


class AcmeInfra:
    """pebble and knotd in the control namespace, on the control address."""

    def __init__(self, lab, ns, address):
        self.lab, self.ns, self.address = lab, ns, address
        self.dir = lab.dir / "acme-infra"
        self.dir.mkdir()
        self.knot_proc = self.pebble_proc = None
        d = self.dir
        # pebble's own HTTPS: a certificate for the control address; it is
        # what --acme-ca-bundle trusts (not pebble's issuing root)
        self.https_key, self.https_cert = d / "pebble-https.key", d / "pebble-https.pem"
        meshlab.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-nodes", "-keyout", self.https_key, "-out", self.https_cert, "-days", "2",
                     "-subj", "/CN=pebble", "-addext", f"subjectAltName=IP:{address}"])
        (d / "pebble.json").write_text(json.dumps({"pebble": {
            "listenAddress": f"{address}:{PEBBLE_PORT}",
            "managementListenAddress": f"{address}:{PEBBLE_MGMT_PORT}",
            "certificate": str(self.https_cert), "privateKey": str(self.https_key),
            "httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "",
            "externalAccountBindingRequired": False}}))
        secret = meshlab.run(["openssl", "rand", "-base64", "32"]).stdout.strip()
        wrong = meshlab.run(["openssl", "rand", "-base64", "32"]).stdout.strip()
        # BIND's syntax (tsig-keygen) for the good key, Knot's (keymgr -t) for the bad one
        self.tsig = d / "tsig.key"
        self.tsig.write_text(f'key "meshd-acme" {{\n\talgorithm hmac-sha256;\n\tsecret "{secret}";\n}};\n')
        self.tsig_wrong = d / "tsig-wrong.key"
        self.tsig_wrong.write_text(f"# hmac-sha256:meshd-acme:{wrong}\nkey:\n  - id: meshd-acme\n"
                                   f"    algorithm: hmac-sha256\n    secret: {wrong}\n")
        for f in (self.tsig, self.tsig_wrong):
            f.chmod(0o600)
        (d / "zone").write_text(f"$ORIGIN {DOMAIN}.\n@ 60 SOA ns hostmaster 1 60 60 600 60\n"
                                f"@ 60 NS ns\nns 60 A {address}\n")
        (d / "knot").mkdir()
        (d / "knot.conf").write_text(f"""server:
    listen: {address}@{DNS_PORT}
    rundir: {d}/knot
key:
  - id: meshd-acme
    algorithm: hmac-sha256
    secret: {secret}
acl:
  - id: update
    key: meshd-acme
    action: update
  - id: transfer
    address: {address}
    action: transfer
database:
    storage: {d}/knot
zone:
  - domain: {DOMAIN}
    file: {d}/zone
    acl: [update, transfer]
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
log:
  - target: stderr
    any: info
""")

    def start_knot(self):
        self.knot_proc = self.ns.popen(["knotd", "-c", self.dir / "knot.conf"], log=self.dir / "knot.log")
        wait_until(lambda: self.dig("SOA", DOMAIN, check=False).returncode == 0
                   and "SOA" in self.dig("SOA", DOMAIN, check=False).stdout, 15, what="knotd answering")

    def stop_knot(self):
        self.knot_proc.terminate()
        self.knot_proc.wait(10)

    def start_pebble(self, dns=None):
        env = {"PATH": "/usr/bin:/bin", "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_AUTHZREUSE": "0",
               "PEBBLE_WFE_NONCEREJECT": "0"}
        self.pebble_proc = self.ns.popen(
            ["pebble", "-config", self.dir / "pebble.json",
             "-dnsserver", dns or f"{self.address}:{DNS_PORT}"], log=self.dir / "pebble.log", env=env)
        wait_until(lambda: self.curl(f"https://{self.address}:{PEBBLE_PORT}/dir").returncode == 0, 20,
                   what="pebble's directory")

    def stop_pebble(self):
        self.pebble_proc.terminate()
        self.pebble_proc.wait(10)

    def curl(self, url, *extra):
        return self.ns.exec("curl", "-sS", "--max-time", "10", "--cacert", self.https_cert, *extra, url)

    def root(self) -> Path:
        """pebble's issuing root: the stand-in for a public root."""
        cp = self.curl(f"https://{self.address}:{PEBBLE_MGMT_PORT}/roots/0")
        assert cp.returncode == 0 and "BEGIN CERTIFICATE" in cp.stdout, cp.stderr
        path = self.dir / "pebble-root.pem"
        path.write_text(cp.stdout)
        return path

    def dig(self, *args, check=True):
        return self.ns.exec("kdig", f"@{self.address}", "-p", str(DNS_PORT), "+time=2", "+retry=0", *args,
                            check=check)

    def challenge_records(self) -> list[str]:
        cp = self.dig("AXFR", DOMAIN)
        return [line for line in cp.stdout.splitlines() if "_acme-challenge" in line]

    def acme_args(self, tsig=None, port=PEBBLE_PORT):
        return ["--cert-issuer=acme", f"--acme-directory=https://{self.address}:{port}/dir",
                "--acme-email=admin@example.test", f"--acme-ca-bundle={self.https_cert}",
                f"--dns-update-server={self.address}:{DNS_PORT}", f"--dns-update-tsig={tsig or self.tsig}",
                f"--acme-retry={RETRY}s"]


class AcmeControl(meshlab.Control):
    extra: list = []

    def argv(self):
        return [*super().argv(), *self.extra]


@pytest.fixture
def acme(lab):
    missing = tool_missing()
    if missing:
        raise FileNotFoundError(f"{missing} is missing: install pebble, knot, knot-dnsutils, lego (tools/setup)")
    ns = lab.add_host("control", lab.control_address)
    # lego's propagation check asks the zone's NS by name through the system
    # resolver: in this namespace (ip netns exec mounts it) that is Knot
    etc = Path("/etc/netns") / ns.name
    etc.mkdir(parents=True)
    try:
        (etc / "resolv.conf").write_text(f"nameserver {lab.control_address}\n")
        yield from acme_in(lab, ns)
    finally:
        shutil.rmtree(etc, ignore_errors=True)


def acme_in(lab, ns):
    infra = AcmeInfra(lab, ns, lab.control_address)
    infra.start_knot()
    infra.start_pebble()
    control = AcmeControl(lab, ns, lab.control_address, hub=False)
    lab.control = control
    lab.daemons.append(control)
    cp = control.command("init", "--url", control.url, "--domain", DOMAIN)
    control.pin = next(line.strip() for line in cp.stdout.splitlines() if line.strip().startswith("sha256//"))
    control.extra = infra.acme_args()
    control.start()
    control.wait_ready(20)
    yield infra, control


def restart_control(control, extra, before_start=None) -> int:
    """Returns where the new server's log starts."""
    control.stop()
    since = len(control.log.read_text(errors="replace"))
    if before_start:
        before_start()
    control.extra = extra
    control.start()
    control.wait_ready(20)
    return since


def node_cert_serial(node) -> str:
    return serial(node.state_dir / "certs" / "cert.pem")


def names_of(pem_path) -> str:
    return meshlab.run(["openssl", "x509", "-in", pem_path, "-noout", "-ext", "subjectAltName"]).stdout


def get_cert(node, *args, timeout=120):
    t0 = time.monotonic()
    cp = node.meshctl("cert", *args, timeout=timeout)
    return cp, time.monotonic() - t0


def test_acme_certificate_chains_to_public_root_and_renews(lab, acme):
    infra, control = acme
    key = control.authkey(reusable=True)
    n1 = lab.add_node("n1", authkey=key)
    n1.start()
    n1.wait_ready(30)

    out = lab.dir / "n1-tls"
    cp, took = get_cert(n1, "--out", out)
    print(f"first ACME certificate in {took:.1f} s")
    assert cp.returncode == 0, f"meshctl cert: {cp.stdout}{cp.stderr}\n{control.log_tail()}"
    crt, key_file = out / f"n1.{DOMAIN}.crt", out / f"n1.{DOMAIN}.key"
    sans = names_of(crt)
    assert f"DNS:n1.{DOMAIN}" in sans and "IP Address" not in sans, sans

    # chains to pebble's root, through the intermediates in the full chain
    root = infra.root()
    cp = meshlab.run(["openssl", "verify", "-CAfile", root, "-untrusted", crt, crt], check=False)
    assert cp.returncode == 0, f"openssl verify: {cp.stdout}{cp.stderr}"

    # a client trusting only pebble's root accepts n1 serving it
    start_tls_server(lab, n1, crt, key_file)
    url = f"https://n1.{DOMAIN}:{HTTPS_PORT}/"
    resolve = f"n1.{DOMAIN}:{HTTPS_PORT}:{n1.address}"
    cp = control.ns.exec("curl", "-sS", "--max-time", "10", "--cacert", root, "--resolve", resolve, url)
    assert cp.returncode == 0 and cp.stdout.strip() == BODY, f"curl: rc {cp.returncode} {cp.stderr}"
    cp = control.ns.exec("curl", "-sS", "--max-time", "10", "--cacert", infra.https_cert,
                         "--resolve", resolve, url)
    assert cp.returncode == 60, f"curl without pebble's root: rc {cp.returncode} {cp.stderr}"

    # the challenge record was there (Knot logged the update) and is gone
    knot_log = (infra.dir / "knot.log").read_text()
    assert "DDNS" in knot_log, knot_log[-2000:]
    assert infra.challenge_records() == [], infra.challenge_records()

    # renewal: a new certificate, the same path
    before = node_cert_serial(n1)
    cp, took = get_cert(n1, "--renew")
    print(f"renewal in {took:.1f} s")
    assert cp.returncode == 0, f"meshctl cert --renew: {cp.stdout}{cp.stderr}\n{control.log_tail()}"
    after = node_cert_serial(n1)
    assert after != before
    certs = n1.state_dir / "certs"
    cp = meshlab.run(["openssl", "verify", "-CAfile", root, "-untrusted", certs / "fullchain.pem",
                      certs / "cert.pem"], check=False)
    assert cp.returncode == 0, f"renewed: {cp.stdout}{cp.stderr}"
    assert infra.challenge_records() == []
    # a restarted meshd loads the ACME set as its own, no new order
    orders = control.log.read_text().count("Started an ACME order")
    n1.restart()
    n1.wait_ready(30)
    cp, _ = get_cert(n1)
    assert cp.returncode == 0 and node_cert_serial(n1) == after, cp.stderr
    assert "Loaded certificate" in n1.log.read_text()
    assert control.log.read_text().count("Started an ACME order") == orders

    # the node learned the issuer's name once
    assert n1.log.read_text().count(f"certifies n1.{DOMAIN} only") == 1
    # GetCertificateAuthority (what `meshctl trust` installs) is still the
    # mesh CA, not pebble's chain
    cp = n1.exec(meshlab.PYTHON, "-c", VARLINK_CALL, n1.socket, "io.meshd.GetCertificateAuthority")
    reply = json.loads(cp.stdout)
    assert reply["parameters"]["ca"] == control.secret_file("ca-cert.pem").read_text(), reply


def failure_lines(control, since: int) -> list[str]:
    text = control.log.read_text(errors="replace")[since:]
    return re.findall(r"ACME order for n1\.\S+ \(node n1\) failed: .*", text)


def expect_failure(control, node, cause: str, since: int):
    """meshctl cert --renew fails naming cause; the node keeps its
    certificate; the server tries again after RETRY s, then 2·RETRY s."""
    before = node_cert_serial(node)
    cp, took = get_cert(node, "--renew")
    print(f"failure ({cause}) reported in {took:.1f} s")
    assert cp.returncode != 0, cp.stdout
    assert cause in cp.stderr, f"meshctl cert: {cp.stderr}"
    lines = wait_until(lambda: (lambda ls: ls if len(ls) >= 2 else None)(failure_lines(control, since)),
                       30, what="a second try after the backoff")
    assert cause in lines[0] and "failure 1" in lines[0] and f"in {RETRY} s" in lines[0], lines
    assert "failure 2" in lines[1] and f"in {2 * RETRY} s" in lines[1], lines
    assert node_cert_serial(node) == before
    assert (node.state_dir / "certs" / "key.pem").exists()
    assert cause in node.log.read_text(errors="replace")


def test_acme_failures_keep_the_old_certificate(lab, acme):
    infra, control = acme
    key = control.authkey(reusable=True)
    n1 = lab.add_node("n1", authkey=key)
    n1.start()
    n1.wait_ready(30)
    cp, _ = get_cert(n1)
    assert cp.returncode == 0, f"meshctl cert: {cp.stdout}{cp.stderr}\n{control.log_tail()}"

    # wrong TSIG key: Knot says BADSIG
    since = restart_control(control, infra.acme_args(tsig=infra.tsig_wrong))
    expect_failure(control, n1, "refused the TSIG key", since)
    assert infra.challenge_records() == []

    # the DNS server down
    since = restart_control(control, infra.acme_args(), before_start=infra.stop_knot)
    expect_failure(control, n1, "did not answer", since)

    # the order fails at the CA: pebble validates against a dead DNS server
    # (a new pebble forgets accounts: lego's is removed too)
    def new_pebble():
        infra.start_knot()
        infra.stop_pebble()
        shutil.rmtree(control.state_dir / "acme" / "accounts")
        infra.start_pebble(dns=f"{infra.address}:1")
    since = restart_control(control, infra.acme_args(), before_start=new_pebble)
    expect_failure(control, n1, "ACME CA refused the order", since)
    assert infra.challenge_records() == [], "a failed order left its challenge record"


def test_acme_names_a_node_does_not_own(lab, acme, tmp_path):
    _, control = acme
    key = control.authkey(reusable=True)
    nodes = {n: register(control, key.key, n) for n in ("nas", "backup")}
    token = nodes["nas"]["token"]
    backup = nodes["backup"]["netmap"]["self"]
    for what, cn, sans in (("other-name", f"backup.{DOMAIN}", []),
                           ("other-address", f"nas.{DOMAIN}", [f"IP:{backup['ipv4']}"]),
                           ("wildcard", f"*.{DOMAIN}", []),
                           ("foreign", f"nas.{DOMAIN}", ["DNS:www.example.com"])):
        csr, _ = make_csr(tmp_path, cn, sans, tag=what)
        status, data = api(control, "POST", "/v1/cert", {"csr": csr}, token=token)
        assert status == 403 and "not a name of node nas" in data["error"], (what, status, data)
    # its own name and address: told to ask for the name alone, nothing ordered
    nas = nodes["nas"]["netmap"]["self"]
    csr, _ = make_csr(tmp_path, f"nas.{DOMAIN}", [f"DNS:nas.{DOMAIN}", f"IP:{nas['ipv4']}"], tag="own")
    status, data = api(control, "POST", "/v1/cert", {"csr": csr}, token=token)
    assert status == 202 and data["status"] == "pending" and data["names"] == [f"nas.{DOMAIN}"], data
    assert "ACME order" not in control.log.read_text()


def test_acme_wildcard_mode(lab, acme):
    """--acme-wildcard: the node's certificate names *.DOMAIN only (its host
    name stays out of CT logs) and still chains to pebble's root."""
    infra, control = acme
    restart_control(control, [*infra.acme_args(), "--acme-wildcard"])
    n1 = lab.add_node("n1", authkey=control.authkey())
    n1.start()
    n1.wait_ready(30)
    t0 = time.monotonic()
    out = lab.dir / "wildcard-copies"
    cp = n1.meshctl("cert", "--json", f"--out={out}", timeout=120)
    print(f"wildcard certificate in {time.monotonic() - t0:.1f} s")
    assert cp.returncode == 0, f"{cp.stderr}\n{control.log_tail()}"
    reply = json.loads(cp.stdout)
    assert reply.get("names") == [f"*.{DOMAIN}"], f"{reply}\n{control.log_tail()}"
    # the copies are named after the domain, never "*.…"
    assert sorted(p.name for p in out.iterdir()) == ["mesh-ca.crt", f"wildcard.{DOMAIN}.crt",
                                                     f"wildcard.{DOMAIN}.key"]
    certs = n1.state_dir / "certs"
    sans = names_of(certs / "cert.pem")
    assert f"DNS:*.{DOMAIN}" in sans and "n1" not in sans and "IP Address" not in sans, sans
    cp = meshlab.run(["openssl", "verify", "-CAfile", infra.root(), "-untrusted", certs / "fullchain.pem",
                      certs / "cert.pem"], check=False)
    assert cp.returncode == 0, f"openssl verify: {cp.stdout}{cp.stderr}"
    assert infra.challenge_records() == []


# An HTTPS proxy in front of pebble (which cannot simulate a rate limit):
# passes everything through, but answers newOrder with 429 and an RFC 8555
# problem document as long as the control file's "refuse" count is > 0.
# Host goes through unchanged, so pebble builds its URLs (JWS "url", "kid")
# for the proxy; any URL of pebble's own address left in the directory,
# other bodies, Location or Link is rewritten to the proxy all the same.
RATE_LIMIT_PROXY = r"""
import http.client, http.server, json, os, ssl, sys, time
listen, port, upstream, cert, key, control, log = sys.argv[1:8]
mine, theirs = f"https://{listen}:{port}".encode(), f"https://{upstream}".encode()
new_order = ["/order-plz"]

def policy():
    with open(control) as f:
        return json.load(f)

class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def refuse(self, p):
        p["refuse"] -= 1
        with open(control + ".new", "w") as f:
            json.dump(p, f)
        os.replace(control + ".new", control)
        body = json.dumps({"type": "urn:ietf:params:acme:error:rateLimited", "status": 429,
                           "detail": p["detail"]}).encode()
        self.send_response(429)
        self.send_header("Content-Type", "application/problem+json")
        self.send_header("Retry-After", str(p.get("retry_after", 3600)))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.command == "POST" and self.path in new_order:
            p = policy()
            with open(log, "a") as f:
                f.write(f"{time.time():.3f} {'refused' if p['refuse'] > 0 else 'passed'}\n")
            if p["refuse"] > 0:
                return self.refuse(p)
        ctx = ssl.create_default_context(cafile=cert)
        conn = http.client.HTTPSConnection(upstream, context=ctx, timeout=30)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("connection", "content-length", "accept-encoding")}
        conn.request(self.command, self.path, body=body if self.command == "POST" else None, headers=headers)
        r = conn.getresponse()
        data = r.read().replace(theirs, mine)
        if self.path.endswith("/dir"):
            new_order[:] = [json.loads(data)["newOrder"].split(port, 1)[1]]
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "content-length", "transfer-encoding"):
                self.send_header(k, v.replace(theirs.decode(), mine.decode()))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_POST = do_HEAD = forward

server = http.server.ThreadingHTTPServer((listen, int(port)), Proxy)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""


class RateLimitProxy:
    def __init__(self, infra):
        self.infra, d = infra, infra.dir
        self.control, self.log = d / "proxy-policy.json", d / "proxy-orders.log"
        self.set(0)
        self.log.write_text("")
        (d / "proxy.py").write_text(RATE_LIMIT_PROXY)
        # pebble's HTTPS certificate names the control address: lego trusts
        # the proxy through the same --acme-ca-bundle
        self.proc = infra.ns.popen([meshlab.PYTHON, d / "proxy.py", infra.address, str(PROXY_PORT),
                                    f"{infra.address}:{PEBBLE_PORT}", infra.https_cert, infra.https_key,
                                    self.control, self.log], log=d / "proxy.err")
        wait_until(lambda: infra.curl(f"https://{infra.address}:{PROXY_PORT}/dir").returncode == 0, 15,
                   what="the proxy's directory")

    def set(self, refuse, detail="", retry_after=3600):
        self.control.write_text(json.dumps({"refuse": refuse, "detail": detail, "retry_after": retry_after}))

    def orders(self) -> list[tuple[float, str]]:
        return [(float(t), what) for t, what in (line.split() for line in self.log.read_text().splitlines())]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def served_serial(node, tmp: Path) -> str:
    """The serial of the certificate meshd serves (GetCertificate)."""
    cp = node.exec(meshlab.PYTHON, "-c", VARLINK_CALL, node.socket, "io.meshd.GetCertificate")
    pem = json.loads(cp.stdout)["parameters"]["certificate"]
    tmp.write_text(pem)
    return serial(tmp)


def wait_renewed(node, before: str, timeout: float) -> str:
    return wait_until(lambda: (lambda s: s if s != before else None)(node_cert_serial(node)), timeout,
                      what="the renewal once the CA lets orders through")


def test_acme_rate_limit_keeps_the_old_certificate(lab, acme):
    """The CA answers newOrder with 429 rateLimited (a proxy in front of
    pebble): one clear journal line, the node keeps (and serves) its
    certificate, the server retries after RETRY s, then 2·RETRY s, and the
    renewal succeeds once the CA lets orders through. A 'retry after TIME
    UTC' in the problem (as Let's Encrypt writes it) is honoured even when
    longer than our own backoff; lego ignores the Retry-After header (one
    newOrder per run, never retried)."""
    infra, control = acme
    proxy = RateLimitProxy(infra)
    try:
        rate_limit_through(lab, infra, control, proxy)
    finally:
        proxy.stop()


def rate_limit_through(lab, infra, control, proxy):
    restart_control(control, infra.acme_args(port=PROXY_PORT))
    n1 = lab.add_node("n1", authkey=control.authkey(reusable=True))
    n1.start()
    n1.wait_ready(30)
    cp, _ = get_cert(n1)
    assert cp.returncode == 0, f"meshctl cert through the proxy: {cp.stdout}{cp.stderr}\n{control.log_tail()}"
    assert proxy.orders() and proxy.orders()[-1][1] == "passed", proxy.orders()
    first = node_cert_serial(n1)
    tmp = lab.dir / "served.pem"
    assert served_serial(n1, tmp) == first

    # two orders refused, a generic detail: our own backoff, RETRY s then 2·RETRY s
    proxy.set(2, "too many new orders recently")
    since = len(control.log.read_text(errors="replace"))
    n_orders = len(proxy.orders())
    t0 = time.monotonic()
    expect_failure(control, n1, "rate limit was hit", since)
    line = failure_lines(control, since)[0]
    print(line)
    assert "rateLimited" in line and "too many new orders recently" in line, line
    assert served_serial(n1, tmp) == first
    second = wait_renewed(n1, first, 30)
    print(f"rate limit twice, then renewed in {time.monotonic() - t0:.1f} s")
    assert served_serial(n1, tmp) == second
    # one newOrder per lego run: lego does not retry a 429 itself
    orders = proxy.orders()[n_orders:]
    assert [what for _, what in orders] == ["refused", "refused", "passed"], orders
    # measured at the CA: no order before the backoff (whole seconds: -1)
    assert orders[1][0] - orders[0][0] >= RETRY - 1, orders
    assert orders[2][0] - orders[1][0] >= 2 * RETRY - 1, orders

    # the CA asks for a longer wait than ours, in its detail
    wait = 4 * RETRY
    until = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + wait))
    proxy.set(1, f"too many certificates already issued, retry after {until} UTC: see https://ca/rate-limits",
              retry_after=wait)
    since = len(control.log.read_text(errors="replace"))
    n_orders = len(proxy.orders())
    cp, _ = get_cert(n1, "--renew")
    assert cp.returncode != 0 and "rate limit was hit" in cp.stderr, f"{cp.stdout}{cp.stderr}"
    lines = failure_lines(control, since)
    print(lines[0])
    m = re.search(r"next try in (\d+) s at the earliest, as the CA asked \(failure 1\)", lines[0])
    assert m and wait - 2 <= int(m.group(1)) <= wait, lines
    assert node_cert_serial(n1) == second and served_serial(n1, tmp) == second
    third = wait_renewed(n1, second, 30)
    assert served_serial(n1, tmp) == third
    orders = proxy.orders()[n_orders:]
    assert [what for _, what in orders] == ["refused", "passed"], orders
    assert orders[1][0] - orders[0][0] >= wait - 2, orders

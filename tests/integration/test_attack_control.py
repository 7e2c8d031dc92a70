# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 11, items 2 and 3: a node distrusts its control server.

A node joins a real control server. Then the control server is replaced by
a HOSTILE one on the same address, with the same TLS key and certificate
(taken from the control's state directory: the pin matches, the control
server itself is compromised). It answers GET /v1/netmap with a netmap
that would hijack names or traffic, and GET /v1/ca with a CA that could
vouch for any name. The attacker's view: the node keeps its last good
netmap (peers, WireGuard peers, routes, hosts table, cache unchanged), NSS
never answers the foreign name, the node logs one clear refusal line, and
`meshctl trust install` refuses the CA and writes nothing.

Also: a corrupt node.json is set aside with one clear line, the node starts
as one that has not joined, and can join again.

Run as a script, this file is the hostile server:
    python3 test_attack_control.py hostile --listen IP:PORT --cert C --key K --scenario FILE
"""

from __future__ import annotations

import copy
import ipaddress
import json
import sys
from pathlib import Path

import pytest

import meshlab
from meshlab import wait_until

HERE = Path(__file__).resolve()
REFUSED = "from the control server: "


# ------------------------------------------------------------ the hostile server

class HostileControl(meshlab.Daemon):
    """Serves scenario["netmap"] (or a delta, scenario["delta"]) and
    scenario["ca"] with the real control server's TLS identity."""

    def __init__(self, lab, control, scenario: dict, tag: str):
        d = lab.dir / f"hostile-{tag}"
        d.mkdir(parents=True, exist_ok=True)
        super().__init__(lab, control.ns, f"hostile-{tag}", d / "hostile.log",
                         lab.short / f"hostile-{tag}.notify")
        self.address, self.port = control.address, control.port
        self.scenario_file = d / "scenario.json"
        self.scenario_file.write_text(json.dumps(scenario))
        self.cert = control.secret_file("tls-cert.pem")
        self.key = control.secret_file("tls-key.pem")

    def argv(self):
        return [meshlab.PYTHON, HERE, "hostile", "--listen", f"{self.address}:{self.port}",
                "--cert", self.cert, "--key", self.key, "--scenario", self.scenario_file]

    def requests(self, prefix: str) -> int:
        return sum(1 for line in self.log_tail(10000).splitlines()
                   if line.startswith(f"request {prefix}"))


def _hostile_main(argv):
    import argparse
    import http.server
    import urllib.parse

    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--scenario", required=True)
    a = ap.parse_args(argv)
    scenario = json.loads(Path(a.scenario).read_text())

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self):
            n = int(self.headers.get("Content-Length") or 0)
            request = self.rfile.read(n)
            print(f"request {self.command} {self.path}", flush=True)
            url = urllib.parse.urlparse(self.path)
            query = urllib.parse.parse_qs(url.query)
            since = int(query.get("since", ["0"])[0])
            if self.command == "POST" and url.path == "/v1/challenge":   # any challenge: the node proves its key to whoever asks
                self._send(200, json.dumps({"challenge": "hostile", "server_key": meshlab.keypair()[1],
                                            "expires": 0}).encode())
            elif self.command == "POST" and url.path == "/v1/register" and scenario.get("register"):
                key = json.loads(request)["public_key"]
                self._send(200, json.dumps(scenario["register"]).replace("__SELF__", key).encode())
            elif self.command == "GET" and url.path == "/v1/netmap":
                if scenario.get("delta") and since > 0 and query.get("delta") == ["1"]:
                    body = dict(scenario["delta"], delta_from=since)
                else:
                    body = scenario["netmap"]
                self._send(200, json.dumps(body).encode())
            elif self.command == "GET" and url.path == "/v1/ca":
                self._send(200, json.dumps({"ca": scenario["ca"],
                                            "domain": scenario["netmap"]["domain"]}).encode())
            elif self.command == "POST" and url.path in ("/v1/endpoints", "/v1/paths"):
                self._send(204, b"")
            else:
                self._send(500, b'{"error": "hostile"}')

        def _send(self, code, body):
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()

        do_GET = do_POST = _answer

        def log_message(self, fmt, *args):
            pass

    meshlab.serve_https(Handler, a.listen, a.cert, a.key, "hostile control")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "hostile":
        _hostile_main(sys.argv[2:])
        sys.exit(0)


# ------------------------------------------------------------ helpers

def make_ca(lab, name: str, constraints: str | None) -> str:
    """A self-signed CA:TRUE certificate (PEM); constraints: an openssl
    nameConstraints value, or None for an unconstrained CA."""
    d = lab.dir / f"ca-{name}"
    d.mkdir()
    ext = ["-addext", "basicConstraints=critical,CA:TRUE",
           "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    if constraints:
        ext += ["-addext", f"nameConstraints={constraints}"]
    meshlab.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", d / "key.pem", "-out", d / "cert.pem", "-days", "2",
                 "-subj", f"/CN={name}", *ext])
    return (d / "cert.pem").read_text()


def mesh_constraints(netmap: dict) -> str:
    parts = [f"permitted;DNS:{netmap['domain']}"]
    for key in ("ipv4_range", "ipv6_range"):
        if netmap.get(key):
            net = ipaddress.ip_network(netmap[key])
            parts.append(f"permitted;IP:{net.network_address}/{net.netmask.exploded}")
    return "critical," + ",".join(parts)


def snapshot(node) -> dict:
    """What a hostile netmap must not change."""
    wg = node.wg_show()
    return {
        "peers": sorted((p["name"], p.get("ipv4"), p.get("ipv6")) for p in node.peers()),
        "wg": {k: sorted(p.allowed_ips) for k, p in wg.peers.items()} if wg else None,
        "endpoints": {k: p.endpoint for k, p in wg.peers.items()} if wg else None,
        "routes": routes(node),
        "hosts": (node.runtime_dir / "hosts").read_text(),
        "netmap.json": (node.state_dir / "netmap.json").read_bytes(),
    }


def routes(node) -> list[str]:
    """The main tables; IPv6 link-local routes come and go with the
    interfaces' own addresses and say nothing about the netmap."""
    lines = []
    for family in ("-4", "-6"):
        out = node.exec("ip", family, "route", "show", check=True).stdout
        lines += [line for line in out.splitlines() if not line.startswith("fe80:")]
    return sorted(lines)


def log_lines(node, text: str) -> list[str]:
    return [line for line in node.log.read_text(errors="replace").splitlines() if text in line]


@pytest.fixture
def pair(lab, control):
    """alpha and beta joined and reaching each other; alpha's NSS resolver."""
    key = control.authkey(reusable=True)
    nodes = {n: lab.add_node(n, authkey=key) for n in ("alpha", "beta")}
    for n in nodes.values():
        n.start()
    for n in nodes.values():
        n.wait_ready(30)
    for n in nodes.values():
        wait_until(lambda: n.status().get("peers_reachable") == 1, 20, what=f"{n.name} reaching its peer")
    return nodes


def go_hostile(lab, control, scenario: dict, tag: str) -> HostileControl:
    control.stop()
    hostile = HostileControl(lab, control, scenario, tag)
    lab.daemons.append(hostile)
    hostile.start()
    hostile.wait_ready(10)
    return hostile


# ------------------------------------------------------------ hostile netmaps

def _peer(nm, name):
    return next(p for p in nm["peers"] if p["name"] == name)


def public_domain(nm, suffix, label):
    nm["domain"] = suffix
    _peer(nm, "beta")["name"] = label
    return [f"{label}.{suffix}"]


def wide_ranges(nm):
    nm["ipv4_range"], nm["ipv6_range"] = "0.0.0.0/1", "2000::/3"
    beta = _peer(nm, "beta")
    beta["ipv4"], beta["ipv6"] = "8.8.8.8", "2001:4860:4860::8888"
    nm["self"].pop("ipv6", None)
    nm.get("hub", {}).pop("ipv6", None)
    return []   # beta stays a name; what must not change is its address


def peer_outside(nm):
    # 100.0.0.0/9 holds the pinned 100.64.0.0/10 and more; beta moves out of the pinned range
    nm["ipv4_range"] = "100.0.0.0/9"
    _peer(nm, "beta")["ipv4"] = "100.1.2.3"
    return []


def junk_endpoints(nm):
    _peer(nm, "beta")["endpoints"] = ["127.0.0.1:22", "[::1]:22"]
    return []


SCENARIOS = {
    # name: (mutation, the refusal's reason)
    "domain-com": (lambda nm: public_domain(nm, "com", "www"),
                   "domain 'com' differs from 'mesh.internal' pinned at join"),
    "domain-co-uk": (lambda nm: public_domain(nm, "co.uk", "google"),
                     "domain 'co.uk' differs from 'mesh.internal' pinned at join"),
    "range-0-1": (wide_ranges, "ipv4_range 0.0.0.0/1 differs from 100.64.0.0/10 pinned at join"),
    "peer-outside-pinned-range": (peer_outside,
                                  "ipv4_range 100.0.0.0/9 differs from 100.64.0.0/10 pinned at join"),
    "junk-endpoints": (junk_endpoints, "beta endpoint 127.0.0.1:22 is not an address to send to"),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_attack_hostile_netmap_is_refused(lab, control, pair, name):
    alpha, beta = pair["alpha"], pair["beta"]
    nss = meshlab.NssResolver(lab, alpha, meshlab.write_nsswitch(lab, alpha, True))
    beta_v4 = beta.status()["ipv4"]
    assert nss.addresses("ahostsv4", "beta.mesh.internal") == {beta_v4}
    before = snapshot(alpha)

    real = json.loads((alpha.state_dir / "netmap.json").read_text())
    hostile_nm = copy.deepcopy(real)
    hostile_nm["version"] = real["version"] + 1000
    mutate, reason = SCENARIOS[name]
    foreign = mutate(hostile_nm)
    hostile = go_hostile(lab, control, {"netmap": hostile_nm, "ca": ""}, name)

    wait_until(lambda: log_lines(alpha, reason), 40,
               what=f"alpha refusing the hostile netmap ({reason})")
    # served at least once more after the refusal: it stays refused, quietly
    n = hostile.requests("GET /v1/netmap")
    wait_until(lambda: hostile.requests("GET /v1/netmap") > n, 40, what="another poll of the hostile server")

    refusals = log_lines(alpha, f"Refusing netmap version {hostile_nm['version']} {REFUSED}")
    assert len(refusals) == 1, f"want one refusal line, got {refusals}"
    assert reason in refusals[0] and f"keeping netmap version {real['version']}" in refusals[0], refusals[0]
    assert alpha.running, "meshd exited"
    assert snapshot(alpha) == before, "the hostile netmap changed alpha"
    for fqdn in foreign:
        assert nss.getent("hosts", fqdn).returncode == 2, f"NSS answers {fqdn}"
    assert nss.addresses("ahostsv4", "beta.mesh.internal") == {beta_v4}
    assert nss.addresses("ahostsv4", "beta") == {beta_v4}
    assert nss.getent("hosts", "google.com").returncode == 2


def test_attack_hostile_delta_is_refused(lab, control, pair):
    """The same through a NETMAP DELTA: the merged netmap is checked."""
    alpha = pair["alpha"]
    nss = meshlab.NssResolver(lab, alpha, meshlab.write_nsswitch(lab, alpha, True))
    before = snapshot(alpha)
    real = json.loads((alpha.state_dir / "netmap.json").read_text())
    delta = {k: v for k, v in real.items() if k != "peers"}
    delta.update(version=real["version"] + 1000, domain="com", peers_removed=[],
                 peers_changed=[dict(_peer(real, "beta"), name="www")])
    full = dict(copy.deepcopy(real), version=real["version"] + 1000, domain="com")
    go_hostile(lab, control, {"netmap": full, "delta": delta, "ca": ""}, "delta")

    reason = "domain 'com' differs from 'mesh.internal' pinned at join"
    wait_until(lambda: log_lines(alpha, reason), 40, what="alpha refusing the hostile delta")
    assert snapshot(alpha) == before
    assert nss.getent("hosts", "www.com").returncode == 2


# ------------------------------------------------------------ hostile join

JOIN_SCENARIOS = {
    "single-label": ("com", "100.64.0.0/10", "domain 'com' is a single label"),
    "public-suffix": ("github.io", "100.64.0.0/10", "domain 'github.io' is a public suffix"),
    "range-0-1": ("mesh.internal", "0.0.0.0/1", "ipv4_range 0.0.0.0/1 is not inside"),
    "overlaps-underlay": ("mesh.internal", "10.99.0.0/16", "ipv4_range 10.99.0.0/16 overlaps 10.99.0."),
}


@pytest.mark.parametrize("name", sorted(JOIN_SCENARIOS))
def test_attack_hostile_join_is_refused(lab, name):
    """`meshctl up` to a server offering an unsafe mesh fails with the reason."""
    from test_errors import assert_up_fails_cleanly

    control = lab.add_control(start=False)
    alpha = lab.add_node("alpha", join=False)
    alpha.ns.ip("addr", "add", "10.99.0.5/24", "dev", "eth0")   # a LAN in private space
    alpha.start()
    alpha.wait_api(10)
    domain, v4range, reason = JOIN_SCENARIOS[name]
    base = v4range.split("/")[0].rsplit(".", 1)[0]
    register = {"node_id": 1, "name": "alpha", "token": "t", "netmap": {
        "version": 1, "domain": domain, "ipv4_range": v4range,
        "self": {"name": "alpha", "public_key": "__SELF__", "ipv4": f"{base}.2", "endpoints": []},
        "peers": [{"name": "www", "public_key": meshlab.fake_public_key(), "ipv4": f"{base}.3",
                   "endpoints": ["192.0.2.99:41641"]}]}}
    go_hostile(lab, control, {"register": register, "netmap": register["netmap"], "ca": ""}, name)

    line = assert_up_fails_cleanly(alpha, control.url, "mskey-whatever", control.pin)
    assert "refusing the control server's netmap" in line and reason in line, line
    refusals = log_lines(alpha, "Refusing to join the mesh at")
    assert len(refusals) == 1 and reason in refusals[0], refusals
    assert not (alpha.state_dir / "node.json").exists()


# ------------------------------------------------------------ hostile CA

def test_attack_unconstrained_ca_is_refused(lab, control, pair):
    from test_cert import TrustStore, host_trust_store

    alpha = pair["alpha"]
    real = json.loads((alpha.state_dir / "netmap.json").read_text())
    host_before = host_trust_store()
    go_hostile(lab, control, {"netmap": real, "ca": make_ca(lab, "evil", None)}, "ca")

    trust = TrustStore(lab, alpha)
    cp = trust.meshctl("trust", "install")
    lines = cp.stderr.strip().splitlines()
    assert cp.returncode != 0, f"trust install accepted an unconstrained CA: {cp.stdout}"
    assert len(lines) == 1 and "no name constraints" in lines[0], cp.stderr
    assert list(trust.local.iterdir()) == [], "trust install wrote a file"
    assert host_trust_store() == host_before
    refusals = log_lines(alpha, "Refusing the mesh CA from the control server: the CA has no name constraints")
    assert len(refusals) == 1, refusals


def test_attack_other_ca_than_pinned_is_refused(lab, control, pair):
    """A CA confined to the mesh, but not the one pinned at the first fetch."""
    from test_cert import TrustStore

    alpha = pair["alpha"]
    trust = TrustStore(lab, alpha)
    cp = trust.meshctl("trust", "install")
    assert cp.returncode == 0, f"trust install of the real CA: {cp.stderr}"
    installed = {p.name: p.read_bytes() for p in trust.local.iterdir()}
    assert len(installed) == 1
    assert "ca_sha256" in json.loads((alpha.state_dir / "node.json").read_text())

    real = json.loads((alpha.state_dir / "netmap.json").read_text())
    evil = make_ca(lab, "evil-constrained", mesh_constraints(real))
    go_hostile(lab, control, {"netmap": real, "ca": evil}, "ca-pin")
    alpha.restart()         # forgets the CA it holds in memory, not the pin
    alpha.wait_api(20)

    cp = trust.meshctl("trust", "install")
    assert cp.returncode != 0, f"trust install accepted another CA: {cp.stdout}"
    assert "is not the one pinned at join" in cp.stderr, cp.stderr
    assert {p.name: p.read_bytes() for p in trust.local.iterdir()} == installed


# ------------------------------------------------------------ upgrade, corrupt node.json

def test_pins_taken_from_first_netmap_after_upgrade(lab, control, pair):
    alpha = pair["alpha"]
    alpha.stop()
    path = alpha.state_dir / "node.json"
    creds = json.loads(path.read_text())
    for k in ("domain", "ipv4_range", "ipv6_range", "ca_sha256"):
        creds.pop(k, None)
    path.write_text(json.dumps(creds))
    alpha.start()
    alpha.wait_ready(30)
    # the line comes after node.json is written: wait for the later of the two
    wait_until(lambda: log_lines(alpha, "Pinned domain mesh.internal"), 20, what="the line saying pins were taken")
    pinned = json.loads(path.read_text())
    assert (pinned["domain"], pinned["ipv4_range"]) == ("mesh.internal", "100.64.0.0/10")
    assert len(log_lines(alpha, "Pinned domain mesh.internal")) == 1


@pytest.mark.parametrize("garbage", ["truncated", "missing-token"])
def test_corrupt_node_json_is_set_aside(lab, control, garbage):
    alpha = lab.add_node("alpha", join=False)
    alpha.start()
    alpha.wait_api(10)
    key = control.authkey(reusable=True)
    cp = alpha.meshctl("up", "--server", control.url, "--authkey", key.key, "--pin", control.pin)
    assert cp.returncode == 0, cp.stderr
    alpha.stop()

    path = alpha.state_dir / "node.json"
    private_key = (alpha.state_dir / "private.key").read_bytes()
    creds = json.loads(path.read_text())
    if garbage == "truncated":
        text = path.read_text()[:40]
    else:
        creds.pop("token")
        text = json.dumps(creds)
    path.write_text(text)

    alpha.start()
    alpha.wait_ready(20)
    wait_until(lambda: alpha.status().get("state") == "needs-login", 10, what="state needs-login")
    lines = log_lines(alpha, "node.json is corrupt")
    assert len(lines) == 1, lines
    assert "moved it to node.json.corrupt" in lines[0] and "meshctl up" in lines[0], lines[0]
    assert not path.exists() and not (alpha.state_dir / "netmap.json").exists()
    assert (alpha.state_dir / "node.json.corrupt").read_text() == text
    assert (alpha.state_dir / "private.key").read_bytes() == private_key
    assert not log_lines(alpha, "already registered")

    # The server takes the key's proof of possession as the node's
    # identity: the re-join gets the same node back.
    cp = alpha.meshctl("up", "--server", control.url, "--authkey", key.key, "--pin", control.pin)
    assert cp.returncode == 0, f"re-join: {cp.stderr}"
    assert alpha.status()["state"] != "needs-login"
    assert json.loads(path.read_text())["domain"] == "mesh.internal"
    rejoined = json.loads(path.read_text())
    assert (rejoined["node_id"], rejoined["name"]) == (creds["node_id"], creds["name"])

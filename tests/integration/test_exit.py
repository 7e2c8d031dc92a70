# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 16, exit nodes: `[Routes] ExitNode=NAME` on a client sends all
other traffic through that peer with wg-quick's policy routing (the mesh
interface's fwmark, `not fwmark M table T`, `table main suppress_prefixlength
0`, a default route in table T), while WireGuard's UDP and the control
connection carry the mark and stay on the underlay. Turning it off (the
key removed, the peer leaving the netmap, meshd stopping) restores
`ip rule` and every routing table exactly.

Topology: the client "alpha" and the exit node "exit" on the lab's underlay
bridge; alpha reaches the bridge through a default route (dev eth0, no
connected /24), as a laptop reaches its control server through its router,
so that only the mark keeps the control connection out of table T. A
"public" host at 203.0.113.2 hangs off the exit node alone (203.0.113.1).

Netmaps come from a small fake control server of this file (the real
server's TLS identity, one netmap per node token, re-read at every
request) until helper "routes" lets the real server approve 0.0.0.0/0 and
::/0: the exit peer gets "routes" there.

The exit node's masquerade towards the public host is meshd's own
(`table inet meshd`, ExitSNAT= yes by default: src/daemon/firewall-script.c),
so the public host sees the exit node's address as the source.
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import meshlab
from meshlab import wait_until

HERE = Path(__file__).resolve()
FWMARK = 0x13CA            # meshd.conf(5) ExitFwmark= default
PUBLIC_EXIT = "203.0.113.1"
PUBLIC_HOST = "203.0.113.2"
PUBLIC_PORT = 8080
ENABLED = "Sending all other traffic through exit node exit"
DISABLED = "Exit node exit is no longer used"


class ExitControl(meshlab.Daemon):
    """Serves scenario["netmaps"][TOKEN] to the node with that bearer token;
    the scenario file is re-read at every request (write() replaces it)."""

    def __init__(self, lab, control):
        d = lab.dir / "exit-control"
        d.mkdir(parents=True, exist_ok=True)
        super().__init__(lab, control.ns, "exit-control", d / "fake.log", lab.short / "exit-control.notify")
        self.address, self.port = control.address, control.port
        self.scenario_file = d / "scenario.json"
        self.cert = control.secret_file("tls-cert.pem")
        self.key = control.secret_file("tls-key.pem")

    def write(self, netmaps: dict):
        tmp = self.scenario_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"netmaps": netmaps}))
        os.replace(tmp, self.scenario_file)

    def argv(self):
        return [meshlab.PYTHON, HERE, "serve", "--listen", f"{self.address}:{self.port}",
                "--cert", self.cert, "--key", self.key, "--scenario", self.scenario_file]

    def polls(self, token: str) -> int:
        tag = token[:8]
        return sum(1 for line in self.log_tail(100000).splitlines() if line == f"poll {tag}")


def _serve_main(argv):
    import argparse
    import http.server
    import urllib.parse

    ap = argparse.ArgumentParser()
    for opt in ("--listen", "--cert", "--key", "--scenario"):
        ap.add_argument(opt, required=True)
    a = ap.parse_args(argv)

    def netmap_for(token):
        return json.loads(Path(a.scenario).read_text())["netmaps"].get(token)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            url = urllib.parse.urlparse(self.path)
            token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            if self.command == "GET" and url.path == "/v1/netmap":
                print(f"poll {token[:8]}", flush=True)
                since = int(urllib.parse.parse_qs(url.query).get("since", ["0"])[0])
                nm = netmap_for(token)
                # a short long-poll: a new version answers at once
                for _ in range(20):
                    if nm is None or nm["version"] > since:
                        break
                    time.sleep(0.1)
                    nm = netmap_for(token)
                if nm is None:
                    self._send(401, b'{"error": "unknown token"}')
                else:
                    self._send(200, json.dumps(nm).encode())
            elif self.command == "GET" and url.path == "/v1/ca":
                self._send(404, b'{"error": "no CA"}')
            elif self.command == "POST" and url.path in ("/v1/endpoints", "/v1/paths", "/v1/routes"):
                self._send(204, b"")
            else:
                self._send(500, b'{"error": "not in this test"}')

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

    meshlab.serve_https(Handler, a.listen, a.cert, a.key, "exit-node fake control")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        _serve_main(sys.argv[2:])
    sys.exit(0)


# ------------------------------------------------------------ helpers

def routing(ns) -> dict:
    """What turning the exit node off must give back exactly: every rule
    and every route of every table, IPv4 and IPv6, but IPv6 link-local
    ones (they come and go with the interfaces' own fe80:: addresses, DAD,
    and say nothing about meshd)."""
    return {what: [line for line in ns.ip(*args).stdout.splitlines() if "fe80:" not in line]
            for what, args in (
                ("rules4", ("-4", "rule")), ("rules6", ("-6", "rule")),
                ("routes4", ("-4", "route", "show", "table", "all")),
                ("routes6", ("-6", "route", "show", "table", "all")))}


def log_lines(node, text: str) -> list[str]:
    return [line for line in node.log.read_text(errors="replace").splitlines() if text in line]


def count_grows(node, text: str, before: int, timeout: float):
    wait_until(lambda: len(log_lines(node, text)) > before, timeout, what=f"{node.name}: {text!r}")


def reload(node):
    os.kill(node.proc.pid, signal.SIGHUP)


def set_exit_node_file(node, name: str | None):
    text = re.sub(r"\n\[Routes\]\n.*", "", node.config.read_text(), flags=re.S)
    if name is not None:
        text += f"\n[Routes]\nExitNode={name}\n"
    node.config.write_text(text)


def set_exit_node(node, name: str | None):
    set_exit_node_file(node, name)
    reload(node)


def token_of(node) -> str:
    return json.loads((node.state_dir / "node.json").read_text())["token"]


def seen_source(public, client) -> str | None:
    """A listener on the public host prints the peer address of the one
    connection the client makes to it."""
    import subprocess
    listener = subprocess.Popen(
        ["ip", "netns", "exec", public.name, meshlab.PYTHON, "-c",
         "import socket, sys\n"
         "s = socket.socket()\n"
         "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
         f"s.bind(('{PUBLIC_HOST}', {PUBLIC_PORT}))\n"
         "s.listen(1)\n"
         "print('listening', flush=True)\n"
         "s.settimeout(8)\n"
         "try:\n"
         "    c, peer = s.accept()\n"
         "    print(peer[0], flush=True)\n"
         "except socket.timeout:\n"
         "    print('none', flush=True)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline().strip() == "listening"
        client.exec(meshlab.PYTHON, "-c",
                    f"import socket; socket.create_connection(('{PUBLIC_HOST}', {PUBLIC_PORT}), timeout=5).close()",
                    timeout=15)
        out, _ = listener.communicate(timeout=15)
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
    seen = out.strip()
    return None if seen in ("", "none") else seen


def route_dev(ns, address: str, *extra) -> str:
    out = ns.ip("route", "get", address, *extra).stdout
    m = re.search(r"\bdev (\S+)", out)
    return m.group(1) if m else out


def exit_rules_present(ns) -> bool:
    rules = ns.ip("-4", "rule").stdout
    return (f"not from all fwmark {FWMARK:#x} lookup {FWMARK}" in rules
            and "from all lookup main suppress_prefixlength 0" in rules)


@pytest.fixture
def exit_lab(lab, control):
    """alpha (client, underlay through a default route), exit (exit node)
    and the public host behind exit; both nodes joined and reaching each
    other through the real control server."""
    key = control.authkey(reusable=True)
    alpha = lab.add_node("alpha", authkey=key)
    exitn = lab.add_node("exit", authkey=key)
    # alpha: the bridge through a default route, not a connected prefix
    alpha.ns.ip("route", "del", f"{meshlab.UNDERLAY}.0/24", "dev", "eth0")
    alpha.ns.ip("route", "add", "default", "dev", "eth0")
    public = lab._netns("public")
    exitn.ns.ip("link", "add", "pub0", "type", "veth", "peer", "name", "eth0", "netns", public.name)
    exitn.ns.ip("addr", "add", f"{PUBLIC_EXIT}/24", "dev", "pub0")
    exitn.ns.ip("link", "set", "pub0", "up")
    public.ip("addr", "add", f"{PUBLIC_HOST}/24", "dev", "eth0")
    public.ip("link", "set", "eth0", "up")
    before_start = routing(alpha.ns)
    for n in (alpha, exitn):
        n.start()
    for n in (alpha, exitn):
        n.wait_ready(30)
    wait_until(lambda: alpha.status().get("peers_reachable") == 1, 20, what="alpha reaching exit")
    return {"alpha": alpha, "exit": exitn, "public": public, "before_start": before_start}


def test_exit_node(lab, control, exit_lab):
    alpha, exitn, public = exit_lab["alpha"], exit_lab["exit"], exit_lab["public"]
    real_alpha = json.loads((alpha.state_dir / "netmap.json").read_text())
    real_exit = json.loads((exitn.state_dir / "netmap.json").read_text())
    tok_alpha, tok_exit = token_of(alpha), token_of(exitn)
    exit_key = exitn.status()["public_key"]
    version = max(real_alpha["version"], real_exit["version"]) + 1000

    def alpha_netmap(v, *, routes, with_exit=True):
        nm = copy.deepcopy(real_alpha)
        nm["version"] = v
        nm["peers"] = [p for p in nm["peers"] if with_exit or p["name"] != "exit"]
        for p in nm["peers"]:
            if p["name"] == "exit" and routes:
                p["routes"] = ["0.0.0.0/0", "::/0"]
        return nm

    exit_nm = dict(copy.deepcopy(real_exit), version=version)
    exit_nm["self"]["routes"] = ["0.0.0.0/0", "::/0"]

    # the fake control server takes over (the real one's TLS identity)
    control.stop()
    fake = ExitControl(lab, control)
    lab.daemons.append(fake)
    fake.write({tok_alpha: alpha_netmap(version, routes=False), tok_exit: exit_nm})
    fake.start()
    fake.wait_ready(10)

    # the exit node's side: forwarding is off in a new namespace, and said so
    wait_until(lambda: log_lines(exitn, "forwarding is off on"), 30, what="exit's forwarding error")
    assert any("net.ipv4.conf.pub0.forwarding=0" in line or f"net.ipv4.conf.{exitn.interface}.forwarding=0" in line
               for line in log_lines(exitn, "forwarding is off on")), log_lines(exitn, "forwarding is off on")
    exitn.exec("sysctl", "-qw", "net.ipv4.ip_forward=1", check=True)

    wait_until(lambda: fake.polls(tok_alpha) >= 2, 30, what="alpha polling the fake")
    baseline = routing(alpha.ns)
    assert not exit_rules_present(alpha.ns)
    assert seen_source(public, alpha) is None, "the public host is reachable without the exit node"

    # ExitNode= names a peer that is no approved exit node: refused, nothing changes
    set_exit_node(alpha, "exit")
    wait_until(lambda: log_lines(alpha, "Peer exit is no approved exit node"), 15, what="the refusal")
    assert routing(alpha.ns) == baseline
    status = alpha.status()["exit_node"]
    assert status["name"] == "exit" and not status["in_use"], status
    assert "no approved exit node" in status["problem"], status
    assert "     Exit node: exit (not used: Peer exit is no approved exit node" in alpha.meshctl("status").stdout

    # approved: all other traffic through it
    t0 = time.monotonic()
    fake.write({tok_alpha: alpha_netmap(version + 1, routes=True), tok_exit: exit_nm})
    wait_until(lambda: log_lines(alpha, ENABLED), 15, what="the exit node in use")
    assert exit_rules_present(alpha.ns)
    assert "default dev " + alpha.interface in alpha.ns.ip("-4", "route", "show", "table", str(FWMARK)).stdout
    assert "default dev " + alpha.interface in alpha.ns.ip("-6", "route", "show", "table", str(FWMARK)).stdout
    wg = alpha.wg_show()
    assert {"0.0.0.0/0", "::/0"} <= set(wg.peers[exit_key].allowed_ips), wg.peers[exit_key]
    assert alpha.exec("wg", "show", alpha.interface, "fwmark").stdout.strip() == f"{FWMARK:#x}"
    assert alpha.status()["exit_node"] == {"name": "exit", "in_use": True, "problem": None}
    hub_key = real_alpha["hub"]["public_key"] if real_alpha.get("hub") else None
    if hub_key:
        assert "0.0.0.0/0" not in wg.peers[hub_key].allowed_ips

    # the public host sees the exit node's address
    assert seen_source(public, alpha) == PUBLIC_EXIT
    print(f"exit node in use after {time.monotonic() - t0:.2f} s")

    # the underlay stays direct: marked traffic to the control server
    # leaves through eth0, unmarked would go into the tunnel
    assert route_dev(alpha.ns, control.address, "mark", str(FWMARK)) == "eth0"
    assert route_dev(alpha.ns, control.address) == alpha.interface
    assert route_dev(alpha.ns, exitn.address, "mark", str(FWMARK)) == "eth0"
    # the control connection carries the mark and keeps polling
    polls = fake.polls(tok_alpha)
    wait_until(lambda: fake.polls(tok_alpha) >= polls + 2, 15, what="alpha still polling")
    ss = alpha.exec("ss", "-tne", "dst", f"{control.address}:{control.port}").stdout
    assert f"fwmark:{FWMARK:#x}" in ss, ss
    # the peer is still reached directly, at its underlay endpoint
    assert alpha.wg_show().peers[exit_key].endpoint == f"{exitn.address}:41641"
    assert alpha.can_ping(real_exit["self"]["ipv4"])

    # a new netmap with the exit node still in it: its rules stay put
    # (never deleted and added again, which would let traffic past the tunnel)
    monitor = subprocess.Popen(["ip", "-n", alpha.ns.name, "monitor", "rule"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.2)     # ip monitor subscribed before the netmap goes out
        fake.write({tok_alpha: alpha_netmap(version + 2, routes=True), tok_exit: exit_nm})
        wait_until(lambda: log_lines(alpha, f"Applied netmap version {version + 2}:"), 15,
                   what="the next netmap applied")
    finally:
        monitor.terminate()
        events, _ = monitor.communicate(timeout=5)
    assert "Deleted" not in events, events
    assert exit_rules_present(alpha.ns)

    # ExitNode= removed: everything back exactly
    n_off = len(log_lines(alpha, DISABLED))
    set_exit_node(alpha, None)
    count_grows(alpha, DISABLED, n_off, 15)
    assert routing(alpha.ns) == baseline
    assert not {"0.0.0.0/0", "::/0"} & set(alpha.wg_show().peers[exit_key].allowed_ips)
    assert alpha.exec("wg", "show", alpha.interface, "fwmark").stdout.strip() == "off"
    assert alpha.status()["exit_node"] is None
    assert seen_source(public, alpha) is None

    # on again, then the exit peer leaves the netmap: back exactly
    n_on = len(log_lines(alpha, ENABLED))
    set_exit_node(alpha, "exit")
    count_grows(alpha, ENABLED, n_on, 15)
    assert exit_rules_present(alpha.ns)
    n_off = len(log_lines(alpha, DISABLED))
    fake.write({tok_alpha: alpha_netmap(version + 3, routes=True, with_exit=False), tok_exit: exit_nm})
    count_grows(alpha, DISABLED, n_off, 15)
    assert routing(alpha.ns) == baseline

    # back in the netmap: used again
    n_on = len(log_lines(alpha, ENABLED))
    fake.write({tok_alpha: alpha_netmap(version + 4, routes=True), tok_exit: exit_nm})
    count_grows(alpha, ENABLED, n_on, 15)
    assert seen_source(public, alpha) == PUBLIC_EXIT

    # meshd crashes with it on (the wireguard-go interface survives) and
    # comes back without ExitNode=: its leftovers are removed at start
    alpha.kill()
    assert exit_rules_present(alpha.ns)
    set_exit_node_file(alpha, None)
    alpha.start()
    alpha.wait_ready(30)
    wait_until(lambda: not exit_rules_present(alpha.ns), 15, what="the crashed meshd's rules removed")
    wait_until(lambda: routing(alpha.ns) == baseline, 15, what="the routing as before")

    # on again, with strict reverse-path filtering on the underlay: said
    # so (the peers' replies would be dropped); meshd stops: rules gone,
    # the table empty, as before it started
    alpha.exec("sysctl", "-qw", "net.ipv4.conf.eth0.rp_filter=1", check=True)
    n_on = len(log_lines(alpha, ENABLED))
    set_exit_node(alpha, "exit")
    count_grows(alpha, ENABLED, n_on, 15)
    assert log_lines(alpha, "Strict reverse-path filtering on eth0 (net.ipv4.conf.eth0.rp_filter=1)")
    alpha.stop()
    assert routing(alpha.ns) == exit_lab["before_start"]

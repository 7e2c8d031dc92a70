# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 11, item 5: the hub is no open door. A node is root on its own
machine, so it can widen its hub peer's AllowedIPs to 0.0.0.0/0 and ::/0
and route anything into the tunnel; the hub's nftables table (table inet
meshd_hub_IFNAME, src/control/hub-firewall.c) must then forward only
between mesh members and keep the control host's services shut.

Topology: the control namespace has an internal-only address (198.18.0.1
on lo, reachable from nowhere else), a LAN behind it
(198.51.100.0/24 and 2001:db8:51::/64 on a veth to a "lan" namespace) with
IPv4 and IPv6 forwarding on, as on a Docker host or a router. A listener
in the control namespace accepts TCP on 0.0.0.0/[::] port 8080 and on
198.18.0.1:8081; one in the LAN host on 8080. Every accepted connection
is written to a file, so "the victim saw nothing" is asserted, not only
"the attacker got no answer"."""

import json
import time

import meshlab
from meshlab import wait_until

HUB_V4 = "100.64.0.1"
INTERNAL = "198.18.0.1"
LAN_GW, LAN_HOST = "198.51.100.1", "198.51.100.2"
LAN_GW6, LAN_HOST6 = "2001:db8:51::1", "2001:db8:51::2"
SERVICE_PORT, INTERNAL_PORT = 8080, 8081

LISTENER = r"""
import selectors, socket, sys
out = open(sys.argv[1], "a", buffering=1)
sel = selectors.DefaultSelector()
for family, addr in [(socket.AF_INET, ("0.0.0.0", 8080)), (socket.AF_INET6, ("::", 8080))] + \
        [(socket.AF_INET, (a, 8081)) for a in sys.argv[2:]]:
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(addr)
    s.listen(16)
    sel.register(s, selectors.EVENT_READ)
out.write("listening\n")
while True:
    for key, _ in sel.select():
        c, peer = key.fileobj.accept()
        out.write(f"{c.getsockname()[0]} {c.getsockname()[1]} {peer[0]}\n")
        try:
            c.sendall(b"hello\n")
        except OSError:
            pass
        c.close()
"""

# All connection attempts at once (threads), so a dropped SYN costs one
# timeout, not one per target. Prints {target: reply or error}.
CONNECT = r"""
import json, socket, sys, threading
targets = json.loads(sys.argv[1])
result = {}
def one(host, port):
    try:
        with socket.create_connection((host, port), timeout=3) as s:
            result[f"{host}:{port}"] = s.recv(16).decode()
    except OSError as e:
        result[f"{host}:{port}"] = f"error: {e}"
threads = [threading.Thread(target=one, args=t) for t in targets]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(result))
"""

PROBE = r"""
import socket, struct, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
for i in range(10):
    s.sendto(b"MSHP" + bytes([1, 0, 0, 0]) + struct.pack("!I", 4242 + i), (sys.argv[1], 41642))
    try:
        d, a = s.recvfrom(64)
    except socket.timeout:
        continue
    print(d[:8].hex(), a[0]); sys.exit(0)
sys.exit(1)
"""

FOREIGN_TABLE = """
table inet admin {
    set blocked { type ipv4_addr; elements = { 203.0.113.99 } }
    chain input { type filter hook input priority 0; policy accept; ip saddr @blocked drop; }
    chain forward { type filter hook forward priority 0; policy accept; counter; }
}
"""


class Listener:
    def __init__(self, lab, ns, name, *internal):
        self.path = lab.dir / f"{name}-connections.log"
        self.path.touch()
        self.proc = ns.popen([meshlab.PYTHON, "-c", LISTENER, self.path, *internal],
                             log=lab.dir / f"{name}-listener.log")
        wait_until(lambda: "listening" in self.path.read_text(), 10, what=f"{name} listener")

    def connections(self) -> list:
        return [line.split() for line in self.path.read_text().splitlines()[1:] if line]

    def stop(self):
        self.proc.kill()
        self.proc.wait(5)


def build(lab, hub_args=()):
    """Control server (not started) with an internal address, a LAN and a
    foreign nftables table, then started; the LAN host; the listeners."""
    control = lab.add_control(start=False, hub_args=list(hub_args))
    cns = control.ns
    cns.ip("addr", "add", f"{INTERNAL}/32", "dev", "lo")

    lan = lab._netns("lan")
    cns.ip("link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", lan.name)
    cns.ip("addr", "add", f"{LAN_GW}/24", "dev", "lan0")
    cns.ip("addr", "add", f"{LAN_GW6}/64", "dev", "lan0", "nodad")
    cns.ip("link", "set", "lan0", "up")
    lan.ip("addr", "add", f"{LAN_HOST}/24", "dev", "eth0")
    lan.ip("addr", "add", f"{LAN_HOST6}/64", "dev", "eth0", "nodad")
    lan.ip("link", "set", "eth0", "up")
    # replies to the mesh go back through the control host, as on a real LAN
    lan.ip("route", "add", "default", "via", LAN_GW)
    lan.ip("-6", "route", "add", "default", "via", LAN_GW6)
    for key in ("net.ipv4.conf.all.forwarding=1", "net.ipv6.conf.all.forwarding=1"):
        cns.exec("sysctl", "-qw", key, check=True)

    cns.exec("nft", "-f", "-", input=FOREIGN_TABLE, check=True)
    control.start()
    control.wait_ready(20)
    return control, lan


def start_mesh(lab, control, names=("alpha", "bravo", "charlie"), *, relay_first_two=False):
    """Nodes joined and READY; relay_first_two: no direct path between the
    first two (the first one's own firewall, in place before they start),
    so that pair is relayed through the hub."""
    key = control.authkey(reusable=True)
    nodes = [lab.add_node(n, authkey=key) for n in names]
    if relay_first_two:
        block_direct(nodes[0], nodes[1])
    for n in nodes:
        n.start()
    for n in nodes:
        n.wait_ready(30)
    return nodes


def hub_key(control) -> str:
    return control.ns.exec("wg", "show", control.hub_interface, "public-key", check=True).stdout.strip()


def hub_v6(node) -> str:
    return node.status()["ipv6"].rsplit(":", 1)[0] + ":1"


def widen(node, control):
    """What a hostile node does: everything into the hub peer, and routes."""
    peer = node.wg_show().peers[hub_key(control)]
    allowed = ",".join(peer.allowed_ips + ["0.0.0.0/0", "::/0"])
    node.exec("wg", "set", node.interface, "peer", hub_key(control), "allowed-ips", allowed, check=True)
    for net in (f"{INTERNAL}/32", "198.51.100.0/24"):
        node.ns.ip("route", "replace", net, "dev", node.interface)
    node.ns.ip("-6", "route", "replace", "2001:db8:51::/64", "dev", node.interface)


def connect(node, targets) -> dict:
    cp = node.exec(meshlab.PYTHON, "-c", CONNECT, json.dumps(targets), timeout=30)
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout)


def attack_targets(node):
    return [(INTERNAL, INTERNAL_PORT), (INTERNAL, SERVICE_PORT), (HUB_V4, SERVICE_PORT),
            (hub_v6(node), SERVICE_PORT), (LAN_GW, SERVICE_PORT), (LAN_HOST, SERVICE_PORT),
            (LAN_HOST6, SERVICE_PORT), (HUB_V4, control_port())]


def control_port():
    return meshlab.CONTROL_PORT


def probe(node, address):
    cp = node.exec(meshlab.PYTHON, "-c", PROBE, address, timeout=30)
    return cp.returncode == 0 and cp.stdout.split()[0] == (b"MSHP" + bytes([2, 0, 0, 0])).hex()


def block_direct(alpha, bravo):
    alpha.exec("nft", "-f", "-", check=True, input=f"""
        table inet meshlab {{
            chain input {{ type filter hook input priority 0; ip saddr {bravo.address} udp dport 41641 drop; }}
            chain output {{ type filter hook output priority 0; ip daddr {bravo.address} udp dport 41641 drop; }}
        }}""")


def wait_relayed(alpha, bravo):
    wait_until(lambda: any(p["name"] == "bravo" and p.get("path") == "relay" for p in alpha.peers()),
               40, interval=0.5, what="alpha → bravo relayed")
    assert alpha.can_ping(bravo.status()["ipv4"], within=20), "relayed ping alpha → bravo"


def tables(ns) -> set:
    return {tuple(line.split()[1:3]) for line in ns.exec("nft", "list", "tables", check=True).stdout.splitlines()}


def stateless(ns, *what) -> str:
    return ns.exec("nft", "-s", "list", *what, check=True).stdout


def test_attack_hub_widened_allowed_ips_reach_only_members(lab):
    """alpha widens its hub peer to 0.0.0.0/0 and ::/0 and routes the
    control host's internal address, its LAN and the hub address into the
    tunnel: no TCP connection to any of them is made (no listener saw one),
    no ICMP reply comes back, while relayed pings between members and
    probes to the hub still work. Only our own table exists beside the
    administrator's, which is unchanged."""
    control, lan = build(lab)
    table = f"meshd_hub_{control.hub_interface}"
    admin_before = stateless(control.ns, "table", "inet", "admin")
    host_listener = Listener(lab, control.ns, "control", INTERNAL)
    lan_listener = Listener(lab, lan, "lan")
    alpha, bravo, charlie = start_mesh(lab, control, relay_first_two=True)
    v4 = {n.name: n.status()["ipv4"] for n in (alpha, bravo, charlie)}
    wait_relayed(alpha, bravo)

    widen(alpha, control)
    result = connect(alpha, attack_targets(alpha))
    print(json.dumps(result, indent=1))
    assert all(v.startswith("error:") for v in result.values()), result
    for target in (INTERNAL, LAN_HOST, LAN_GW, LAN_HOST6, HUB_V4, hub_v6(alpha)):
        assert alpha.ping(target, count=1, wait=1).returncode != 0, f"ICMP to {target} answered"
    assert host_listener.connections() == [], host_listener.connections()
    assert lan_listener.connections() == [], lan_listener.connections()

    # the mesh still works for the attacker and everyone else
    assert alpha.can_ping(v4["bravo"], within=10), "relayed ping after widening"
    # IPv6 relay too (the control host forwards IPv6, as --hub-ipv6-forwarding would)
    assert alpha.can_ping(bravo.status()["ipv6"], within=10), "relayed IPv6 ping after widening"
    assert alpha.can_ping(v4["charlie"], within=10)
    assert bravo.can_ping(v4["alpha"], within=10)
    assert probe(alpha, HUB_V4) and probe(alpha, hub_v6(alpha)), "hub probes"

    # our table, with the members; the administrator's untouched
    assert tables(control.ns) == {("inet", "admin"), ("inet", table)}
    assert stateless(control.ns, "table", "inet", "admin") == admin_before
    ours = stateless(control.ns, "set", "inet", table, "members4")
    for n in v4.values():
        assert n in ours, ours
    assert HUB_V4 not in ours

    # forward drops counted where the attack went
    listing = control.ns.exec("nft", "list", "chain", "inet", table, "from_hub", check=True).stdout
    assert "packets 0 " not in listing.split("out of the mesh")[0].splitlines()[-1], listing

    # a removed member's address leaves the set (a difference, not a reload)
    control.remove_node("charlie")
    wait_until(lambda: v4["charlie"] not in stateless(control.ns, "set", "inet", table, "members4"), 20,
               what="charlie's address gone from members4")
    assert "reloaded" not in control.log.read_text()
    # alpha and charlie talk directly: the hub's set follows the database
    # at once (hub-watch.c), alpha's netmap at its next poll
    wait_until(lambda: all(p["name"] != "charlie" for p in alpha.peers()), 10, what="charlie gone from alpha's peers")
    assert alpha.ping(v4["charlie"], count=1, wait=1).returncode != 0

    # a clean stop removes our table and nothing else
    control.stop()
    assert tables(control.ns) == {("inet", "admin")}
    assert stateless(control.ns, "table", "inet", "admin") == admin_before


SPOOF = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
for i in range(20):
    s.sendto(b"spoofed %d" % i, (sys.argv[2], 9999))
"""

# Says "bound" once its socket is, then one line per datagram as it comes:
# the test sends only after "bound", and reads what arrived while it runs.
RECEIVE = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999))
print("bound", flush=True)
while True:
    d, a = s.recvfrom(100)
    print(a[0], flush=True)
"""

# Nothing marks a datagram the hub did not forward, so "bravo receives
# none" is watched for a while after the last one left alpha: a forwarded
# one crosses two WireGuard hops between namespaces of this host, which
# takes milliseconds even on a loaded machine.
NOT_FORWARDED_WINDOW_S = 3.0


def test_attack_hub_spoofed_source_not_forwarded(lab):
    """alpha, relayed with bravo, sends UDP to bravo through the hub from
    addresses that are not its own (an address outside the mesh, charlie's
    mesh address): bravo receives none of it; the same from alpha's own
    address arrives."""
    control, _lan = build(lab)
    alpha, bravo, charlie = start_mesh(lab, control, relay_first_two=True)
    v4 = {n.name: n.status()["ipv4"] for n in (alpha, bravo, charlie)}
    wait_relayed(alpha, bravo)
    widen(alpha, control)

    alpha.ns.ip("addr", "add", "10.77.0.1/32", "dev", "lo")
    alpha.ns.ip("addr", "add", f"{v4['charlie']}/32", "dev", "lo")

    def sent_from(source, *, expect):
        log = lab.dir / f"receive-{source}.log"
        receiver = bravo.ns.popen([meshlab.PYTHON, "-c", RECEIVE], log=log)

        def received():     # from "bound" on; popen's header (the script) comes before
            lines = log.read_text().splitlines()
            return lines[lines.index("bound"):] if "bound" in lines else []

        try:
            wait_until(lambda: received()[:1] == ["bound"], 30, what="bravo's receiver to bind")
            cp = alpha.exec(meshlab.PYTHON, "-c", SPOOF, source, v4["bravo"])
            assert cp.returncode == 0, cp.stderr
            if expect:
                wait_until(lambda: len(received()) > 1, 30, what=f"a datagram from {source} at bravo")
            else:
                time.sleep(NOT_FORWARDED_WINDOW_S)
        finally:
            receiver.terminate()
            receiver.wait(10)
        return received()[1:]

    assert sent_from("10.77.0.1", expect=False) == []
    assert sent_from(v4["charlie"], expect=False) == []
    assert set(sent_from(v4["alpha"], expect=True)) == {v4["alpha"]}


def test_hub_allow_opens_one_service_and_no_firewall_is_open(lab):
    """--hub-allow=tcp/8080 makes the service on the hub address reachable
    for members, and only that one (8081 on the internal address stays
    shut). The server killed with SIGKILL leaves its table (the door stays
    shut) and the next start replaces it. --no-hub-firewall removes the
    stale table, and the same attack then reaches the control host and
    its LAN: what the firewall prevents is real. --keep-hub keeps the
    table with the interface."""
    control, lan = build(lab)
    host_listener = Listener(lab, control.ns, "control", INTERNAL)
    lan_listener = Listener(lab, lan, "lan")
    alpha, _bravo = start_mesh(lab, control, ("alpha", "bravo"))
    table = f"meshd_hub_{control.hub_interface}"

    def restart(args, *, kill=False):
        control.kill() if kill else control.stop()
        control.hub_args = list(args)
        control.start()
        control.wait_ready(20)
        wait_until(lambda: probe(alpha, HUB_V4), 30, what="alpha back at the hub")
        widen(alpha, control)

    # killed: the table (without --hub-allow) stays; the next start replaces it
    control.kill()
    assert ("inet", table) in tables(control.ns), "table gone after SIGKILL"
    assert "dport 8080" not in stateless(control.ns, "table", "inet", table)
    restart(["--hub-allow=tcp/8080"], kill=True)
    assert tables(control.ns) == {("inet", "admin"), ("inet", table)}
    result = connect(alpha, [(HUB_V4, SERVICE_PORT), (hub_v6(alpha), SERVICE_PORT), (INTERNAL, INTERNAL_PORT),
                             (INTERNAL, SERVICE_PORT)])
    assert result[f"{HUB_V4}:{SERVICE_PORT}"] == "hello\n", result
    assert result[f"{hub_v6(alpha)}:{SERVICE_PORT}"] == "hello\n", result
    assert result[f"{INTERNAL}:{INTERNAL_PORT}"].startswith("error:"), result
    assert result[f"{INTERNAL}:{SERVICE_PORT}"].startswith("error:"), result
    seen = {(c[0], c[1]) for c in host_listener.connections()}
    assert seen == {(HUB_V4, str(SERVICE_PORT)), (hub_v6(alpha), str(SERVICE_PORT))}, seen

    restart(["--no-hub-firewall"])
    assert tables(control.ns) == {("inet", "admin")}
    result = connect(alpha, [(INTERNAL, INTERNAL_PORT), (LAN_HOST, SERVICE_PORT), (LAN_HOST6, SERVICE_PORT)])
    assert all(v == "hello\n" for v in result.values()), result
    assert {c[0] for c in lan_listener.connections()} == {LAN_HOST, LAN_HOST6}
    assert "runs without its firewall" in control.log.read_text()

    # --keep-hub keeps the table with the interface: no open door while stopped
    control.stop()
    control.hub_args = ["--keep-hub"]
    control.start()
    control.wait_ready(20)
    control.stop()
    assert control.ns.ip("link", "show", control.hub_interface, check=False).returncode == 0
    assert tables(control.ns) == {("inet", "admin"), ("inet", table)}


FLOOD = r"""
import os, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
# a handshake initiation's shape: type 1, three zero bytes, 148 bytes in all
packet = bytes([1, 0, 0, 0]) + os.urandom(144)
end, n = time.monotonic() + float(sys.argv[3]), 0
while time.monotonic() < end:
    for _ in range(100):
        s.sendto(packet, (sys.argv[1], int(sys.argv[2])))
    n += 100
    time.sleep(0.002)
s.sendto(b"M", (sys.argv[1], int(sys.argv[2])))     # the marker: the flood is over
print(n)
"""


def rule_packets(ns, table, chain, comment) -> list:
    listing = ns.exec("nft", "list", "chain", "inet", table, chain, check=True).stdout
    return [int(line.split("counter packets ")[1].split()[0]) for line in listing.splitlines()
            if f'comment "{comment}"' in line]


def test_attack_hub_handshake_flood_is_rate_limited(lab):
    """A host on the underlay floods the hub's port with handshake
    initiations: all but the per-source allowance (burst 100, then 50 per
    second) are dropped before wireguard-go sees them, and a relayed ping
    between members goes on meanwhile."""
    control, _lan = build(lab)
    table = f"meshd_hub_{control.hub_interface}"
    alpha, bravo = start_mesh(lab, control, ("alpha", "bravo"), relay_first_two=True)
    wait_relayed(alpha, bravo)
    flooder = lab.add_host("flooder", f"{meshlab.UNDERLAY}.99")
    # what reaches the control host from the flooder, counted before the
    # hub's table sees it (a datagram lost on the way is no datagram let
    # through); the flood's last datagram, a 1-byte marker, says when the
    # count is complete
    control.ns.exec("nft", "-f", "-", check=True, input=f"""
        table inet meshlab_flood {{
            chain input {{
                type filter hook input priority -300;
                ip saddr {meshlab.UNDERLAY}.99 udp dport 41640 udp length 156 counter comment "arrived"
                ip saddr {meshlab.UNDERLAY}.99 udp dport 41640 udp length 9 counter comment "marker"
            }}
        }}""")
    arrived = lambda: sum(rule_packets(control.ns, "meshlab_flood", "input", "arrived"))
    before = sum(rule_packets(control.ns, table, "input", "handshake flood"))

    proc = flooder.popen([meshlab.PYTHON, "-c", FLOOD, control.address, "41640", "4"],
                         log=lab.dir / "flood.log")
    ping = alpha.exec("ping", "-n", "-c", "16", "-i", "0.25", "-W", "1", bravo.status()["ipv4"], timeout=30)
    proc.wait(30)
    wait_until(lambda: sum(rule_packets(control.ns, "meshlab_flood", "input", "marker")) == 1, 30,
               what="the flood's marker at the control host")
    sent = int((lab.dir / "flood.log").read_text().split()[-1])
    dropped = sum(rule_packets(control.ns, table, "input", "handshake flood")) - before
    print(f"flood: {sent} sent, {arrived()} arrived, {dropped} dropped; ping: {ping.stdout.splitlines()[-2]}")
    assert sent > 2000 and arrived() > 2 * (100 + 50 * 6), (sent, arrived())
    # at most burst + rate × duration (+ slack for timing) got through
    assert arrived() - dropped <= 100 + 50 * 6, (sent, arrived(), dropped)
    received = int(ping.stdout.split(" received")[0].rsplit(None, 1)[-1])
    assert received >= 14, ping.stdout
    assert f"{meshlab.UNDERLAY}.99" in stateless(control.ns, "set", "inet", table, "handshakes4")


# A kernel without nf_tables refuses nfnetlink sockets: this shim makes
# every NETLINK_NETFILTER socket fail the same way, for one process.
NO_NFTABLES_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/socket.h>
int socket(int domain, int type, int protocol) {
        static int (*real)(int, int, int);
        if (domain == AF_NETLINK && protocol == 12 /* NETLINK_NETFILTER */) {
                errno = EPROTONOSUPPORT;
                return -1;
        }
        if (!real)
                real = (int (*)(int, int, int)) dlsym(RTLD_NEXT, "socket");
        return real(domain, type, protocol);
}
"""


def test_hub_without_nftables_fails_clearly_unless_told(lab):
    """No nftables: serve exits with one error naming the table and the
    way out, leaving no hub interface behind; with --no-hub-firewall it
    runs and warns. An interface name that cannot go into a rule is
    refused before anything is created."""
    control = lab.add_control(start=False)
    shim = lab.dir / "no-nftables.so"
    meshlab.run(["cc", "-shared", "-fPIC", "-o", shim, "-x", "c", "-", "-ldl"], input=NO_NFTABLES_C)
    base_env = control.env
    control.env = lambda: dict(base_env(), LD_PRELOAD=str(shim))

    control.start()
    assert control.proc.wait(20) != 0
    log = control.log.read_text()
    errors = [line for line in log.splitlines() if "Failed to install the hub firewall" in line]
    assert len(errors) == 1, log
    assert f"table inet meshd_hub_{control.hub_interface}" in errors[0]
    assert "--no-hub-firewall" in errors[0]
    assert control.ns.ip("link", "show", control.hub_interface, check=False).returncode != 0
    assert control.notify.wait_for("READY", "1", since=control.started_at, timeout=0.1) is None

    control.hub_args = ["--no-hub-firewall"]
    control.start()
    control.wait_ready(20)
    assert "runs without its firewall" in control.log.read_text()
    control.stop()

    control.env = base_env
    control.hub_args = []
    bad = control.hub_interface[:-1] + '"'
    cp = control.ns.exec(meshlab.binary("meshd-control"), "--state-dir", control.state_dir, "serve",
                         "--listen", f"{control.address}:{control.port}", "--hub-backend", "userspace",
                         "--hub-interface", bad, timeout=20)
    assert cp.returncode != 0
    assert f"Hub interface name '{bad}' cannot be used in nftables rules" in cp.stderr, cp.stderr
    assert control.ns.ip("link", "show", bad, check=False).returncode != 0

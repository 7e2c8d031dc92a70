# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 16, subnet routes: a node ("gw") with a LAN behind it advertises
the LAN; after `meshd-control routes approve` a node that accepts it
("alpha", AcceptRoutes= set at runtime with `meshctl up --accept-routes=`)
reaches a host on that LAN ("nas", a namespace running no meshd); `routes
reject` takes the route away within 2 s; a node that has the prefix
connected ("bravo") refuses it with one journal line and keeps its own
route; bad advertisements are refused (400 naming the prefix, nothing
stored).

The LAN is 198.51.100.0/24 (TEST-NET-2) and 2001:db8:50::/64 on a veth
between gw and nas, each approved on its own. The
nas replies without SNAT on the router: it has a route back to the mesh
range via gw, as a real LAN's router often has (SNAT is the firewall's
part, tested with it)."""

import json

import pytest

import meshlab
from meshlab import wait_until

LAN = "198.51.100.0/24"
GW_LAN = "198.51.100.1"
NAS = "198.51.100.10"
MESH_V4 = "100.64.0.0/10"
LAN6 = "2001:db8:50::/64"       # documentation prefix
GW_LAN6 = "2001:db8:50::1"
NAS6 = "2001:db8:50::10"


def routes(control) -> list[dict]:
    return json.loads(control.command("routes", "list", "--json").stdout)


def add_routes_section(node, **keys):
    text = node.config.read_text() + "\n[Routes]\n" + "".join(f"{k}={v}\n" for k, v in keys.items())
    node.config.write_text(text)


def kernel_route(node, prefix) -> str:
    return node.ns.ip("-6" if ":" in prefix else "-4", "route", "show", prefix).stdout.strip()


def allowed_ips_of(node, peer) -> list[str]:
    key = peer.status()["public_key"]
    dev = node.wg_show()
    return dev.peers[key].allowed_ips if dev and key in dev.peers else []


def post_routes(control, node, body) -> tuple[int, str]:
    """POST /v1/routes with node's token, from its namespace: (status, body)."""
    token = json.loads((node.state_dir / "node.json").read_text())["token"]
    cp = node.ns.exec("curl", "-sk", "-o", "-", "-w", "\n%{http_code}", "-X", "POST",
                      "-H", f"Authorization: Bearer {token}", "-H", "Content-Type: application/json",
                      "--data-binary", json.dumps(body), f"{control.url}/v1/routes", timeout=20)
    text, _, status = cp.stdout.rpartition("\n")
    return int(status), text


@pytest.fixture
def routed(lab, control):
    """gw (advertising the LAN, forwarding on), alpha, bravo (198.51.100.0/24
    connected, accepting all) and the nas behind gw; all READY."""
    key = control.authkey(reusable=True)
    gw = lab.add_node("gw", authkey=key)
    alpha = lab.add_node("alpha", authkey=key)
    bravo = lab.add_node("bravo", authkey=key)
    add_routes_section(gw, Advertise=f"{LAN} {LAN6}")
    add_routes_section(bravo, AcceptRoutes="all")

    nas = lab._netns("nas")
    gw.ns.ip("link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", nas.name)
    gw.ns.ip("addr", "add", f"{GW_LAN}/24", "dev", "lan0")
    gw.ns.ip("link", "set", "lan0", "up")
    nas.ip("addr", "add", f"{NAS}/24", "dev", "eth0")
    nas.ip("link", "set", "eth0", "up")
    nas.ip("route", "add", MESH_V4, "via", GW_LAN)
    gw.ns.ip("addr", "add", f"{GW_LAN6}/64", "dev", "lan0", "nodad")
    nas.ip("addr", "add", f"{NAS6}/64", "dev", "eth0", "nodad")
    gw.ns.exec("sysctl", "-qw", "net.ipv4.ip_forward=1", check=True)
    gw.ns.exec("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1", check=True)
    # bravo's own LAN with the same prefix: a veth pair, nobody behind it
    bravo.ns.ip("link", "add", "lan0", "type", "veth", "peer", "name", "lan0p")
    bravo.ns.ip("addr", "add", "198.51.100.77/24", "dev", "lan0")
    bravo.ns.ip("link", "set", "lan0p", "up")
    bravo.ns.ip("link", "set", "lan0", "up")

    for n in (gw, alpha, bravo):
        n.start()
    for n in (gw, alpha, bravo):
        n.wait_ready(30)
    # the nas's way back to the mesh's (random) IPv6 range
    mesh6 = json.loads((gw.state_dir / "netmap.json").read_text())["ipv6_range"]
    nas.ip("-6", "route", "add", mesh6, "via", GW_LAN6)
    # READY does not wait for POST /v1/routes
    wait_until(lambda: routes(control) == [
        {"node": "gw", "prefix": LAN, "state": "advertised", "advertised": True},
        {"node": "gw", "prefix": LAN6, "state": "advertised", "advertised": True}],
        10, what="gw's routes at the server")
    return gw, alpha, bravo, nas


@pytest.mark.databases("sqlite", "postgresql")
def test_advertise_approve_reach_reject(lab, control, routed):
    gw, alpha, bravo, nas = routed

    # runtime setting, kept in the state directory
    cp = alpha.meshctl("up", f"--accept-routes={LAN},{LAN6}")
    assert cp.returncode == 0, cp.stderr
    assert json.loads((alpha.state_dir / "routes.json").read_text())["accept_routes"] == [LAN, LAN6]

    table = control.command("routes", "list").stdout.splitlines()
    assert table[0].split() == ["NODE", "PREFIX", "STATE"]
    assert table[1].split() == ["gw", LAN, "advertised"]
    # advertised is not approved: nobody routes it
    assert kernel_route(alpha, LAN) == ""
    assert LAN not in allowed_ips_of(alpha, gw)
    assert alpha.ping(NAS).returncode != 0

    control.command("routes", "approve", "gw", LAN)
    assert alpha.can_ping(NAS, within=10), lab.log_tails()
    assert "dev " + alpha.interface in kernel_route(alpha, LAN)
    assert LAN in allowed_ips_of(alpha, gw)
    # IPv6 waits for its own approval
    assert LAN6 not in allowed_ips_of(alpha, gw)
    control.command("routes", "approve", "gw", LAN6)
    assert alpha.can_ping(NAS6, within=10), lab.log_tails()
    assert "dev " + alpha.interface in kernel_route(alpha, LAN6)

    # bravo has the prefix connected: refused, one journal line, own route kept
    wait_until(lambda: "Refusing route 198.51.100.0/24 of peer gw: it overlaps 198.51.100.0/24"
               in bravo.log.read_text(), 10, what="bravo's refusal")
    assert bravo.log.read_text().count("Refusing route 198.51.100.0/24 of peer gw") == 1
    assert "dev lan0" in bravo.ns.ip("route", "get", NAS).stdout
    assert LAN not in allowed_ips_of(bravo, gw)

    control.command("routes", "reject", "gw", LAN)
    wait_until(lambda: kernel_route(alpha, LAN) == "" and LAN not in allowed_ips_of(alpha, gw), 2,
               interval=0.05, what="the rejected route gone from alpha")
    assert [r["state"] for r in routes(control)] == ["rejected", "approved"]
    assert alpha.ping(NAS).returncode != 0
    assert alpha.can_ping(NAS6, within=2)


def test_accept_restart_forwarding_withdraw(lab, control, routed):
    gw, alpha, _bravo, _nas = routed
    control.command("routes", "approve", "gw", LAN)
    # the route reaches alpha's netmap, but alpha accepts none by default
    wait_until(lambda: LAN in (alpha.state_dir / "netmap.json").read_text(), 10,
               what="the approved route in alpha's netmap")
    assert kernel_route(alpha, LAN) == ""
    assert LAN not in allowed_ips_of(alpha, gw)

    assert alpha.meshctl("up", f"--accept-routes={LAN}").returncode == 0
    assert alpha.can_ping(NAS, within=10)
    alpha.restart()
    alpha.wait_ready(30)
    assert alpha.can_ping(NAS, within=10), alpha.log_tail()

    # forwarding off on the router: meshd says so (and leaves it off)
    gw.ns.exec("sysctl", "-qw", "net.ipv4.ip_forward=0", check=True)
    assert gw.meshctl("up", f"--advertise-routes={LAN}").returncode == 0
    wait_until(lambda: f"IPv4 forwarding is off on {gw.interface}" in gw.log.read_text(), 5,
               what="gw's forwarding warning")
    assert gw.ns.exec("sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "0"

    # gw withdraws the LAN at runtime: out of every netmap, the verdict kept
    assert gw.meshctl("up", "--advertise-routes=").returncode == 0
    wait_until(lambda: kernel_route(alpha, LAN) == "", 5, what="withdrawn route gone")
    # (the undecided LAN6 is simply gone)
    assert routes(control) == [{"node": "gw", "prefix": LAN, "state": "approved", "advertised": False}]


def test_bad_advertisements_refused(lab, control, routed):
    gw, _alpha, _bravo, _nas = routed
    before = routes(control)

    for body, what in (({"routes": ["100.64.5.0/24"]}, "100.64.5.0/24: overlaps the mesh range"),
                       ({"routes": ["198.51.100.1/24"]}, "'198.51.100.1/24' has host bits set"),
                       ({"routes": [f"10.{i}.0.0/16" for i in range(65)]}, "more than 64 prefixes"),
                       ({"routes": ["127.0.0.0/8"]}, "loopback"),
                       ({"routes": "10.0.0.0/8"}, "routes: not an array")):
        status, text = post_routes(control, gw, body)
        assert status == 400, (body, status, text)
        assert what in json.loads(text)["error"], text
    assert routes(control) == before

    # the CLIs refuse the same, with the entry at fault
    cp = gw.meshctl("up", "--advertise-routes=198.51.100.1/24")
    assert cp.returncode != 0 and "host bits set" in cp.stderr, cp.stderr
    cp = gw.meshctl("up", "--advertise-routes=100.64.1.0/24")
    assert cp.returncode != 0 and "overlaps the mesh range" in cp.stderr, cp.stderr
    cp = gw.meshctl("up", "--advertise-routes=0.0.0.0/0")
    assert cp.returncode != 0 and "AdvertiseExitNode" in cp.stderr, cp.stderr
    cp = control.command("routes", "approve", "gw", "10.9.0.0/16", check=False)
    assert cp.returncode != 0 and "has not advertised 10.9.0.0/16" in cp.stderr, cp.stderr
    cp = control.command("routes", "approve", "nobody", LAN, check=False)
    assert cp.returncode != 0 and "No node named 'nobody'" in cp.stderr, cp.stderr
    assert routes(control) == before


def test_policy_auto_approves_routes(lab, control, routed):
    """The policy's auto_approve approves a route of the members it names as
    it is advertised (an exact prefix or one inside it); others still wait
    for `routes approve`. With a policy, a node gets a peer's route only
    when a rule lets it reach the prefix."""
    gw, alpha, _bravo, _nas = routed
    policy = lab.dir / "policy.json"
    policy.write_text(json.dumps({
        "rules": ["allow * -> *", f"allow alpha -> {LAN}"],
        "auto_approve": {"198.51.100.0/23": ["gw"], "2001:db8::/32": ["alpha"]},
    }, indent=1))
    cp = control.command("policy", "set", str(policy))
    assert cp.returncode == 0, cp.stderr
    # a new advertisement: the IPv4 LAN lies inside gw's auto_approve entry,
    # the IPv6 one is alpha's to have approved, not gw's
    assert gw.meshctl("up", "--advertise-routes=").returncode == 0
    wait_until(lambda: all(not r["advertised"] for r in routes(control)), 10, what="withdrawn")
    assert gw.meshctl("up", f"--advertise-routes={LAN},{LAN6}").returncode == 0
    wait_until(lambda: {r["prefix"]: r["state"] for r in routes(control) if r["advertised"]} ==
               {LAN: "approved", LAN6: "advertised"}, 10, what="LAN auto-approved, LAN6 waiting")
    # alpha may reach the LAN: its netmap carries gw's route and it routes it
    assert alpha.meshctl("up", f"--accept-routes={LAN}").returncode == 0
    assert alpha.can_ping(NAS, within=10), lab.log_tails()


def source_seen_by_nas(nas, node) -> str | None:
    """The source address of one UDP datagram node sends to the nas."""
    import subprocess
    listener = subprocess.Popen(
        ["ip", "netns", "exec", nas.name, meshlab.PYTHON, "-c",
         "import socket\n"
         "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
         f"s.bind(('{NAS}', 9999))\n"
         "print('listening', flush=True)\n"
         "s.settimeout(8)\n"
         "try:\n"
         "    print(s.recvfrom(64)[1][0], flush=True)\n"
         "except socket.timeout:\n"
         "    print('none', flush=True)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline().strip() == "listening"
        node.exec(meshlab.PYTHON, "-c", "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
                  f".sendto(b'x', ('{NAS}', 9999))", check=True)
        out, _ = listener.communicate(timeout=15)
    finally:
        listener.kill()
    return None if out.strip() == "none" else out.strip()


def test_subnet_snat_is_a_setting(lab, control, routed):
    """The router masquerades mesh sources into its LAN (SubnetSNAT=yes, the
    default, in meshd's own nftables table); with SubnetSNAT=no the LAN host
    sees the mesh address (it routes the mesh back to the router itself)."""
    import os
    import signal
    gw, alpha, _bravo, nas = routed
    control.command("routes", "approve", "gw", LAN)
    assert alpha.meshctl("up", f"--accept-routes={LAN}").returncode == 0
    assert alpha.can_ping(NAS, within=10), lab.log_tails()
    assert "masquerade" in gw.ns.exec("nft", "list", "table", "inet", "meshd", check=True).stdout
    assert source_seen_by_nas(nas, alpha) == GW_LAN

    add_routes_section(gw, SubnetSNAT="no")
    reloads = gw.log.read_text().count("Reloaded configuration")
    os.kill(gw.proc.pid, signal.SIGHUP)
    wait_until(lambda: gw.log.read_text().count("Reloaded configuration") > reloads, 10, what="gw reloaded")
    assert source_seen_by_nas(nas, alpha) == alpha.status()["ipv4"]

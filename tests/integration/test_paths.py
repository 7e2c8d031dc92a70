# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 12: each node decides its paths itself (src/daemon/peer-path.c).

A pair falls back to the hub when its direct path dies, comes back to the
direct path on its own, and never depends on the control server to do
either: the server only offers endpoints."""

import time

from meshlab import wait_until
from test_nat import diagnose as nat_diagnose, mesh_lab, nat_lab, wg_peer  # noqa: F401 (fixtures)

CUT_TO_RELAY_S = 10.0       # Done when 1: direct cut → relay within 10 s
DARK_TO_DIRECT_S = 10.0     # Done when 1: server dark, direct back → pings within 10 s
NAT_CHANGE_S = 10.0         # Done when 3: traffic again within 10 s


def diagnose(lab, *nodes) -> str:
    """Each node's peers as meshctl sees them and its WireGuard device."""
    if hasattr(lab, "routers"):
        return nat_diagnose(lab, *nodes)
    out = []
    for n in nodes:
        cp = n.meshctl("peers", "--json")
        wg = n.exec("wg", "show", n.interface, "dump")
        out.append(f"--- {n.name} ({n.address}) meshctl peers --json:\n{cp.stdout.strip()}"
                   f"\n--- {n.name} wg dump:\n{wg.stdout.strip()}")
    return "\n".join(out)


def peer_view(node, name) -> dict:
    return next((p for p in node.peers() if p["name"] == name), {})


def path_of(node, name):
    return peer_view(node, name).get("path")


def darken(control):
    """The control server's host drops every packet: API and hub alike."""
    control.ns.exec("nft", "-f", "-", check=True, input="""
        table inet meshlab_outage {
            chain input { type filter hook input priority -300; policy accept; iifname "eth0" drop; }
            chain output { type filter hook output priority -300; policy accept; oifname "eth0" drop; }
        }""")


def no_loss(a, address, *, count=30, interval=0.2):
    """ICMP a → address count times: how many were lost."""
    cp = a.exec("ping", "-n", "-q", "-c", str(count), "-i", str(interval), "-W", "1", address,
                timeout=count * interval + 15)
    sent = received = 0
    for line in cp.stdout.splitlines():
        if "packets transmitted" in line:
            parts = line.split(",")
            sent = int(parts[0].split()[0])
            received = int(parts[1].split()[0])
    return sent - received, cp.stdout


def test_relay_then_direct_without_the_server(lab, control, mesh3):
    """Done when 1: n1 and n3 on one LAN lose their direct path (UDP
    between them dropped): both are relayed through the hub within 10 s.
    Then the control server and its hub go dark and the direct path comes
    back: n1 pings n3 again within 10 s, with no help from the server, and
    loses nothing after that."""
    n1, n2, n3 = mesh3
    v3, v1 = n3.status()["ipv4"], n1.status()["ipv4"]
    assert n1.can_ping(v3, within=10), "n1 → n3 before the cut"

    n1.cut_udp_to(n3.address)
    cut = time.monotonic()
    wait_until(lambda: path_of(n1, n3.name) == "relay" and path_of(n3, n1.name) == "relay"
               and n1.ping(v3).returncode == 0, CUT_TO_RELAY_S, interval=0.2,
               what="n1 ⇄ n3 relayed and pinging after the cut")
    print(f"relayed and pinging {time.monotonic() - cut:.1f} s after the cut; "
          f"n1 says: {peer_view(n1, n3.name).get('path_reason')}")
    assert n2.ping(v3).returncode == 0, "n2 → n3 (never cut) fails"

    darken(control)
    n1.restore_udp()
    back = time.monotonic()
    try:
        wait_until(lambda: n1.ping(v3).returncode == 0 and n3.ping(v1).returncode == 0,
                   DARK_TO_DIRECT_S, interval=0.2, what="n1 ⇄ n3 with the server dark, direct back")
    except TimeoutError as e:
        raise AssertionError(f"{e}\n" + diagnose(lab, n1, n3)) from None
    took = time.monotonic() - back
    lost, out = no_loss(n1, v3)
    assert lost == 0, f"{lost} pings n1 → n3 lost after the path came back:\n{out}\n" + diagnose(lab, n1, n3)
    view = peer_view(n1, n3.name)
    assert view["path"] == "direct", view
    print(f"direct again {took:.1f} s after the server went dark and the path came back "
          f"({view['path_reason']})")


def test_nat_mapping_change_recovers(mesh_lab):
    """Done when 3: alpha and bravo direct behind port-preserving home
    routers; alpha's router then starts randomising ports and forgets its
    mappings (a reboot with a new NAT): the pair carries traffic again,
    through the hub or a new direct path, within 10 s."""
    lab = mesh_lab
    home = lab.add_router("home", "preserving")
    office = lab.add_router("office", "preserving")
    alpha = lab.add_node("alpha", behind=home, authkey=lab.key)
    bravo = lab.add_node("bravo", behind=office, authkey=lab.key)
    for n in (alpha, bravo):
        n.start()
    for n in (alpha, bravo):
        n.wait_ready(30)
    va, vb = alpha.status()["ipv4"], bravo.status()["ipv4"]
    wait_until(lambda: path_of(alpha, "bravo") == "direct" and path_of(bravo, "alpha") == "direct",
               15, interval=0.2, what="alpha ⇄ bravo direct")
    assert alpha.can_ping(vb, within=5)

    home.set_nat("random", flush="all")
    changed = time.monotonic()
    try:
        wait_until(lambda: alpha.ping(vb).returncode == 0 and bravo.ping(va).returncode == 0,
                   NAT_CHANGE_S, interval=0.2, what="alpha ⇄ bravo after the NAT change")
    except TimeoutError as e:
        raise AssertionError(f"{e}\n" + diagnose(lab, alpha, bravo)) from None
    took = time.monotonic() - changed
    view = peer_view(alpha, "bravo")
    print(f"traffic again {took:.1f} s after the NAT change, path {view['path']} "
          f"({view['path_reason']}), bravo sees alpha at {wg_peer(bravo, alpha).endpoint}")
    lost, out = no_loss(alpha, vb, count=20)
    assert lost == 0, f"{lost} pings lost once recovered:\n{out}"


def test_no_needless_relay_at_start(lab, control, mesh3):
    """Three nodes on one LAN, started together (their meshd ticks fall on
    the same beat, and each sees its underlay settle in the first seconds):
    for 10 s after all are READY, no pair ever leaves the direct path."""
    nodes = mesh3
    time.sleep(10)      # the window observed, not a wait for something to happen
    views = {(n.name, p["name"]): (p["path"], p["path_reason"]) for n in nodes for p in n.peers()}
    assert all(path == "direct" for path, _ in views.values()), views
    for n in nodes:
        log = n.log.read_text()
        assert "through the hub" not in log, f"{n.name} switched a peer to the relay:\n{n.log_tail()}"


TLS_WITHIN_S = 15.0         # Done when 2: every peer and the server through the TLS relay
UDP_BACK_WITHIN_S = 5.0     # Done when 2: back on UDP once it works again


def test_relay_port_blocked_falls_back_to_the_api_port(lab, control, mesh3):
    """All UDP and TCP to the relay port (443, the netmap's relay_port)
    dropped on n1's underlay: the relay try there never comes up, the next
    goes to the API port, and n1 reaches its peers through it."""
    n1, n2, n3 = mesh3
    n1.block_udp()
    n1.ns.exec("nft", "-f", "-", check=True, input="""
        table inet meshlab_no443 {
            chain output { type filter hook output priority -300; policy accept;
                           oifname "eth0" tcp dport 443 drop; }
        }""")
    v2 = n2.status()["ipv4"]
    try:
        wait_until(lambda: hub_view(n1).get("transport") == "tls" and n1.ping(v2).returncode == 0, 45,
                   interval=0.5, what="n1 ⇄ n2 over the API port's relay")
    except TimeoutError as e:
        raise AssertionError(f"{e}\n" + diagnose(lab, n1, n2)) from None
    log = n1.log.read_text()
    assert f"opening the TLS relay to https://{control.address}:443" in log
    assert f"TLS relay to {control.url} is up" in log
    assert f"Relay stream of node {n1.name} arrives on the relay port" not in control.log.read_text()


def hub_view(node) -> dict:
    return node.status().get("hub") or {}


def test_udp_blocked_uses_the_tls_relay(lab, control, mesh3):
    """Done when 2: all UDP dropped on n1's underlay: within 15 s n1 reaches
    every peer (ICMP both ways) and the control server's hub through the
    TLS relay; when UDP returns, n1 is back on UDP within 5 s and the peers
    still answer."""
    n1, n2, n3 = mesh3
    others = (n2, n3)
    v1 = n1.status()["ipv4"]
    addresses = {n.name: n.status()["ipv4"] for n in others}

    n1.block_udp()
    blocked = time.monotonic()

    def all_through_tls():
        if hub_view(n1).get("transport") != "tls":
            return False
        for n in others:
            if n1.ping(addresses[n.name]).returncode != 0 or n.ping(v1).returncode != 0:
                return False
        return n1.meshctl("ping", "-c", "1", "--timeout=2", n3.name).returncode == 0
    try:
        wait_until(all_through_tls, TLS_WITHIN_S, interval=0.2, what="n1 ⇄ every peer over the TLS relay")
    except TimeoutError as e:
        raise AssertionError(f"{e}\n" + diagnose(lab, n1, n2, n3)) from None
    took = time.monotonic() - blocked
    paths = {n.name: peer_view(n1, n.name) for n in others}
    assert all(v["path"] == "relay-tls" for v in paths.values()), paths
    assert all(peer_view(n, n1.name)["path"] == "relay" for n in others)
    # full-size packets too: WireGuard pads a 1420-byte packet (the default
    # MTU) only to 1420, so its datagram is 32 + 1420, not a multiple of 16
    full = n1.exec("ping", "-n", "-c", "3", "-W", "2", "-M", "do", "-s", "1392", addresses[n2.name])
    assert full.returncode == 0, f"full-MTU ping over the TLS relay:\n{full.stdout}{full.stderr}"
    # through the relay's own port (the netmap's relay_port), not the API port's upgrade
    assert f"Relay stream of node {n1.name} arrives on the relay port" in control.log.read_text()
    print(f"all peers over the TLS relay {took:.1f} s after UDP was blocked: "
          f"{ {k: v['path_reason'] for k, v in paths.items()} }")

    n1.restore_udp()
    back = time.monotonic()
    try:
        wait_until(lambda: hub_view(n1).get("transport") == "udp"
                   and n1.meshctl("ping", "-c", "1", "--timeout=1", n2.name).returncode == 0,
                   UDP_BACK_WITHIN_S, interval=0.1, what="n1 back on UDP")
    except TimeoutError as e:
        raise AssertionError(f"{e}\n" + diagnose(lab, n1, n2)) from None
    print(f"back on UDP {time.monotonic() - back:.1f} s after UDP returned")
    for n in others:
        assert n1.can_ping(addresses[n.name], within=5), f"n1 → {n.name} after UDP returned"
    log = n1.log.read_text()
    assert "The hub is now reached over the TLS relay" in log and "The hub is reached over UDP again" in log

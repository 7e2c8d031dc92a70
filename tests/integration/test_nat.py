# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 5: NAT traversal, relay fallback and roaming.

The lab (meshlab.NatLab): the bridge namespace is the internet, with
"public" addresses from 198.51.100.0/24 (routers' WAN sides) and
203.0.113.0/24 (control server and hub at 203.0.113.1, public nodes);
home routers are namespaces with nftables NAT and home-router filtering,
each with a LAN from 192.0.2.0/24. "preserving" NAT = masquerade (keeps
the source port, endpoint-independent mapping); "random" = masquerade
fully-random (a new port per destination).

TestNatTopology proves the lab itself with plain UDP sockets (no meshd);
the test_* functions below it are the issue's "Done when", one each.
"""

import json
import time

import pytest

import meshlab
from meshlab import NatLab, udp_socket, wait_until

DIRECT_WITHIN_S = 5.0       # issue 5.1: direct within 5 s of joining
RELAY_WITHIN_S = 10.0       # issue 5.2: relay fallback working within 10 s
PUBLIC_DIRECT_WITHIN_S = 10.0   # issue 5.3 names no time; bounded anyway
BACK_TO_DIRECT_S = 60.0     # issue 5.2, second half: names no time
ROAM_WITHIN_S = 10.0        # issue 5.4: reachable again within 10 s
CONTROL_DEAD_S = 10.0       # issue 5.5: keep pinging this long
PORT = 41641                # meshlab.Node's ListenPort
STUN_PORT = 3478

_netns_problem = "not checked"


@pytest.fixture
def nat_lab(request, tmp_path):
    """A NatLab with nothing in it (needs no meshd binaries)."""
    global _netns_problem
    if _netns_problem == "not checked":
        _netns_problem = meshlab.netns_usable()
    if _netns_problem is not None:
        pytest.skip(_netns_problem)
    lab = NatLab(tmp_path / "lab")
    request.node._meshlabs = getattr(request.node, "_meshlabs", []) + [lab]
    yield lab
    lab.close()


@pytest.fixture
def mesh_lab(nat_lab):
    """nat_lab plus a running control server with its hub, and a reusable
    auth key as mesh_lab.key."""
    for name in ("meshd-control", "meshd", "meshctl"):
        meshlab.binary(name)        # raises: a missing binary is an error
    lab = nat_lab
    lab.add_control()           # with its hub (meshlab's default)
    lab.key = lab.control.authkey(reusable=True)
    return lab


# --------------------------------------------------------------- plain UDP

def recv_from(sock, timeout=1.0):
    """(data, (ip, port)) of the next datagram, or None after timeout."""
    sock.settimeout(timeout)
    try:
        return sock.recvfrom(2048)
    except TimeoutError:
        return None


def drain(*socks):
    for s in socks:
        while recv_from(s, 0.05) is not None:
            pass


def seen_as(sender, listener, dst, payload=b"who am i"):
    """Sends from socket `sender` to dst; the (ip, port) `listener` sees."""
    sender.sendto(payload, dst)
    got = recv_from(listener)
    assert got is not None, f"nothing arrived at {dst}"
    assert got[0] == payload
    return got[1]


class TestNatTopology:
    """The NAT lab without meshd: mappings, filtering, hole punching,
    switching the NAT kind, roaming."""

    def test_preserving_nat_keeps_port_for_every_destination(self, nat_lab):
        home = nat_lab.add_router("home", "preserving")
        stun1, ip1 = nat_lab.add_public_host("stun1")
        stun2, ip2 = nat_lab.add_public_host("stun2")
        host, att = nat_lab.add_lan_host("pc", home)
        assert att.address.startswith("192.0.2.") and att.address != home.gateway
        s = udp_socket(host, PORT)
        l1, l2 = udp_socket(stun1, STUN_PORT), udp_socket(stun2, STUN_PORT)
        a = seen_as(s, l1, (ip1, STUN_PORT))
        b = seen_as(s, l2, (ip2, STUN_PORT))
        assert a == (home.public, PORT), f"want {home.public}:{PORT}, seen as {a}"
        assert b == a, f"mapping depends on the destination: {a} vs {b}"
        # replies come back through the mapping
        l1.sendto(b"you are " + repr(a).encode(), a)
        assert recv_from(s) is not None, "reply to the mapped address did not arrive"

    def test_random_nat_changes_port_per_destination(self, nat_lab):
        cafe = nat_lab.add_router("cafe", "random")
        stun1, ip1 = nat_lab.add_public_host("stun1")
        stun2, ip2 = nat_lab.add_public_host("stun2")
        host, _ = nat_lab.add_lan_host("pc", cafe)
        s = udp_socket(host, PORT)
        l1, l2 = udp_socket(stun1, STUN_PORT), udp_socket(stun2, STUN_PORT)
        a = seen_as(s, l1, (ip1, STUN_PORT))
        b = seen_as(s, l2, (ip2, STUN_PORT))
        assert a[0] == b[0] == cafe.public, (a, b)
        # fully-random: a collision with 41641 is 1 in ~64k per flow
        assert a[1] != PORT or b[1] != PORT, f"source port kept: {a}, {b}"
        assert a[1] != b[1], f"same port {a[1]} for two destinations: not symmetric"
        l1.sendto(b"reply", a)
        assert recv_from(s) is not None, "reply to the mapped address did not arrive"

    def test_filtering_drops_unsolicited_and_other_senders(self, nat_lab):
        """Address-and-port-dependent filtering (conntrack): only the host
        we sent to gets in, and only from the port we sent to."""
        home = nat_lab.add_router("home", "preserving")
        stun, ip = nat_lab.add_public_host("stun")
        other, other_ip = nat_lab.add_public_host("other")
        host, _ = nat_lab.add_lan_host("pc", home)
        s = udp_socket(host, PORT)
        stranger = udp_socket(other, STUN_PORT)
        stranger.sendto(b"unsolicited", (home.public, PORT))
        assert recv_from(s, 0.5) is None, "unsolicited inbound UDP got through"
        assert "dport=41641" not in home.conntrack(), \
            f"the dropped packet left a conntrack entry:\n{home.conntrack()}"
        listener = udp_socket(stun, STUN_PORT)
        mapped = seen_as(s, listener, (ip, STUN_PORT))
        stranger.sendto(b"from elsewhere", mapped)
        assert recv_from(s, 0.5) is None, "a host we never sent to got through the mapping"
        other_port = udp_socket(stun, STUN_PORT + 1)
        other_port.sendto(b"other port", mapped)
        assert recv_from(s, 0.5) is None, "another port of the same host got through"
        listener.sendto(b"reply", mapped)
        assert recv_from(s) is not None, "the reply did not get through"
        # a public host takes anything
        pub_sock = udp_socket(other, PORT)
        s.sendto(b"to a public host", (other_ip, PORT))
        assert recv_from(pub_sock) is not None

    def test_hole_punching_works_with_preserving_and_fails_with_random(self, nat_lab):
        """Both sides send to the other's public address (as a hub would
        have told them) at about the same time."""
        r1 = nat_lab.add_router("home1", "preserving")
        r2 = nat_lab.add_router("home2", "preserving")
        stun, ip = nat_lab.add_public_host("stun")
        h1, _ = nat_lab.add_lan_host("pc1", r1)
        h2, _ = nat_lab.add_lan_host("pc2", r2)
        s1, s2 = udp_socket(h1, PORT), udp_socket(h2, PORT)
        listener = udp_socket(stun, STUN_PORT)

        def punch():
            drain(s1, s2, listener)
            e1 = seen_as(s1, listener, (ip, STUN_PORT))      # what a hub observes
            e2 = seen_as(s2, listener, (ip, STUN_PORT))
            got1 = got2 = None
            for _ in range(5):
                s1.sendto(b"punch from 1", e2)
                s2.sendto(b"punch from 2", e1)
                got1, got2 = got1 or recv_from(s1, 0.2), got2 or recv_from(s2, 0.2)
            return e1, e2, got1, got2

        e1, e2, got1, got2 = punch()
        assert got1 and got2, f"hole punching between {e1} and {e2} failed: {got1}, {got2}\n" \
                              f"{r1.conntrack()}\n{r2.conntrack()}"
        assert got1[1] == e2 and got2[1] == e1

        r2.set_nat("random")
        e1, e2, got1, got2 = punch()
        assert not got1 and not got2, \
            f"hole punching through a random NAT worked: {e1} {e2} {got1} {got2}"

    def test_set_nat_switches_at_runtime(self, nat_lab):
        r = nat_lab.add_router("home", "random")
        stun, ip = nat_lab.add_public_host("stun")
        host, _ = nat_lab.add_lan_host("pc", r)
        s, listener = udp_socket(host, PORT), udp_socket(stun, STUN_PORT)
        before = seen_as(s, listener, (ip, STUN_PORT))
        assert before[1] != PORT, before
        r.set_nat("preserving")
        assert r.kind == "preserving"
        after = seen_as(s, listener, (ip, STUN_PORT))
        assert after == (r.public, PORT), f"after set_nat('preserving') seen as {after}"
        r.set_nat("random")
        again = seen_as(s, listener, (ip, STUN_PORT))
        assert again[1] != PORT, f"after set_nat('random') the port is kept: {again}"

    def test_set_nat_udp_flush_keeps_tcp_connections(self, nat_lab):
        r = nat_lab.add_router("home", "random")
        stun, ip = nat_lab.add_public_host("stun")
        host, _ = nat_lab.add_lan_host("pc", r)
        server = meshlab.netns_socket(stun, type=meshlab.socket.SOCK_STREAM)
        server.bind((ip, 8443))
        server.listen()
        client = meshlab.netns_socket(host, type=meshlab.socket.SOCK_STREAM)
        client.settimeout(2)
        client.connect((ip, 8443))
        conn, _ = server.accept()
        conn.settimeout(2)
        s, listener = udp_socket(host, PORT), udp_socket(stun, STUN_PORT)
        assert seen_as(s, listener, (ip, STUN_PORT))[1] != PORT
        r.set_nat("preserving", flush="udp")
        table = r.conntrack()
        assert " udp " not in table and " tcp " in table, table
        assert seen_as(s, listener, (ip, STUN_PORT)) == (r.public, PORT)
        client.sendall(b"still there?")
        assert conn.recv(100) == b"still there?"
        conn.sendall(b"yes")
        assert client.recv(100) == b"yes", "TCP through the router broke on a UDP-only flush"
        for x in (client, conn, server):
            x.close()

    @pytest.mark.parametrize("new_veth", [False, True], ids=["veth-moved", "new-veth"])
    def test_move_to_another_router(self, nat_lab, new_veth):
        r1 = nat_lab.add_router("home", "preserving")
        r2 = nat_lab.add_router("cafe", "preserving")
        stun, ip = nat_lab.add_public_host("stun")
        host, att = nat_lab.add_lan_host("laptop", r1)
        s, listener = udp_socket(host, PORT), udp_socket(stun, STUN_PORT)
        assert seen_as(s, listener, (ip, STUN_PORT)) == (r1.public, PORT)
        old = att.address
        new = att.move_to(r2, new_veth=new_veth)
        assert att.router is r2 and new != old and ipaddress_in(new, r2.lan)
        links = host.ip("-br", "addr").stdout
        assert old not in links and new in links, links
        routes = host.ip("route", "show", "default").stdout
        assert f"via {r2.gateway}" in routes, routes
        # the same socket, no restart: now seen as the other router
        assert seen_as(s, listener, (ip, STUN_PORT)) == (r2.public, PORT)
        # the old router lost its link
        assert r1.ns.ip("-br", "link", "show", "master", "lan0").stdout.strip() == ""


def ipaddress_in(address, network) -> bool:
    import ipaddress
    return ipaddress.ip_address(address) in network


# --------------------------------------------------------------- meshd

def joined_at(node, timeout=20.0) -> float:
    """Monotonic time at which node's API first shows it joined (mesh
    address known); polls from now."""
    def joined():
        try:
            return bool(node.status().get("ipv4"))
        except Exception:       # socket not there yet, or an answer without JSON
            return False
    wait_until(joined, timeout, interval=0.05, what=f"{node.name} joined")
    return time.monotonic()


def peer_entry(node, other) -> dict | None:
    try:
        return {p["name"]: p for p in node.peers()}.get(other.name)
    except Exception:
        return None


def meshctl_ping(node, other, timeout=1):
    """The reply of `meshctl --json ping -c 1 OTHER` (with "path"), or None."""
    cp = node.meshctl("--json", "ping", "-c", "1", "--timeout", str(timeout), other.name,
                      timeout=timeout + 10)
    if cp.returncode != 0:
        return None
    lines = [line for line in cp.stdout.splitlines() if line.strip()]
    try:
        return json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        return None


def wg_peer(node, other):
    dev = node.wg_show()
    key = other.status()["public_key"]
    return dev.peers.get(key) if dev else None


def diagnose(lab, *nodes) -> str:
    """What a failed scenario prints: each node's peers as meshctl sees
    them, every WireGuard device (nodes and hub), routers' mappings."""
    out = []
    for n in nodes:
        cp = n.meshctl("peers", "--json")
        out.append(f"--- {n.name} ({n.address}, behind {n.router.name if n.router else 'nothing'}) "
                   f"meshctl peers --json (rc {cp.returncode}):\n{cp.stdout.strip()}{cp.stderr.strip()}")
    out.append(lab.wg_dumps())
    for r in lab.routers.values():
        out.append(f"--- {r!r} conntrack:\n{r.conntrack().strip()}")
    return "\n".join(out)


def wait_path(lab, a, b, path, timeout, *, endpoint_host=None, since=None):
    """Polls until `meshctl ping` a → b answers with this path, a's peer
    table says so too (and, with endpoint_host, a's `wg show` endpoint for
    b has that host); returns seconds since `since` (default: now). Raises
    with the timeline of what it saw and diagnostics."""
    start = time.monotonic() if since is None else since
    deadline = start + timeout
    timeline, last = [], None
    while True:
        reply = meshctl_ping(a, b)
        peer = peer_entry(a, b) or {}
        wgp = wg_peer(a, b)
        seen = (reply and reply.get("path"), peer.get("path"), peer.get("reachable"),
                wgp and wgp.endpoint)
        if seen != last:
            timeline.append(f"  {time.monotonic() - start:6.2f} s  ping path={seen[0]} "
                            f"peers path={seen[1]} reachable={seen[2]} wg endpoint={seen[3]}")
            last = seen
        ok = seen[0] == path and seen[1] == path
        if ok and endpoint_host is not None:
            ok = seen[3] is not None and seen[3].rsplit(":", 1)[0] == endpoint_host
        if ok:
            return time.monotonic() - start
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"{a.name} → {b.name}: no {path} path within {timeout:g} s"
                f"{f' with endpoint {endpoint_host}' if endpoint_host else ''}; what {a.name} saw:\n"
                + "\n".join(timeline) + "\n" + diagnose(lab, a, b))
        time.sleep(0.1)


def icmp_ok(lab, a, b, within):
    """Real ICMP a → b's mesh address, polled for `within` seconds."""
    addr = b.status()["ipv4"]
    assert a.can_ping(addr, within=within), \
        f"ICMP {a.name} → {b.name} ({addr}) failed for {within:g} s\n" + diagnose(lab, a, b)


def hub_allowed_ips(node) -> list:
    """AllowedIPs of the hub peer on node's device (the peer whose AllowedIPs
    hold the first mesh address, like test_mesh's check)."""
    dev = node.wg_show()
    for p in (dev.peers.values() if dev else ()):
        if "100.64.0.1/32" in p.allowed_ips:
            return p.allowed_ips
    return []


def start_and_join(*nodes) -> float:
    """Starts nodes; the monotonic time when the last one has joined."""
    for n in nodes:
        n.start()
    return max(joined_at(n) for n in nodes)


def test_direct_between_two_port_preserving_nats(mesh_lab):
    """5.1: alpha and bravo, each behind its own port-preserving NAT:
    direct within 5 s of joining, wg endpoints are the other NAT's public
    address, meshctl ping says direct, ICMP works."""
    lab = mesh_lab
    home1 = lab.add_router("home1", "preserving")
    home2 = lab.add_router("home2", "preserving")
    alpha = lab.add_node("alpha", behind=home1, authkey=lab.key)
    bravo = lab.add_node("bravo", behind=home2, authkey=lab.key)
    joined = start_and_join(alpha, bravo)
    t_ab = wait_path(lab, alpha, bravo, "direct", DIRECT_WITHIN_S, endpoint_host=home2.public,
                     since=joined)
    t_ba = wait_path(lab, bravo, alpha, "direct", DIRECT_WITHIN_S, endpoint_host=home1.public,
                     since=joined)
    print(f"direct after {t_ab:.2f} s (alpha → bravo), {t_ba:.2f} s (bravo → alpha) from joining;"
          f" endpoints {wg_peer(alpha, bravo).endpoint}, {wg_peer(bravo, alpha).endpoint}")
    icmp_ok(lab, alpha, bravo, 2)
    icmp_ok(lab, bravo, alpha, 2)
    bravo_v4 = bravo.status()["ipv4"]
    assert not any(a.startswith(bravo_v4 + "/") for a in hub_allowed_ips(alpha)), \
        "bravo's address on alpha's hub peer while direct\n" + diagnose(lab, alpha, bravo)


@pytest.mark.parametrize("reset", ["udp", "all"], ids=["udp-mappings-reset", "router-reboot"])
def test_random_nat_falls_back_to_relay_then_back_to_direct(mesh_lab, reset):
    """5.2: alpha behind a NAT that randomises ports, bravo behind a
    port-preserving one: relay through the hub within 10 s of joining;
    switching alpha's NAT to port-preserving brings them to direct.

    The switch makes the router forget its mappings (otherwise the hub flow,
    kept alive, would keep its random port for ever): its UDP mappings only,
    or (router-reboot) all of them, so meshd's TCP connection to the
    control server dies silently too."""
    lab = mesh_lab
    cafe = lab.add_router("cafe", "random")
    home = lab.add_router("home", "preserving")
    alpha = lab.add_node("alpha", behind=cafe, authkey=lab.key)
    bravo = lab.add_node("bravo", behind=home, authkey=lab.key)
    joined = start_and_join(alpha, bravo)
    t_ab = wait_path(lab, alpha, bravo, "relay", RELAY_WITHIN_S, since=joined)
    t_ba = wait_path(lab, bravo, alpha, "relay", RELAY_WITHIN_S, since=joined)
    print(f"relay after {t_ab:.2f} s (alpha → bravo), {t_ba:.2f} s (bravo → alpha) from joining")
    icmp_ok(lab, alpha, bravo, 2)
    icmp_ok(lab, bravo, alpha, 2)
    bravo_v4, alpha_v4 = bravo.status()["ipv4"], alpha.status()["ipv4"]
    assert f"{bravo_v4}/32" in hub_allowed_ips(alpha), \
        "relayed bravo is not on alpha's hub peer\n" + diagnose(lab, alpha, bravo)
    assert f"{alpha_v4}/32" in hub_allowed_ips(bravo), \
        "relayed alpha is not on bravo's hub peer\n" + diagnose(lab, alpha, bravo)

    switched = time.monotonic()
    cafe.set_nat("preserving", flush=reset)
    t_ab = wait_path(lab, alpha, bravo, "direct", BACK_TO_DIRECT_S, endpoint_host=home.public,
                     since=switched)
    t_ba = wait_path(lab, bravo, alpha, "direct", BACK_TO_DIRECT_S, endpoint_host=cafe.public,
                     since=switched)
    print(f"direct {t_ab:.2f} s / {t_ba:.2f} s after the NAT became port-preserving")
    icmp_ok(lab, alpha, bravo, 2)
    icmp_ok(lab, bravo, alpha, 2)
    assert f"{bravo_v4}/32" not in hub_allowed_ips(alpha), \
        "bravo still on alpha's hub peer after moving to direct\n" + diagnose(lab, alpha, bravo)


@pytest.mark.parametrize("kind", ["preserving", "random"])
def test_nat_and_public_node_connect_directly(mesh_lab, kind):
    """5.3: alpha behind a NAT, vps on a public address: direct (even a
    randomising NAT lets alpha reach a public host, and vps answers to
    whatever port alpha's packets come from)."""
    lab = mesh_lab
    home = lab.add_router("home", kind)
    alpha = lab.add_node("alpha", behind=home, authkey=lab.key)
    vps = lab.add_node("vps", authkey=lab.key)
    joined = start_and_join(alpha, vps)
    t_av = wait_path(lab, alpha, vps, "direct", PUBLIC_DIRECT_WITHIN_S,
                     endpoint_host=vps.address, since=joined)
    t_va = wait_path(lab, vps, alpha, "direct", PUBLIC_DIRECT_WITHIN_S,
                     endpoint_host=home.public, since=joined)
    print(f"direct after {t_av:.2f} s (alpha → vps), {t_va:.2f} s (vps → alpha) from joining; "
          f"vps sees alpha at {wg_peer(vps, alpha).endpoint}")
    icmp_ok(lab, alpha, vps, 2)
    icmp_ok(lab, vps, alpha, 2)


@pytest.mark.parametrize("new_veth", [False, True], ids=["veth-moved", "new-veth"])
def test_roaming_node_is_reachable_again(mesh_lab, new_veth):
    """5.4: alpha's underlay moves from one router's LAN to another's
    (new address, new public address): bravo reaches it again within
    10 s; same meshd process, no restart."""
    lab = mesh_lab
    home = lab.add_router("home", "preserving")
    cafe = lab.add_router("cafe", "preserving")
    office = lab.add_router("office", "preserving")
    alpha = lab.add_node("alpha", behind=home, authkey=lab.key)
    bravo = lab.add_node("bravo", behind=office, authkey=lab.key)
    start_and_join(alpha, bravo)
    wait_path(lab, bravo, alpha, "direct", 15, endpoint_host=home.public)
    alpha_v4, bravo_v4 = alpha.status()["ipv4"], bravo.status()["ipv4"]
    pid = alpha.proc.pid

    moved = time.monotonic()
    new_address = alpha.move_to(cafe, new_veth=new_veth)
    try:
        wait_until(lambda: bravo.ping(alpha_v4).returncode == 0, ROAM_WITHIN_S, interval=0.1,
                   what="ICMP bravo → alpha after the move")
    except TimeoutError as e:
        raise AssertionError(f"{e} (alpha now {new_address} behind {cafe.public})\n"
                             + diagnose(lab, alpha, bravo)) from None
    t_icmp = time.monotonic() - moved
    reply = meshctl_ping(bravo, alpha)
    assert reply is not None, "meshctl ping bravo → alpha fails after the move\n" + \
        diagnose(lab, alpha, bravo)
    assert alpha.can_ping(bravo_v4, within=10), "ICMP alpha → bravo fails after the move"
    assert alpha.running and alpha.proc.pid == pid, "alpha's meshd restarted"
    print(f"alpha reachable {t_icmp:.2f} s after moving to {new_address} behind {cafe.public}; "
          f"path {reply.get('path')}, bravo's endpoint for alpha {wg_peer(bravo, alpha).endpoint}")
    if reply.get("path") == "direct":
        assert wg_peer(bravo, alpha).endpoint.startswith(cafe.public + ":"), \
            "direct, yet bravo's endpoint for alpha is not the new NAT\n" + diagnose(lab, alpha, bravo)


def test_direct_paths_survive_control_server_death(mesh_lab):
    """5.5: alpha and bravo direct behind port-preserving NATs; the control
    server (and its hub) is SIGKILLed; ICMP and meshctl ping keep working
    for 10 s without a lost packet, the path stays direct."""
    lab = mesh_lab
    home1 = lab.add_router("home1", "preserving")
    home2 = lab.add_router("home2", "preserving")
    alpha = lab.add_node("alpha", behind=home1, authkey=lab.key)
    bravo = lab.add_node("bravo", behind=home2, authkey=lab.key)
    start_and_join(alpha, bravo)
    wait_path(lab, alpha, bravo, "direct", 15, endpoint_host=home2.public)
    wait_path(lab, bravo, alpha, "direct", 15, endpoint_host=home1.public)
    bravo_v4 = bravo.status()["ipv4"]

    lab.control.kill()
    assert not lab.control.running
    count = int(CONTROL_DEAD_S / 0.5)
    cp = alpha.exec("ping", "-n", "-c", str(count), "-i", "0.5", "-W", "1", bravo_v4,
                    timeout=CONTROL_DEAD_S + 15)
    summary = [line for line in cp.stdout.splitlines() if "received" in line]
    assert cp.returncode == 0 and f"{count} received" in cp.stdout, \
        f"ICMP alpha → bravo lost packets after the control server died: {summary}\n" \
        + diagnose(lab, alpha, bravo)
    print(summary)
    for a, b, public in ((alpha, bravo, home2.public), (bravo, alpha, home1.public)):
        wait_path(lab, a, b, "direct", 2, endpoint_host=public)

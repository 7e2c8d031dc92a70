# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 3 scenarios: a control server and meshd nodes in network
namespaces, userspace WireGuard (wireguard-go), real ICMP through the
tunnels. Each test reads as the story it checks."""

import ipaddress
import itertools
import time

import pytest

from meshlab import MESH_V4, wait_until

PROPAGATION_S = 2.0     # issue 3: joins and removals visible within 2 s


def assert_wg_matches_netmap(node):
    """`wg show IFNAME dump` holds exactly the netmap's peers, each with its
    mesh addresses as AllowedIPs; the only extra peer allowed is the hub
    (AllowedIPs include 100.64.0.1/32), which also carries relayed peers."""
    dev = node.wg_show()
    assert dev is not None, f"{node.name}: no WireGuard device {node.interface}"
    status = node.status()
    assert dev.public_key == status["public_key"], f"{node.name}: device key ≠ status key"
    netmap = {p["public_key"]: p for p in node.peers()}
    extra = {k: v for k, v in dev.peers.items() if k not in netmap}
    missing = set(netmap) - set(dev.peers)
    assert not missing, f"{node.name}: netmap peers not on the device: " \
                        f"{[netmap[k]['name'] for k in missing]}"
    hubs = [p for p in extra.values() if "100.64.0.1/32" in p.allowed_ips]
    assert len(extra) == len(hubs) <= 1, \
        f"{node.name}: device has peers not in the netmap: {sorted(extra)}"
    relayed = set()
    for key, p in netmap.items():
        want = {f"{p['ipv4']}/32"} | ({f"{p['ipv6']}/128"} if p.get("ipv6") else set())
        if p.get("path") == "relay":
            relayed |= want
            continue
        assert set(dev.peers[key].allowed_ips) == want, \
            f"{node.name}: peer {p['name']} AllowedIPs {dev.peers[key].allowed_ips}, want {sorted(want)}"
    for hub in hubs:
        own = {a for a in hub.allowed_ips
               if ipaddress.ip_interface(a).ip.packed[-1] == 1 and a.endswith(("/32", "/128"))}
        assert set(hub.allowed_ips) - own <= relayed, \
            f"{node.name}: hub AllowedIPs {hub.allowed_ips} carry non-relayed addresses"


def wait_on_all(nodes, predicate, timeout, what):
    """Polls predicate(node) on every node until all hold; returns
    {name: seconds until it held}; raises naming the nodes that never did."""
    start = time.monotonic()
    seen = {}
    while True:
        for n in nodes:
            if n.name not in seen and predicate(n):
                seen[n.name] = time.monotonic() - start
        if len(seen) == len(nodes):
            return seen
        if time.monotonic() - start > timeout:
            late = [n.name for n in nodes if n.name not in seen]
            raise AssertionError(f"{what}: not within {timeout:g} s on {late} (others: {seen})")
        time.sleep(0.05)


def test_lab_underlay_and_wireguard_go(bare_lab):
    """The harness itself, without meshd: hosts reach each other over the
    bridge, and wireguard-go tunnels work between two namespaces."""
    lab = bare_lab
    a, b = lab.add_host("ua", "192.0.2.201"), lab.add_host("ub", "192.0.2.202")
    assert a.exec("ping", "-n", "-c1", "-W2", "192.0.2.202").returncode == 0
    keys = {}
    for ns, ifname, mesh, peer_addr in ((a, f"m{lab.rid}y", "100.64.9.1", "192.0.2.202"),
                                        (b, f"m{lab.rid}z", "100.64.9.2", "192.0.2.201")):
        priv = ns.exec("wg", "genkey", check=True).stdout.strip()
        pub = ns.exec("wg", "pubkey", input=priv + "\n", check=True).stdout.strip()
        keyfile = lab.dir / f"{ifname}.key"
        keyfile.write_text(priv + "\n")
        keys[ns.name] = (ifname, pub, keyfile, mesh, peer_addr)
        proc = ns.popen(["wireguard-go", "-f", ifname], log=lab.dir / f"{ifname}.log")
        wait_until(lambda: ns.exec("wg", "show", ifname).returncode == 0, 10,
                   what=f"wireguard-go {ifname}")
        assert proc.poll() is None
    (ia, pa, ka, ma, _), (ib, pb, kb, mb, _) = keys[a.name], keys[b.name]
    for ns, ifname, key, mesh, peer, peer_mesh, peer_ul in (
            (a, ia, ka, ma, pb, mb, "192.0.2.202"), (b, ib, kb, mb, pa, ma, "192.0.2.201")):
        ns.exec("wg", "set", ifname, "listen-port", "51820", "private-key", key,
                "peer", peer, "allowed-ips", f"{peer_mesh}/32", "endpoint", f"{peer_ul}:51820",
                check=True)
        ns.ip("addr", "add", f"{mesh}/32", "dev", ifname)
        ns.ip("link", "set", ifname, "up")
        ns.ip("route", "add", f"{peer_mesh}/32", "dev", ifname)
    assert a.exec("ping", "-n", "-c2", "-W2", mb).returncode == 0, "no ping through wireguard-go"
    out = a.exec("wg", "show", ia, "latest-handshakes", check=True).stdout
    assert int(out.split()[1]) > 0


def test_three_nodes_addresses_names_and_ping(lab, control, mesh3):
    """3a: distinct stable mesh addresses in 100.64.0.0/10, unique names,
    ICMP and `meshctl ping NAME` between every ordered pair."""
    status = {n.name: n.status() for n in mesh3}
    names = [s["name"] for s in status.values()]
    assert sorted(names) == ["alpha", "bravo", "charlie"], names
    v4 = {name: s["ipv4"] for name, s in status.items()}
    assert len(set(v4.values())) == 3, v4
    for addr in v4.values():
        assert ipaddress.ip_address(addr) in MESH_V4 and addr != "100.64.0.1", v4
    v6 = [s.get("ipv6") for s in status.values() if s.get("ipv6")]
    assert len(set(v6)) == len(v6), v6

    for src, dst in itertools.permutations(mesh3, 2):
        assert src.can_ping(v4[dst.name], within=10), f"ICMP {src.name} → {dst.name} ({v4[dst.name]})"
        cp = src.meshctl("ping", "-c", "1", dst.name)
        assert cp.returncode == 0, f"meshctl ping {src.name} → {dst.name}: {cp.stderr.strip()}"
    for n in mesh3:
        assert_wg_matches_netmap(n)
        assert {"bravo", "charlie", "alpha"} - {n.name} <= n.peer_names()

    names_on_control = [n["name"] for n in control.nodes()]
    assert len(names_on_control) == len(set(names_on_control)) >= 3, names_on_control

    for n in mesh3:
        n.restart()
    for n in mesh3:
        n.wait_ready(30)
    for n in mesh3:
        s = n.status()
        assert (s["name"], s["ipv4"], s.get("ipv6")) == \
               (n.name, v4[n.name], status[n.name].get("ipv6")), f"{n.name} changed after restart"
    assert mesh3[0].can_ping(v4["bravo"], within=10)


@pytest.mark.databases("sqlite", "postgresql")
def test_fourth_node_joins_and_is_seen_within_2s(lab, control, mesh3):
    """3b: `meshctl up` on a new node; it shows up in every other node's
    `meshctl peers --json` within 2 s of the command's return."""
    delta = lab.add_node("delta", join=False)
    delta.start()
    delta.wait_api(10)
    key = control.authkey()
    up = key.up_command.split()
    assert up[:2] == ["meshctl", "up"], key.up_command
    cp = delta.meshctl(*up[1:])
    joined_at = time.monotonic()
    assert cp.returncode == 0, f"meshctl up: {cp.stderr.strip()}"

    seen = wait_on_all(mesh3, lambda n: "delta" in n.peer_names(),
                       PROPAGATION_S, "delta in peer list")
    print(f"delta visible after {seen} (s since meshctl up returned, "
          f"{time.monotonic() - joined_at:.2f} s total)")
    delta_v4 = delta.status()["ipv4"]
    assert ipaddress.ip_address(delta_v4) in MESH_V4
    for n in mesh3:
        assert n.can_ping(delta_v4, within=10), f"{n.name} → delta"
        assert delta.can_ping(n.status()["ipv4"], within=10), f"delta → {n.name}"
    for n in mesh3 + [delta]:
        assert_wg_matches_netmap(n)


@pytest.mark.databases("sqlite", "postgresql")
def test_removed_node_is_dropped_and_refused(lab, control, mesh3):
    """3c: `meshd-control nodes remove charlie` → gone from every peer list
    within 2 s; ICMP to and from charlie fails."""
    alpha, bravo, charlie = mesh3
    charlie_v4, alpha_v4 = charlie.status()["ipv4"], alpha.status()["ipv4"]
    charlie_key = charlie.status()["public_key"]
    assert alpha.can_ping(charlie_v4, within=10)

    control.remove_node("charlie")
    seen = wait_on_all([alpha, bravo], lambda n: "charlie" not in n.peer_names(),
                       PROPAGATION_S, "charlie gone from peer list")
    print(f"charlie gone after {seen} s")
    for n in (alpha, bravo):
        dev = n.wg_show()
        assert charlie_key not in dev.peers, f"{n.name} still has charlie's key on {n.interface}"
        assert_wg_matches_netmap(n)
    assert alpha.ping(charlie_v4, count=3).returncode != 0, "alpha → charlie still answers"
    assert charlie.ping(alpha_v4, count=3).returncode != 0, "charlie → alpha still answers"
    assert "charlie" not in [x["name"] for x in control.nodes()]


def test_control_down_node_restarts_from_cached_netmap(lab, control, mesh3):
    """3d: with the control server stopped, a restarted meshd brings its
    tunnels back from the cached netmap."""
    alpha, bravo, _ = mesh3
    bravo_v4, alpha_v4 = bravo.status()["ipv4"], alpha.status()["ipv4"]
    control.stop()
    alpha.restart()
    ready = alpha.wait_ready(30)
    print(f"alpha READY {ready.after_start:.2f} s after restart, STATUS={ready.status!r}")
    assert alpha.status()["ipv4"] == alpha_v4
    assert alpha.can_ping(bravo_v4, within=10), "alpha → bravo after restart without control"
    assert bravo.can_ping(alpha_v4, within=10), "bravo → alpha after restart without control"
    assert_wg_matches_netmap(alpha)


def test_ready_waits_for_first_probe_reply(lab, control):
    """3e: Policy=any, its only peer's meshd stopped (and the control server
    with its hub down): no READY=1; the peer starts → READY=1 follows, not
    before, and the peer is reachable at that point."""
    key = control.authkey(reusable=True)
    alpha, bravo = lab.add_node("alpha", authkey=key), lab.add_node("bravo", authkey=key)
    for n in (alpha, bravo):
        n.start()
    for n in (alpha, bravo):
        n.wait_ready(30)

    bravo.stop()
    control.stop()
    alpha.restart()
    HOLD_S = 5.0
    early = alpha.wait_ready(HOLD_S, check=False)
    assert early is None, f"READY=1 {early.after_start:.2f} s after start with no peer " \
                          f"reachable: {early.messages}"
    assert alpha.status()["state"] == "starting"

    bravo.start()
    ready = alpha.wait_ready(30)
    assert ready.t > bravo.started_at, "READY=1 before the peer's meshd even started"
    print(f"alpha READY {ready.t - bravo.started_at:.2f} s after bravo started; "
          f"notify: {ready.messages}")
    peer = {p["name"]: p for p in alpha.peers()}["bravo"]
    assert peer["reachable"] and peer["last_probe_reply_usec"] > 0, peer
    assert peer["last_probe_reply_usec"] / 1e6 >= bravo.started_wall - 0.1, peer


def test_ready_needs_probe_reply_not_just_handshake(lab, control):
    """3e, stricter: the tunnel to the only peer works (handshake, ICMP) but
    the peer's probe port is firewalled: still no READY=1. Open the port →
    READY=1 follows."""
    key = control.authkey(reusable=True)
    alpha, bravo = lab.add_node("alpha", authkey=key), lab.add_node("bravo", authkey=key)
    for n in (alpha, bravo):
        n.start()
    for n in (alpha, bravo):
        n.wait_ready(30)
    bravo_v4 = bravo.status()["ipv4"]
    control.stop()          # the hub counts for Policy=any: take it away
    bravo.exec("nft", "-f", "-", check=True, input=f"""
        table inet meshlab {{
            chain input {{
                type filter hook input priority 0;
                iifname "{bravo.interface}" udp dport 41642 drop
            }}
        }}""")
    alpha.restart()
    assert alpha.can_ping(bravo_v4, within=10), "tunnel alpha → bravo does not carry ICMP"
    assert alpha.wg_show().peers[bravo.status()["public_key"]].latest_handshake > 0
    early = alpha.wait_ready(4.0, check=False)
    assert early is None, f"READY=1 with a handshake but no probe reply: {early.messages}"

    opened = time.monotonic()
    bravo.exec("nft", "delete", "table", "inet", "meshlab", check=True)
    ready = alpha.wait_ready(30)
    assert ready.t > opened
    print(f"READY {ready.t - opened:.2f} s after the probe port opened")


def test_required_ghost_peer_times_out_degraded(lab, control):
    """3e: Policy=required RequiredPeers=ghost TimeoutSec=3: no READY=1 for
    3 s, then READY=1 with STATUS= saying degraded."""
    key = control.authkey(reusable=True)
    bravo = lab.add_node("bravo", authkey=key)
    bravo.start()
    bravo.wait_ready(30)
    alpha = lab.add_node("alpha", authkey=key, policy="required",
                         required_peers=["ghost"], timeout_sec=3)
    alpha.start()
    ready = alpha.wait_ready(20)
    print(f"READY after {ready.after_start:.2f} s, STATUS={ready.status!r}")
    assert ready.after_start >= 3.0, f"READY=1 after {ready.after_start:.2f} s < TimeoutSec=3"
    assert ready.after_start < 10.0, f"READY=1 only after {ready.after_start:.2f} s"
    assert "degraded" in ready.status, ready.messages
    assert alpha.status()["state"] == "degraded"
    # every change of state is one line, old -> new (manager_set_state())
    log = alpha.log.read_text()
    assert "Mesh state: needs-login -> starting." in log and "Mesh state: starting -> degraded." in log


def test_required_present_peer_is_ready_before_timeout(lab, control):
    """3e, the other side: Policy=required on a peer that is up → READY=1
    well before TimeoutSec, not degraded."""
    key = control.authkey(reusable=True)
    bravo = lab.add_node("bravo", authkey=key)
    bravo.start()
    bravo.wait_ready(30)
    alpha = lab.add_node("alpha", authkey=key, policy="required",
                         required_peers=["bravo"], timeout_sec=30)
    alpha.start()
    ready = alpha.wait_ready(25)
    assert "degraded" not in ready.status, ready.messages
    assert alpha.status()["state"] == "online"
    assert "Mesh state: starting -> online." in alpha.log.read_text()
    peer = {p["name"]: p for p in alpha.peers()}["bravo"]
    assert peer["reachable"], peer

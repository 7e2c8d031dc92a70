# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 5, the control server's side: meshd-control runs the hub, a
WireGuard interface (wireguard-go here) in its own namespace. Its peers
follow the membership, it publishes each node's endpoint as it sees it,
decides relay per pair from POST /v1/paths reports, and answers probes.

Relay decisions are tested with registrations made over HTTP by the test
itself (no meshd), so that no daemon's own path reports interfere."""

import base64
import json
import os
import threading
import time

from meshlab import LogWatcher, fake_public_key, private_key_of, register_proof, wait_until

HUB_V4 = "100.64.0.1"
HUB_PORT = 41640


# ---- talking to the control server as a node would ----

def api(control, method, path, body=None, token=None, timeout=70):
    """One request inside the control namespace's reach: the lab runs the
    server on an underlay address only the namespaces see, so the request
    goes through `ip netns exec … python3`."""
    script = (
        "import http.client, json, ssl, sys\n"
        "a = json.loads(sys.stdin.read())\n"
        "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; "
        "ctx.verify_mode = ssl.CERT_NONE\n"
        "c = http.client.HTTPSConnection(a['host'], a['port'], context=ctx, timeout=a['timeout'])\n"
        "h = {'Content-Type': 'application/json'}\n"
        "if a['token']: h['Authorization'] = 'Bearer ' + a['token']\n"
        "c.request(a['method'], a['path'], body=a['body'], headers=h)\n"
        "r = c.getresponse(); d = r.read().decode()\n"
        "print(json.dumps({'status': r.status, 'body': d}))\n")
    args = {"host": control.address, "port": control.port, "method": method, "path": path,
            "body": None if body is None else json.dumps(body), "token": token, "timeout": timeout}
    cp = control.ns.exec("/usr/bin/python3", "-c", script, input=json.dumps(args), timeout=timeout + 10)
    assert cp.returncode == 0, f"{method} {path}: {cp.stderr}"
    out = json.loads(cp.stdout)
    data = json.loads(out["body"]) if out["body"] else None
    return out["status"], data


def fake_key():
    """A valid-looking WireGuard public key (the server only parses it)."""
    return base64.b64encode(os.urandom(32)).decode()


def register_body(control, authkey, hostname, endpoints=(), public_key=None):
    """A POST /v1/register body with a challenge and the proof of holding
    public_key's private key (a new key pair when None)."""
    public_key = public_key or fake_public_key()
    status, ch = api(control, "POST", "/v1/challenge", {})
    assert status == 200, (status, ch)
    return {"authkey": str(authkey), "public_key": public_key, "hostname": hostname,
            "endpoints": list(endpoints), "challenge": ch["challenge"],
            "proof": register_proof(private_key_of(public_key), ch["server_key"], ch["challenge"],
                                    public_key, hostname, authkey)}


def register(control, authkey, hostname, endpoints=()):
    status, data = api(control, "POST", "/v1/register", register_body(control, authkey, hostname, endpoints))
    assert status == 200, (status, data)
    return data


def netmap(control, token, since=0, timeout=60):
    return api(control, "GET", f"/v1/netmap?since={since}&timeout={timeout}", token=token,
               timeout=timeout + 5)


def node_token(node) -> str:
    return json.loads((node.state_dir / "node.json").read_text())["token"]


def peer_entry(nm, name):
    return next(p for p in nm["peers"] if p["name"] == name)


def hub_dump(control):
    """{public key: (endpoint or None, [allowed ips])} of the hub device."""
    cp = control.ns.exec("wg", "show", control.hub_interface, "dump")
    assert cp.returncode == 0, f"wg show {control.hub_interface}: {cp.stderr}"
    lines = [line.split("\t") for line in cp.stdout.splitlines() if line]
    peers = {}
    for f in lines[1:]:
        peers[f[0]] = (None if f[2] == "(none)" else f[2], [] if f[3] == "(none)" else f[3].split(","))
    return lines[0][1], int(lines[0][2]), peers


# ---- the hub device ----

def test_hub_device_follows_membership(lab, control):
    """Every member is a hub peer with its /32 and /128; a removed node,
    removed by another process, leaves the hub within a second."""
    key = control.authkey(reusable=True)
    regs = [register(control, key, name) for name in ("alpha", "bravo", "charlie")]
    status, nm = netmap(control, regs[0]["token"])
    assert status == 200
    hub = nm["hub"]
    assert hub["ipv4"] == HUB_V4 and hub["ipv6"].endswith("::1")
    assert hub["endpoints"] == [f"{control.address}:{HUB_PORT}"]

    public, port, peers = hub_dump(control)
    assert public == hub["public_key"]
    assert port == HUB_PORT
    members = {p["public_key"]: p for p in [nm["self"], *nm["peers"]]}
    assert set(peers) == set(members)
    for k, (endpoint, allowed) in peers.items():
        assert endpoint is None
        assert sorted(allowed) == sorted([f"{members[k]['ipv4']}/32", f"{members[k]['ipv6']}/128"])

    # the hub address and forwarding, on the hub interface only
    addrs = control.ns.ip("-j", "addr", "show", "dev", control.hub_interface).stdout
    assert f'"{HUB_V4}"' in addrs and '"prefixlen":10' in addrs
    fwd = control.ns.exec("cat", f"/proc/sys/net/ipv4/conf/{control.hub_interface}/forwarding").stdout
    assert fwd.strip() == "1"
    assert control.ns.exec("cat", "/proc/sys/net/ipv4/conf/eth0/forwarding").stdout.strip() == "0"

    removed = nm["peers"][0]
    control.remove_node(removed["name"])
    wait_until(lambda: removed["public_key"] not in hub_dump(control)[2], 1.5,
               what=f"{removed['name']} gone from the hub")
    assert len(hub_dump(control)[2]) == 2

    late = register(control, key, "delta")
    status, nm = netmap(control, late["token"])
    assert nm["self"]["public_key"] in hub_dump(control)[2]


def test_hub_key_cannot_register(lab, control):
    key = control.authkey(reusable=True)
    first = register(control, key, "alpha")
    hub_key = netmap(control, first["token"])[1]["hub"]["public_key"]
    # nobody holds the hub's private key but the server: no proof, no node
    status, data = api(control, "POST", "/v1/register",
                       {"authkey": str(key), "public_key": hub_key, "hostname": "evil", "endpoints": []})
    assert status == 401, (status, data)


def test_hub_removed_on_stop_and_absent_with_no_hub(lab, control):
    assert control.ns.ip("link", "show", control.hub_interface, check=False).returncode == 0
    control.stop()
    assert control.ns.ip("link", "show", control.hub_interface, check=False).returncode != 0
    assert not any("wireguard-go" in " ".join(_cmdline(p)) for p in control.ns.pids())

    control.hub = False
    control.start()
    control.wait_ready(20)
    key = control.authkey()
    reg = register(control, key, "alpha")
    assert "hub" not in netmap(control, reg["token"])[1]
    assert control.ns.ip("link", "show", control.hub_interface, check=False).returncode != 0


def _cmdline(pid):
    try:
        return [a.decode() for a in open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0") if a]
    except OSError:
        return []


# ---- relay decisions ----

def test_paths_relay_both_sides_within_1s(lab, control):
    """alpha reports no direct path to bravo → relay:true in both netmaps
    within 1 s (long-polls wake); charlie is untouched; direct from both
    clears it; garbage is refused with 400."""
    key = control.authkey(reusable=True)
    a, b, c = (register(control, key, n) for n in ("alpha", "bravo", "charlie"))
    _, nm = netmap(control, a["token"])
    keys = {p["name"]: p["public_key"] for p in nm["peers"]}
    keys["alpha"] = nm["self"]["public_key"]
    version = nm["version"]
    assert not any(p["relay"] for p in nm["peers"])

    results = {}

    def poll(name, token):
        results[name] = (netmap(control, token, since=version, timeout=10), time.monotonic())

    threads = [threading.Thread(target=poll, args=(n, r["token"])) for n, r in
               (("alpha", a), ("bravo", b), ("charlie", c))]
    log = LogWatcher(control.log)
    for t in threads:
        t.start()
    # the decision must wake parked long-polls, not meet requests that come late
    for n, r in (("alpha", a), ("bravo", b), ("charlie", c)):
        log.wait_for(rf"Node {r['node_id']}: long-poll waits for a netmap version past {version} ", 30,
                     what=f"{n}'s long-poll to wait on the server")
    sent = time.monotonic()
    status, _ = api(control, "POST", "/v1/paths",
                    {"peers": [{"public_key": keys["bravo"], "direct": False},
                               {"public_key": fake_key(), "direct": False}]},
                    token=a["token"])
    assert status == 204
    for t in threads:
        t.join(15)
    for name in ("alpha", "bravo", "charlie"):
        (status, nm), got = results[name]
        assert status == 200, f"{name}: long-poll answered {status}"
        latency = got - sent
        print(f"relay decision reached {name} after {latency * 1000:.0f} ms")
        assert latency < 1.0, f"{name}: relay decision after {latency:.2f} s"
    (_, nm_a), _ = results["alpha"]
    (_, nm_b), _ = results["bravo"]
    (_, nm_c), _ = results["charlie"]
    assert peer_entry(nm_a, "bravo")["relay"] is True
    assert peer_entry(nm_b, "alpha")["relay"] is True
    assert peer_entry(nm_a, "charlie")["relay"] is False
    assert not any(p["relay"] for p in nm_c["peers"])

    # bravo says direct works: still relayed while alpha says it does not
    v = nm_a["version"]
    assert api(control, "POST", "/v1/paths", {"peers": [{"public_key": keys["alpha"], "direct": True}]},
               token=b["token"])[0] == 204
    assert netmap(control, a["token"], since=v, timeout=1)[0] == 304
    assert api(control, "POST", "/v1/paths", {"peers": [{"public_key": keys["bravo"], "direct": True}]},
               token=a["token"])[0] == 204
    status, nm = netmap(control, b["token"], since=v, timeout=5)
    assert status == 200 and peer_entry(nm, "alpha")["relay"] is False

    for bad in ({}, {"peers": [{"public_key": "nope", "direct": False}]},
                {"peers": [{"public_key": keys["bravo"], "direct": "no"}]}):
        status, data = api(control, "POST", "/v1/paths", bad, token=a["token"])
        assert status == 400 and data["error"], (bad, status, data)
    assert api(control, "POST", "/v1/paths", {"peers": []}, token="wrong")[0] == 401
    control.remove_node("charlie")
    assert api(control, "POST", "/v1/paths", {"peers": []}, token=c["token"])[0] == 403


# ---- with real nodes: observed endpoints, probes ----

def test_observed_endpoint_first_and_probes(lab, control, mesh3):
    """Once the nodes keep the hub as a peer, the hub sees their endpoints
    and every netmap lists a node's observed endpoint first; the hub answers
    probes from the mesh on 100.64.0.1:41642."""
    alpha, bravo, _charlie = mesh3

    def observed():
        return {k: e for k, (e, _) in hub_dump(control)[2].items() if e}
    wait_until(lambda: len(observed()) == 3, 20, interval=0.2, what="the hub to see all three nodes")
    seen = observed()

    def first_endpoint_is_observed():
        status, nm = netmap(control, node_token(bravo), timeout=1)
        if status != 200:
            return False
        return all(p["endpoints"] and p["endpoints"][0] == seen[p["public_key"]] for p in nm["peers"]) \
            and nm["self"]["endpoints"][0] == seen[nm["self"]["public_key"]]
    wait_until(first_endpoint_is_observed, 20, interval=0.2, what="observed endpoints first in the netmap")
    _, nm = netmap(control, node_token(bravo), timeout=1)
    for p in nm["peers"]:
        assert len(p["endpoints"]) == len(set(p["endpoints"])), p["endpoints"]

    # a probe through the tunnel, from alpha's namespace
    script = (
        "import socket, struct, sys\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)\n"
        "for i in range(10):\n"
        "    s.sendto(b'MSHP' + bytes([1, 0, 0, 0]) + struct.pack('!I', 4242 + i), (sys.argv[1], 41642))\n"
        "    try:\n"
        "        d, a = s.recvfrom(64)\n"
        "    except socket.timeout:\n"
        "        continue\n"
        "    print(d.hex(), a[0]); sys.exit(0)\n"
        "sys.exit(1)\n")
    cp = alpha.exec("/usr/bin/python3", "-c", script, HUB_V4, timeout=30)
    assert cp.returncode == 0, f"no probe reply from the hub: {cp.stdout} {cp.stderr}"
    data, source = cp.stdout.split()
    assert bytes.fromhex(data)[:8] == b"MSHP" + bytes([2, 0, 0, 0])
    assert source == HUB_V4


def test_roaming_reaches_peers_within_2s(lab, control, mesh3):
    """alpha's underlay address changes: the hub sees alpha's new source
    once alpha sends (meshd probes at once on an address change), and
    bravo's netmap lists the new endpoint first within about 2 s."""
    alpha, bravo, _charlie = mesh3
    alpha_key = alpha.status()["public_key"]
    wait_until(lambda: hub_dump(control)[2][alpha_key][0] == f"{alpha.address}:41641", 20, interval=0.2,
               what="the hub to see alpha")
    _, nm = netmap(control, node_token(bravo), timeout=1)
    version = nm["version"]

    new = "192.0.2.60"
    moved = time.monotonic()
    # in this order: a second address in the subnet would be a secondary,
    # deleted with the primary (promote_secondaries is off in a new netns)
    alpha.ns.ip("addr", "del", f"{alpha.address}/24", "dev", "eth0")
    alpha.ns.ip("addr", "add", f"{new}/24", "dev", "eth0")

    def bravo_sees_new():
        nonlocal version
        status, nm = netmap(control, node_token(bravo), since=version, timeout=3)
        if status != 200:
            return False
        version = nm["version"]
        return peer_entry(nm, "alpha")["endpoints"][0] == f"{new}:41641"
    wait_until(bravo_sees_new, 10, interval=0, what="bravo to get alpha's new endpoint")
    latency = time.monotonic() - moved
    print(f"roamed endpoint reached bravo after {latency * 1000:.0f} ms")
    assert latency < 2.5, f"roaming took {latency:.2f} s"

# SPDX-License-Identifier: LGPL-2.1-or-later
"""Netmap deltas (docs/protocol.md, GET /v1/netmap with delta=1): a
long-poller woken by a change gets only what changed, and applying the
delta by the documented rules gives exactly the full netmap."""

import json
import threading

from meshlab import wait_until
from test_hub import api, fake_key, register, register_body


def apply_delta(base, delta):
    """The merge rule of docs/protocol.md, written independently of meshd's."""
    assert delta["delta_from"] == base["version"]
    gone = set(delta["peers_removed"]) | {p["public_key"] for p in delta["peers_changed"]}
    merged = {k: v for k, v in delta.items()
              if k not in ("delta_from", "peers_changed", "peers_removed")}
    merged["peers"] = ([p for p in base["peers"] if p["public_key"] not in gone]
                       + delta["peers_changed"])
    return merged


def canonical(nm):
    return {**nm, "peers": sorted(nm["peers"], key=lambda p: p["public_key"])}


def long_poll(control, token, since, result):
    result.append(api(control, "GET", f"/v1/netmap?since={since}&delta=1&timeout=20", token=token,
                      timeout=25))


def test_delta_equals_full_netmap(control):
    key = control.authkey(reusable=True)
    nodes = {n: register(control, key.key, n, [f"192.0.2.{20 + i}:41641"])
             for i, n in enumerate(("alpha", "bravo", "charlie", "delta"))}
    token = nodes["alpha"]["token"]
    status, base = api(control, "GET", "/v1/netmap?since=0", token=token)
    assert status == 200 and "delta_from" not in base

    changes = [
        # a new node
        lambda: register(control, key.key, "echo"),
        # a peer's endpoints
        lambda: api(control, "POST", "/v1/endpoints", {"endpoints": ["198.51.100.7:5000"]},
                    token=nodes["bravo"]["token"]),
        # a relay decision for the pair (alpha, charlie): only alpha's view of charlie changes
        lambda: api(control, "POST", "/v1/paths",
                    {"peers": [{"public_key": nodes["alpha"]["netmap"]["self"]["public_key"],
                                "direct": False}]}, token=nodes["charlie"]["token"]),
        # a removal
        lambda: control.remove_node("delta"),
        # alpha's own entry
        lambda: api(control, "POST", "/v1/endpoints", {"endpoints": ["192.0.2.99:41641"]}, token=token),
    ]
    for change in changes:
        result = []
        poller = threading.Thread(target=long_poll, args=(control, token, base["version"], result))
        poller.start()
        change()
        poller.join(30)
        status, delta = result[0]
        assert status == 200, delta
        assert delta.get("delta_from") == base["version"], f"not a delta: {sorted(delta)}"
        assert "peers" not in delta
        # small: only what changed
        assert len(delta["peers_changed"]) + len(delta["peers_removed"]) <= 1, delta
        status, full = api(control, "GET", "/v1/netmap?since=0", token=token)
        assert status == 200
        assert canonical(apply_delta(base, delta)) == canonical(full)
        base = full


def test_no_delta_when_the_base_is_not_the_previous_version(control):
    key = control.authkey(reusable=True)
    a = register(control, key.key, "alpha")
    register(control, key.key, "bravo")
    first = a["netmap"]["version"]
    # two more versions: the server's previous snapshot is no longer `first`
    register(control, key.key, "charlie")
    api(control, "GET", "/v1/netmap?since=0", token=a["token"])
    register(control, key.key, "delta")
    status, nm = api(control, "GET", f"/v1/netmap?since={first}&delta=1", token=a["token"])
    assert status == 200 and "delta_from" not in nm and len(nm["peers"]) == 3
    # and without delta=1 never a delta, whatever the version
    status, nm2 = api(control, "GET", "/v1/netmap?since=0", token=a["token"])
    register(control, key.key, "echo")
    status, nm3 = api(control, "GET", f"/v1/netmap?since={nm2['version']}", token=a["token"])
    assert status == 200 and "delta_from" not in nm3


def test_delta_after_a_restart(control):
    """A server that only parked polls since it started (a restarted one,
    or a replica whose nodes came from the other) loads the snapshot they
    have while they wait, so that the next change is a delta, not a whole
    netmap for every node (at 10,000 nodes on two replicas the fan-out
    took 94 s of ~1.8 MB replies instead of ~1 s)."""
    key = control.authkey(reusable=True)
    a = register(control, key.key, "alpha")
    register(control, key.key, "bravo")
    status, base = api(control, "GET", "/v1/netmap?since=0", token=a["token"])
    assert status == 200
    control.restart()
    control.wait_ready(20)
    # parks, then 304 after a second: the server has seen base's version
    status, _ = api(control, "GET", f"/v1/netmap?since={base['version']}&delta=1&timeout=1",
                    token=a["token"])
    assert status == 304
    register(control, key.key, "charlie")
    status, delta = api(control, "GET", f"/v1/netmap?since={base['version']}&delta=1", token=a["token"])
    assert status == 200 and delta.get("delta_from") == base["version"], sorted(delta)
    assert [p["name"] for p in delta["peers_changed"]] == ["charlie"]


def test_bad_delta_argument(control):
    key = control.authkey()
    a = register(control, key.key, "alpha")
    status, data = api(control, "GET", "/v1/netmap?since=1&delta=yes", token=a["token"])
    assert status == 400 and "delta" in data["error"]


def test_meshd_follows_deltas(mesh3, control):
    """meshd asks for deltas: after several changes its peers are exactly
    the server's, and a node added later is pingable by name."""
    alpha = mesh3[0]
    key = control.authkey(reusable=True)
    for i in range(3):
        register(control, key.key, f"ghost{i}", [f"203.0.113.{i + 1}:41641"])
    control.remove_node("ghost1")

    def peers_match():
        names = {p["name"] for p in alpha.peers()}
        return names == {"bravo", "charlie", "ghost0", "ghost2"}

    wait_until(peers_match, 10, what="alpha's peers follow the server")
    log = alpha.log.read_text(errors="replace")
    assert "Merged a netmap delta" in log
    assert "Ignoring invalid netmap" not in log
    assert "Refusing an invalid netmap" not in log


def test_large_body_accepted(control):
    """A body near the 1 MiB limit still goes through the server's small
    per-connection buffer (it is streamed, not held by MHD)."""
    key = control.authkey()
    a = register(control, key.key, "alpha")
    peers = [{"public_key": fake_key(), "direct": True} for _ in range(9000)]
    body_size = len(json.dumps({"peers": peers}))
    assert 600_000 < body_size < 1024 * 1024
    status, data = api(control, "POST", "/v1/paths", {"peers": peers}, token=a["token"])
    assert status == 204, (status, data)


def test_register_reply_netmap_scope(control):
    """"netmap_scope": "self" (what meshd asks for): the reply's netmap is
    the node alone at the current version, said so in the reply; the first
    long-poll (since=0) has every peer. Without it, the whole netmap, as
    before; any other scope is a 400 naming the field."""
    key = control.authkey(reusable=True)
    for name in ("alpha", "bravo"):
        register(control, key.key, name, ["192.0.2.20:41641"])

    status, full = api(control, "POST", "/v1/register", register_body(control, key.key, "charlie"))
    assert status == 200 and "netmap_scope" not in full
    assert sorted(p["name"] for p in full["netmap"]["peers"]) == ["alpha", "bravo"]

    body = {**register_body(control, key.key, "delta"), "netmap_scope": "self"}
    status, own = api(control, "POST", "/v1/register", body)
    assert status == 200 and own["netmap_scope"] == "self", own
    nm = own["netmap"]
    assert nm["self"]["name"] == "delta" and nm["peers"] == [] and "filter" not in nm, nm
    assert nm["version"] > full["netmap"]["version"]
    assert nm["hub"] == full["netmap"]["hub"]
    status, first = api(control, "GET", "/v1/netmap?since=0&delta=1", token=own["token"])
    assert status == 200 and "delta_from" not in first
    assert first["version"] >= nm["version"] and first["self"] == nm["self"]
    assert sorted(p["name"] for p in first["peers"]) == ["alpha", "bravo", "charlie"]

    body = {**register_body(control, key.key, "echo"), "netmap_scope": "peers"}
    status, error = api(control, "POST", "/v1/register", body)
    assert (status, error["error"]) == (400, 'netmap_scope: must be "self" or "full"')


def test_meshctl_up_answers_with_peers(lab, control):
    """meshd registers with "netmap_scope": "self" and answers `meshctl up`
    only after its first long-poll: its peers are there when up returns,
    and the cached netmap is the whole one."""
    key = control.authkey(reusable=True)
    alpha = lab.add_node("alpha", authkey=key)
    alpha.start()
    alpha.wait_ready(30)
    bravo = lab.add_node("bravo", join=False)
    bravo.start()
    bravo.wait_api(10)
    cp = bravo.meshctl("up", "--server", control.url, "--authkey", key.key, "--pin", control.pin)
    assert cp.returncode == 0, cp.stderr
    assert bravo.peer_names() == {"alpha"}
    cached = json.loads((bravo.state_dir / "netmap.json").read_text())
    assert [p["name"] for p in cached["peers"]] == ["alpha"]
    wait_until(lambda: "bravo" in alpha.peer_names(), 10, what="alpha sees bravo")

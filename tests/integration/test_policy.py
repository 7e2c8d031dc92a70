# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 16: the access policy on the control server. `meshd-control policy
set|get|test|clear`, refusals that name the line at fault and keep the old
policy, each node's netmap holding only the peers it may talk to and its
"filter", and every change on every node within 2 s. Port-level
enforcement on the node is the firewall's (test of meshd's nftables table);
here the "filter" it is built from is read from the node's cached netmap."""

import json
import re
import time

import pytest

from meshlab import AuthKey

PROPAGATION_S = 2.0     # issue 16: a policy change reaches every node within 2 s

POLICY = """{
  "groups": {"admins": ["alpha"]},
  "rules": [
    "allow group:admins -> tag:server:22/tcp,icmp"
  ],
  "tests": [
    "alpha can reach charlie:22/tcp",
    "alpha cannot reach charlie:80/tcp",
    "bravo cannot reach charlie"
  ]
}
"""

# line 7 is the test that fails: bravo has no rule
FAILING = """{
  "groups": {"admins": ["alpha"]},
  "rules": [
    "allow group:admins -> tag:server:22/tcp"
  ],
  "tests": [
    "bravo can reach charlie:22/tcp"
  ]
}
"""

MALFORMED = """{
  "rules": [
    "allow alpha -> charlie",
  ]
}
"""

UNKNOWN_GROUP = """{
  "rules": [
    "allow alpha -> bravo",
    "allow group:ops -> charlie"
  ]
}
"""


def start_mesh(lab, control):
    """alpha and bravo with a plain key, charlie with a key tagged server."""
    plain = control.authkey(reusable=True)
    lines = control.command("authkey", "create", "--tag=server").stdout.splitlines()
    tagged = AuthKey(lines[0].strip(), lines[1].strip())
    nodes = [lab.add_node("alpha", authkey=plain), lab.add_node("bravo", authkey=plain),
             lab.add_node("charlie", authkey=tagged)]
    for n in nodes:
        n.start()
    for n in nodes:
        n.wait_ready(30)
    return nodes


def netmap(node) -> dict:
    return json.loads((node.state_dir / "netmap.json").read_text())


def wait_peers(nodes, want: dict, what: str) -> float:
    """Until every node's `meshctl peers` names exactly want[name]; returns
    the seconds it took, fails after PROPAGATION_S."""
    start = time.monotonic()
    while True:
        seen = {n.name: n.peer_names() for n in nodes}
        if seen == want:
            return time.monotonic() - start
        if time.monotonic() - start > PROPAGATION_S:
            raise AssertionError(f"{what}: after {PROPAGATION_S} s peers are {seen}, want {want}")
        time.sleep(0.05)


def set_policy(control, tmp_path, text, name="policy.json"):
    path = tmp_path / name
    path.write_text(text)
    return control.command("policy", "set", path, check=False)


def test_policy_cli_refusals_keep_the_old_policy(lab, control, tmp_path):
    """`policy set` refuses malformed JSON, unknown groups and a policy
    whose own test fails, each with its line, and keeps what was there;
    `policy get` prints the stored text exactly; `policy test` changes
    nothing; `policy clear` removes it."""
    start_mesh(lab, control)
    cp = control.command("policy", "get", check=False)
    assert cp.returncode != 0 and "No policy" in cp.stderr, cp

    cp = set_policy(control, tmp_path, POLICY)
    assert cp.returncode == 0, cp.stderr
    assert control.command("policy", "get").stdout == POLICY

    for text, where in ((MALFORMED, "line 4: not valid JSON"),
                        (UNKNOWN_GROUP, "line 4: unknown group 'group:ops'"),
                        (FAILING, "line 7: test 'bravo can reach charlie:22/tcp' fails")):
        cp = set_policy(control, tmp_path, text, "bad.json")
        assert cp.returncode != 0, f"accepted:\n{text}"
        assert where in cp.stderr, cp.stderr
        assert len(cp.stderr.strip().splitlines()) == 1, cp.stderr
        assert control.command("policy", "get").stdout == POLICY, "the old policy is gone"
        cp = control.command("policy", "test", tmp_path / "bad.json", check=False)
        assert cp.returncode != 0 and where in cp.stderr, cp.stderr

    (tmp_path / "other.json").write_text('{"rules": []}')
    cp = control.command("policy", "test", tmp_path / "other.json", check=False)
    assert cp.returncode == 0, cp.stderr
    assert control.command("policy", "get").stdout == POLICY, "policy test changed the policy"

    cp = control.command("policy", "set", tmp_path / "missing.json", check=False)
    assert cp.returncode != 0 and "missing.json" in cp.stderr

    control.command("policy", "clear")
    assert control.command("policy", "get", check=False).returncode != 0

    nodes = control.nodes()
    tags = {n["name"]: n.get("tags") for n in nodes}
    assert tags == {"alpha": [], "bravo": [], "charlie": ["server"]}, tags
    cp = control.command("nodes", "expire", "charlie", check=False)
    assert cp.returncode != 0 and "tagged" in cp.stderr, cp


@pytest.mark.databases("sqlite", "postgresql")
def test_policy_filters_peers_and_reaches_every_node(lab, control, tmp_path):
    """With the policy alpha sees only charlie (tag:server) and charlie only
    alpha; bravo sees nobody and cannot ping charlie, alpha can. Charlie's
    netmap carries the filter "from alpha to me on 22/tcp and icmp",
    alpha's an empty one. Removing the rule removes the peer; clearing the
    policy brings the whole mesh back; every change within 2 s."""
    alpha, bravo, charlie = start_mesh(lab, control)
    everyone = {"alpha": {"bravo", "charlie"}, "bravo": {"alpha", "charlie"},
                "charlie": {"alpha", "bravo"}}
    wait_peers((alpha, bravo, charlie), everyone, "before any policy")
    assert "filter" not in netmap(charlie)
    v4 = {n.name: n.status()["ipv4"] for n in (alpha, bravo, charlie)}
    assert alpha.can_ping(v4["charlie"], within=10)

    assert set_policy(control, tmp_path, POLICY).returncode == 0
    took = wait_peers((alpha, bravo, charlie),
                      {"alpha": {"charlie"}, "bravo": set(), "charlie": {"alpha"}}, "policy set")
    print(f"policy set → every node's peers: {took:.2f} s")

    assert alpha.can_ping(v4["charlie"], within=10), "alpha → charlie is allowed (icmp)"
    assert bravo.ping(v4["charlie"]).returncode != 0, "bravo reached charlie"
    assert charlie.ping(v4["bravo"]).returncode != 0, "charlie reached bravo"

    s = {n.name: n.status() for n in (alpha, charlie)}
    want = [{"src": [f"{s['alpha']['ipv4']}/32"] + ([f"{s['alpha']['ipv6']}/128"] if s["alpha"].get("ipv6") else []),
             "dst": [f"{s['charlie']['ipv4']}/32"] +
                    ([f"{s['charlie']['ipv6']}/128"] if s["charlie"].get("ipv6") else []),
             "ports": ["22/tcp", "icmp"]}]
    assert netmap(charlie).get("filter") == want, netmap(charlie).get("filter")
    assert netmap(alpha).get("filter") == [], netmap(alpha).get("filter")
    assert netmap(bravo).get("filter") == []

    # removing the rule removes the access
    assert set_policy(control, tmp_path, '{"rules": []}\n', "empty.json").returncode == 0
    took = wait_peers((alpha, bravo, charlie),
                      {"alpha": set(), "bravo": set(), "charlie": set()}, "rule removed")
    print(f"rule removed → every node: {took:.2f} s")
    assert alpha.ping(v4["charlie"]).returncode != 0, "alpha still reaches charlie"
    assert netmap(charlie).get("filter") == []

    control.command("policy", "clear")
    took = wait_peers((alpha, bravo, charlie), everyone, "policy cleared")
    print(f"policy cleared → every node: {took:.2f} s")
    assert "filter" not in netmap(charlie)
    assert bravo.can_ping(v4["charlie"], within=10)


def test_policy_devices_by_tag(lab, control, tmp_path):
    """A device added with --tag=cam is in the netmap only of the nodes a
    rule lets talk to it, and is a source in their filter; a policy test
    names it."""
    alpha, bravo, charlie = start_mesh(lab, control)
    control.command("devices", "add", "cam1", "--tag=cam")
    policy = ('{"rules": ["allow tag:cam -> alpha:554/tcp", "allow alpha -> tag:cam:80/tcp,icmp"],\n'
              ' "tests": ["cam1 can reach alpha:554/tcp", "cam1 cannot reach bravo",\n'
              '           "alpha can reach cam1:80/tcp", "bravo cannot reach cam1"]}\n')
    cp = set_policy(control, tmp_path, policy)
    assert cp.returncode == 0, cp.stderr

    def devices(node):
        return {d["name"] for d in netmap(node).get("devices", [])}

    start = time.monotonic()
    while devices(alpha) != {"cam1"} or devices(bravo) or devices(charlie):
        assert time.monotonic() - start < PROPAGATION_S, \
            f"devices: alpha {devices(alpha)}, bravo {devices(bravo)}, charlie {devices(charlie)}"
        time.sleep(0.05)
    cam = [d for d in netmap(alpha)["devices"] if d["name"] == "cam1"][0]
    srcs = {p for e in netmap(alpha)["filter"] for p in e["src"]}
    assert f"{cam['ipv4']}/32" in srcs, netmap(alpha)["filter"]
    assert netmap(alpha)["filter"][0]["ports"] == ["554/tcp"]

    cp = set_policy(control, tmp_path, '{"rules": [], "tests": ["cam1 can reach alpha"]}', "no.json")
    assert cp.returncode != 0 and "line 1: test 'cam1 can reach alpha' fails" in cp.stderr, cp.stderr

    # the hub: devices have no firewall of their own, so new connections to
    # cam1 that no rule allows are dropped there (a chain of the hub's table)
    chain = ["nft", "list", "chain", "inet", f"meshd_hub_{control.hub_interface}", "device_policy"]

    def hub_chain():
        return control.ns.exec(*chain).stdout

    start = time.monotonic()
    while f"ip daddr {cam['ipv4']} counter" not in hub_chain():
        assert time.monotonic() - start < PROPAGATION_S, hub_chain()
        time.sleep(0.05)
    text = hub_chain()
    assert "ct state established,related accept" in text, text
    alpha4 = alpha.status()["ipv4"]
    assert f"ip saddr {alpha4} ip daddr {cam['ipv4']} tcp dport 80 accept" in text, text
    assert f"ip saddr {alpha4} ip daddr {cam['ipv4']} meta l4proto {{ icmp, ipv6-icmp }} accept" in text, text
    control.command("policy", "clear")
    start = time.monotonic()
    while "daddr" in hub_chain():
        assert time.monotonic() - start < PROPAGATION_S, hub_chain()
        time.sleep(0.05)


def test_hub_drops_what_the_policy_denies_a_device(lab, control):
    """A device has no firewall: the hub is where the policy holds for it.
    alpha may reach cam1 and pings it; bravo may not, so cam1 is not in
    bravo's netmap, and when bravo (root on its machine) routes cam1's
    address into its hub peer anyway, the hub drops the ping; without a
    policy the same forced route works (the test can fail)."""
    from test_devices import Phone     # the stock wg-quick "phone" of test_devices.py

    alpha, bravo, _charlie = start_mesh(lab, control)
    cp = control.command("devices", "add", "cam1", "--tag=cam")
    phone = Phone(lab, "phone", 0, cp.stdout)
    cam = phone.address

    # bravo forces cam1 into its hub peer, as a node that ignores its netmap would
    hub_key = netmap(bravo)["hub"]["public_key"]
    allowed = bravo.exec("wg", "show", bravo.interface, "allowed-ips", check=True).stdout
    have = [line.split("\t")[1].split() for line in allowed.splitlines() if line.startswith(hub_key)][0]

    def force_route():
        ips = sorted(set(have) | {f"{cam}/32"})
        bravo.exec("wg", "set", bravo.interface, "peer", hub_key, "allowed-ips", ",".join(ips), check=True)
        bravo.ns.ip("route", "replace", f"{cam}/32", "dev", bravo.interface)

    force_route()
    assert bravo.can_ping(cam, within=10), "without a policy bravo reaches cam1 through the hub"

    (lab.dir / "p.json").write_text('{"rules": ["allow alpha -> tag:cam"]}\n')
    assert control.command("policy", "set", lab.dir / "p.json").returncode == 0
    start = time.monotonic()
    while bravo.ping(cam).returncode == 0:
        force_route()      # meshd rewrites the hub peer with each netmap
        assert time.monotonic() - start < PROPAGATION_S + 2, "the hub still forwards bravo → cam1"
    force_route()
    assert bravo.ping(cam, count=2).returncode != 0, "the hub forwarded bravo → cam1"
    chain = control.ns.exec("nft", "list", "chain", "inet", f"meshd_hub_{control.hub_interface}",
                            "device_policy", check=True).stdout
    dropped = re.search(rf"ip daddr {re.escape(cam)} counter packets (\d+)", chain)
    assert dropped and int(dropped.group(1)) > 0, f"the hub's drop rule saw nothing:\n{chain}"
    assert alpha.can_ping(cam, within=10), "alpha → cam1 is allowed"

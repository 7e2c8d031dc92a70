# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 16, Done-when 4: meshd's routes, an exit node's `ip rule`s and
`table inet meshd` survive `systemctl restart systemd-networkd`, a link
flap (the L2 link, which networkd configures again, and mesh0) and
`systemctl restart meshd`, and a Docker-style table of someone else is
never touched.

The client uses the nas as its exit node and accepts the nas's subnet route
198.51.100.0/24 (approved on the control server; the policy grants the
routed prefixes), so the snapshot holds the rules 32700/32701, table
5066's default routes, the subnet route and the mesh range on mesh0.
systemd-networkd (ManageForeignRoutingPolicyRules=yes, its default) drops
the exit rules when it configures the L2 link; meshd re-adds them
(rule-watch.c): the snapshot is the same text again afterwards.

Reuses the booted VMs of the suite (conftest.py). An allow-all policy on the
control server makes the client keep `table inet meshd`; the client's routes
on mesh0 are what meshd put there. systemd-networkd runs in the image with a
.network file for the L2 link, and the test adds an admin's catch-all file
for WireGuard links; meshd ships 80-meshd.network (Unmanaged=yes for mesh0),
which is what keeps networkd's ManageForeignRoutes= off mesh0.
"""

import time

import pytest

CATCH_ALL = "/etc/systemd/network/90-all-wireguard.network"
POLICY = '{"rules": ["allow * -> *", "allow * -> 0.0.0.0/0", "allow * -> ::/0"]}'
LAN = "198.51.100.0/24"
REPAIRED = "Re-added what something else removed"

# what Docker leaves in the host's nat table, in nft's own words
DOCKER_TABLE = """\
table ip nat {
	chain DOCKER {
		iifname "docker0" counter return
	}
	chain POSTROUTING {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 172.17.0.0/16 oifname != "docker0" counter masquerade
	}
}
"""


def snapshot(vm) -> dict:
    out = {}
    for key, cmd in (("routes", "ip -4 route show table all dev mesh0; ip -6 route show table all dev mesh0"),
                     ("rules", "ip -4 rule; ip -6 rule"),
                     ("meshd", "nft list table inet meshd"),
                     ("docker", "nft list table ip nat")):
        r = vm.sh(cmd)
        out[key] = r.stdout if r.returncode == 0 else f"rc={r.returncode}: {r.stderr}"
    return out


def wait_l2_configured(vm, timeout=30.0):
    """networkd has (re)configured the L2 link: any foreign route or rule it
    drops is gone by then."""
    deadline = time.monotonic() + timeout
    while True:
        r = vm.sh("networkctl list --no-legend")
        if any(" ether " in line and " configured" in line for line in r.stdout.splitlines()):
            return
        assert time.monotonic() < deadline, r.stdout + r.stderr
        time.sleep(0.5)


def wait_same(vm, before, timeout=30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        now = snapshot(vm)
        if now == before or time.monotonic() > deadline:
            return now
        time.sleep(0.5)


def diff(before, after) -> str:
    return "\n".join(f"--- {k} before:\n{before[k]}--- {k} after:\n{after[k]}"
                     for k in before if before[k] != after[k])


def sh_ok(vm, cmd, timeout=60.0):
    r = vm.sh(cmd, timeout=timeout)
    assert r.returncode == 0, f"{vm.name}: {cmd}:\n{r.stdout}{r.stderr}"
    return r.stdout


def wait_for(vm, cmd, predicate, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        r = vm.sh(cmd)
        if predicate(r.stdout):
            return r.stdout
        assert time.monotonic() < deadline, f"{vm.name}: {what}:\n{r.stdout}{r.stderr}\n" + \
            vm.journal_text("-u meshd", lines=60)
        time.sleep(0.5)


@pytest.fixture(scope="module")
def routed(client, nas, control):
    """The policy set, the nas an approved exit node with a subnet route,
    the client using both, its table in place, Docker's table added."""
    t0 = time.monotonic()
    sh_ok(control, f"cat > /tmp/policy.json <<'EOF'\n{POLICY}\nEOF\n"
                   "meshd-control policy set /tmp/policy.json")
    # an admin's file that would make networkd manage every WireGuard link;
    # meshd's 80-meshd.network sorts first and keeps mesh0 unmanaged
    sh_ok(client, f"cat > {CATCH_ALL} <<'EOF'\n[Match]\nKind=wireguard\n\n"
                  "[Network]\nLinkLocalAddressing=no\nEOF\nnetworkctl reload")
    sh_ok(client, f"nft -f - <<'EOF'\n{DOCKER_TABLE}EOF\n")
    sh_ok(nas.vm, f"meshctl up --advertise-exit-node --advertise-routes={LAN}")
    wait_for(control, "meshd-control routes list", lambda out: LAN in out and "::/0" in out,
             "the nas's routes advertised")
    for prefix in ("0.0.0.0/0", "::/0", LAN):
        sh_ok(control, f"meshd-control routes approve nas {prefix}")
    sh_ok(client, "meshctl up --exit-node=nas --accept-routes=all")
    wait_for(client, "ip -4 rule; ip -4 route show table all dev mesh0",
             lambda out: "lookup 5066" in out and f"{LAN} " in out and "default table 5066" in out,
             "the client using the exit node and the subnet route")
    wait_for(client, "nft list table inet meshd", lambda out: "table inet meshd" in out,
             "the client's table inet meshd")
    before = wait_stable(client)
    assert "100.64.0.0/10" in before["routes"], before["routes"]
    assert "not from all fwmark 0x13ca lookup 5066" in before["rules"], before["rules"]
    assert "DOCKER" in before["docker"]
    assert client.sh("systemctl is-active systemd-networkd").stdout.strip() == "active"
    print(f"\n[vm] exit node and subnet route set up in {time.monotonic() - t0:.1f} s")
    yield before
    client.sh("meshctl up --exit-node= --accept-routes=none")
    nas.vm.sh("meshctl up --advertise-exit-node=no --advertise-routes=")
    client.sh(f"nft delete table ip nat; rm -f {CATCH_ALL}; networkctl reload")
    control.sh("meshd-control policy clear")


def wait_stable(vm, timeout=20.0) -> dict:
    """The snapshot once two in a row, 1 s apart, agree (the netmaps of
    the approvals have arrived)."""
    deadline = time.monotonic() + timeout
    last = snapshot(vm)
    while True:
        time.sleep(1)
        now = snapshot(vm)
        if now == last:
            return now
        assert time.monotonic() < deadline, diff(last, now)
        last = now


def test_networkd_leaves_the_mesh_interface_unmanaged(client, routed):
    r = client.sh("networkctl list --no-legend mesh0")
    assert "unmanaged" in r.stdout, r.stdout + r.stderr


def l2_ifname(vm) -> str:
    out = sh_ok(vm, "networkctl list --no-legend")
    return next(line.split()[1] for line in out.splitlines() if " ether " in line)


ACTIONS = {
    "restart-networkd": "systemctl restart systemd-networkd",
    "restart-meshd": "systemctl restart meshd",
    "flap-l2": "ip link set dev {l2} down; sleep 1; ip link set dev {l2} up",
    "flap-mesh0": "ip link set dev mesh0 down; sleep 1; ip link set dev mesh0 up",
}


@pytest.mark.parametrize("action", list(ACTIONS))
def test_routes_rules_and_tables_come_back(client, routed, action):
    repaired = client.journal_text("-u meshd").count(REPAIRED)
    t0 = time.monotonic()
    r = client.sh(ACTIONS[action].format(l2=l2_ifname(client)), timeout=60)
    assert r.returncode == 0, r.stderr
    if action != "flap-mesh0":
        wait_l2_configured(client)
    after = wait_same(client, routed)
    took = time.monotonic() - t0
    assert after == routed, f"after {action}:\n{diff(routed, after)}"
    assert after["docker"] == routed["docker"]
    n = client.journal_text("-u meshd").count(REPAIRED) - repaired
    print(f"\n[vm] {action}: the same again after {took:.1f} s, {n} repair(s) by meshd")

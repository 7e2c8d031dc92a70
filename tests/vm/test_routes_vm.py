# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 16, Done-when 4: meshd's routes and its `table inet meshd` survive
`systemctl restart systemd-networkd` and `systemctl restart meshd`, and a
Docker-style table of someone else is never touched.

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
POLICY = '{"rules": ["allow * -> *"]}'

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


@pytest.fixture(scope="module")
def routed(client, nas, control):
    """The allow-all policy set, the client's table in place, Docker's table added."""
    r = control.sh(f"cat > /tmp/policy.json <<'EOF'\n{POLICY}\nEOF\n"
                   "meshd-control policy set /tmp/policy.json")
    assert r.returncode == 0, r.stdout + r.stderr
    # an admin's file that would make networkd manage every WireGuard link;
    # meshd's 80-meshd.network sorts first and keeps mesh0 unmanaged
    r = client.sh(f"cat > {CATCH_ALL} <<'EOF'\n[Match]\nKind=wireguard\n\n"
                  "[Network]\nLinkLocalAddressing=no\nEOF\nnetworkctl reload")
    assert r.returncode == 0, r.stderr
    r = client.sh(f"nft -f - <<'EOF'\n{DOCKER_TABLE}EOF\n")
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 20
    while client.sh("nft list table inet meshd").returncode != 0:
        assert time.monotonic() < deadline, "client has no table inet meshd:\n" + client.journal_text("-u meshd")
        time.sleep(0.5)
    before = snapshot(client)
    assert "100.64.0.0/10" in before["routes"], before["routes"]
    assert "DOCKER" in before["docker"]
    assert client.sh("systemctl is-active systemd-networkd").stdout.strip() == "active"
    yield before
    client.sh(f"nft delete table ip nat; rm -f {CATCH_ALL}; networkctl reload")
    control.sh("meshd-control policy clear")


def test_networkd_leaves_the_mesh_interface_unmanaged(client, routed):
    r = client.sh("networkctl list --no-legend mesh0")
    assert "unmanaged" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("unit", ["systemd-networkd", "meshd"])
def test_restart_keeps_routes_and_tables(client, routed, unit):
    r = client.sh(f"systemctl restart {unit}", timeout=60)
    assert r.returncode == 0, r.stderr
    if unit == "systemd-networkd":
        wait_l2_configured(client)
    after = wait_same(client, routed)
    assert after == routed, f"after systemctl restart {unit}:\n{diff(routed, after)}"
    assert after["docker"] == routed["docker"]

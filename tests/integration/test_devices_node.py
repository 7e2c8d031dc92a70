# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 14, the node's side of devices (plain WireGuard phones and cameras).

A device is in the netmap's "devices" list (docs/protocol.md). A node gives
it no WireGuard peer of its own: its addresses join the hub entry's
AllowedIPs, so traffic to it goes through the hub. It resolves like a node
(nss-mesh: NAME and NAME.DOMAIN), `meshctl peers` lists it with path hub and
kind device, and a netmap whose device list breaks the rules (a key or an
address of a node, a name that is no DNS label) is refused whole, with one
journal line, keeping the last good netmap.

The first tests get their netmaps from the hostile control server of
test_attack_control.py (the real server's TLS identity, any netmap), so they
need nothing of the control server's side. The last one uses the real
`meshd-control devices add` and skips while that verb does not exist.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re

import pytest

import meshlab
from meshlab import wait_until
from test_attack_control import HostileControl, log_lines, pair, snapshot  # noqa: F401 (pair: fixture)

REFUSED = "Refusing an invalid netmap from the control server: "


def device_entry(real: dict, name: str, host: int, key: str | None = None) -> dict:
    """A device with addresses far above the nodes' in the mesh's ranges."""
    v4 = ipaddress.ip_network(real["ipv4_range"]).network_address + 200 * 256 + host
    entry = {"name": name, "public_key": key or meshlab.keypair()[1], "ipv4": str(v4)}
    if real.get("ipv6_range"):
        entry["ipv6"] = str(ipaddress.ip_network(real["ipv6_range"]).network_address + 0xc800 + host)
    return entry


def hub_allowed_ips(node, hub_key: str) -> set:
    wg = node.wg_show()
    peer = wg.peers.get(hub_key) if wg else None
    return set(peer.allowed_ips) if peer else set()


def device_ips(entry: dict) -> set:
    ips = {f"{entry['ipv4']}/32"}
    if entry.get("ipv6"):
        ips.add(f"{entry['ipv6']}/128")
    return ips


class Served:
    """One hostile control server at a time, each serving one scenario."""

    def __init__(self, lab, control):
        self.lab, self.control, self.current, self.n = lab, control, None, 0

    def serve(self, scenario: dict) -> HostileControl:
        if self.current:
            self.current.stop()
        else:
            self.control.stop()
        self.n += 1
        self.current = HostileControl(self.lab, self.control, scenario, f"devices-{self.n}")
        self.lab.daemons.append(self.current)
        self.current.start()
        self.current.wait_ready(10)
        return self.current


def peers_row(node, name: str) -> list[str]:
    out = node.meshctl("peers", check=True).stdout.splitlines()
    return next((line.split() for line in out if line.split()[:1] == [name]), [])


def test_device_routed_through_hub(lab, control, pair):  # noqa: F811
    alpha, beta = pair["alpha"], pair["beta"]
    real = json.loads((alpha.state_dir / "netmap.json").read_text())
    assert real.get("hub"), "the control server has a hub"
    hub_key = real["hub"]["public_key"]
    hub_before = hub_allowed_ips(alpha, hub_key)
    nss = meshlab.NssResolver(lab, alpha, meshlab.write_nsswitch(lab, alpha, True))
    served = Served(lab, control)

    # a netmap with a device: its addresses join the hub entry, nothing else
    cam1 = device_entry(real, "cam1", 9)
    with_cam = dict(copy.deepcopy(real), version=real["version"] + 1000, devices=[cam1])
    served.serve({"netmap": with_cam, "ca": ""})
    wait_until(lambda: hub_allowed_ips(alpha, hub_key) == hub_before | device_ips(cam1), 30,
               what="cam1's addresses on alpha's hub entry")
    assert cam1["public_key"] not in alpha.wg_show().peers, "a WireGuard peer of its own"
    assert nss.addresses("ahostsv4", "cam1.mesh.internal") == {cam1["ipv4"]}
    assert nss.addresses("ahostsv4", "cam1") == {cam1["ipv4"]}
    if cam1.get("ipv6"):
        assert nss.addresses("ahostsv6", "cam1.mesh.internal") == {cam1["ipv6"]}
    listed = {p["name"]: p for p in alpha.peers()}
    assert (listed["cam1"]["kind"], listed["cam1"]["path"]) == ("device", "hub")
    assert listed["cam1"]["ipv4"] == cam1["ipv4"] and listed["cam1"]["endpoint"] is None
    assert listed["beta"]["kind"] == "node"
    row = peers_row(alpha, "cam1")
    assert row[1:3] == [cam1["ipv4"], "hub"] and row[-1] == "device", row
    header = alpha.meshctl("peers", check=True).stdout.splitlines()[0]
    assert header.split()[-1] == "KIND", header
    assert log_lines(alpha, "Device cam1 joined the netmap")
    assert beta.running

    # a device with beta's key: refused whole, one line, the last good netmap stays
    before = snapshot(alpha)
    bad = dict(copy.deepcopy(with_cam), version=real["version"] + 1001,
               devices=[cam1, device_entry(real, "cam2", 10, key=pair["beta"].status()["public_key"])])
    reason = "devices[1].public_key: same as peers[0].public_key"
    hostile = served.serve({"netmap": bad, "ca": ""})
    wait_until(lambda: log_lines(alpha, REFUSED), 30, what="alpha refusing the bad device")
    n = hostile.requests("GET /v1/netmap")
    wait_until(lambda: hostile.requests("GET /v1/netmap") > n, 30, what="another poll")
    refusals = log_lines(alpha, REFUSED)
    assert len(refusals) == 1, refusals
    assert reason in refusals[0] and f"keeping netmap version {with_cam['version']}" in refusals[0], refusals
    assert snapshot(alpha) == before, "the refused netmap changed alpha"
    assert nss.getent("hosts", "cam2.mesh.internal").returncode == 2

    # the device goes (a delta with "devices": []): off the hub entry at once
    gone = dict(copy.deepcopy(real), version=real["version"] + 1002)
    delta = {k: v for k, v in gone.items() if k != "peers"}
    delta.update(peers_changed=[], peers_removed=[], devices=[])
    served.serve({"netmap": gone, "delta": delta, "ca": ""})
    wait_until(lambda: hub_allowed_ips(alpha, hub_key) == hub_before, 30,
               what="cam1's addresses leaving alpha's hub entry")
    assert json.loads((alpha.state_dir / "netmap.json").read_text())["version"] == gone["version"]
    assert log_lines(alpha, "Merged a netmap delta")
    assert nss.getent("hosts", "cam1.mesh.internal").returncode == 2
    assert "cam1" not in {p["name"] for p in alpha.peers()}
    header = alpha.meshctl("peers", check=True).stdout.splitlines()[0]
    assert header.split()[-1] == "(PATH)", f"KIND without a device: {header}"
    assert log_lines(alpha, "Device cam1 left the netmap")


@pytest.mark.parametrize("name", ["bad-name", "peer-address", "outside-range", "self-key", "hub-address"])
def test_bad_device_refused(lab, control, pair, name):  # noqa: F811
    alpha = pair["alpha"]
    real = json.loads((alpha.state_dir / "netmap.json").read_text())
    before = snapshot(alpha)
    dev = device_entry(real, "cam1", 9)
    reason = {
        "bad-name": ("name", "cam_1", "devices[0].name: 'cam_1' is not a valid DNS label"),
        "peer-address": ("ipv4", real["peers"][0]["ipv4"], "devices[0].ipv4: same as peers[0].ipv4"),
        "outside-range": ("ipv4", "192.168.77.9", "devices[0].ipv4: 192.168.77.9 is not inside ipv4_range"),
        "self-key": ("public_key", real["self"]["public_key"], "devices[0].public_key: same as self.public_key"),
        "hub-address": ("ipv4", real["hub"]["ipv4"], "hub.ipv4: same as devices[0].ipv4"),
    }[name]
    dev[reason[0]] = reason[1]
    bad = dict(copy.deepcopy(real), version=real["version"] + 1000, devices=[dev])
    Served(lab, control).serve({"netmap": bad, "ca": ""})
    wait_until(lambda: log_lines(alpha, REFUSED), 30, what=f"alpha refusing {name}")
    refusals = log_lines(alpha, REFUSED)
    assert len(refusals) == 1 and reason[2] in refusals[0], refusals
    assert snapshot(alpha) == before


# ------------------------------------------------------------ with the real control server

def control_has_devices() -> bool:
    cp = meshlab.run([meshlab.binary("meshd-control"), "--help"], check=False)
    return "devices add" in cp.stdout


def config_addresses(text: str) -> set:
    """The Address= of a wg-quick config, as the hub entry's AllowedIPs write them."""
    m = re.search(r"^Address\s*=\s*(.+)$", text, re.MULTILINE)
    assert m, f"no Address in the device config:\n{text}"
    return {a.strip() for a in m.group(1).split(",")}


def test_device_from_control_server(lab, control, pair):  # noqa: F811
    if not control_has_devices():
        pytest.skip("meshd-control has no 'devices' verb yet (issue 14, the control server's side)")
    alpha, beta = pair["alpha"], pair["beta"]
    hub_key = json.loads((alpha.state_dir / "netmap.json").read_text())["hub"]["public_key"]
    before = {n.name: hub_allowed_ips(n, hub_key) for n in (alpha, beta)}
    nss = meshlab.NssResolver(lab, alpha, meshlab.write_nsswitch(lab, alpha, True))

    config = control.command("devices", "add", "cam1").stdout
    addresses = config_addresses(config)
    for n in (alpha, beta):
        wait_until(lambda: hub_allowed_ips(n, hub_key) == before[n.name] | addresses, 10,
                   what=f"cam1 on {n.name}'s hub entry")
    v4 = next(a.split("/")[0] for a in addresses if ":" not in a)
    assert nss.addresses("ahostsv4", "cam1.mesh.internal") == {v4}
    listed = {p["name"]: p for p in alpha.peers()}
    assert (listed["cam1"]["kind"], listed["cam1"]["path"]) == ("device", "hub")

    control.command("devices", "remove", "cam1")
    for n in (alpha, beta):
        # the 1 s, plus the time `wg show` takes in a busy test run
        wait_until(lambda: hub_allowed_ips(n, hub_key) == before[n.name], 2,
                   what=f"cam1 leaving {n.name}'s hub entry")
    assert nss.getent("hosts", "cam1.mesh.internal").returncode == 2

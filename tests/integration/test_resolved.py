# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 14: meshd registers its mesh DNS server with systemd-resolved.

A private dbus-daemon (never the host's bus) and a stand-in for resolved
(fake_resolved.py) that writes down every call. meshd is pointed at that
bus with DBUS_SYSTEM_BUS_ADDRESS, which sd_bus_open_system() honours. The
real resolved is exercised in the VM suite (tests/vm/test_systemd.py).
"""

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import meshlab
from meshlab import wait_until

FAKE = Path(__file__).parent / "fake_resolved.py"
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""
RESOLVED_LINES = re.compile(r"systemd-resolved|system bus", re.I)


class Bus:
    """A dbus-daemon of the test's own on a Unix socket in the lab directory."""

    def __init__(self, lab, name="bus"):
        d = lab.short / name
        d.mkdir(parents=True, exist_ok=True)
        self.socket = d / "system_bus_socket"
        self.address = f"unix:path={self.socket}"
        config = d / "bus.conf"
        config.write_text(BUS_CONFIG.format(socket=self.socket))
        self.proc = subprocess.Popen(["dbus-daemon", f"--config-file={config}", "--nofork", "--nopidfile"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        wait_until(lambda: self.socket.exists() or self.proc.poll() is not None, 10, what="dbus-daemon's socket")
        assert self.proc.poll() is None, self.proc.stderr.read().decode(errors="replace")
        self.fakes = []

    def fake_resolved(self, log: Path, *, refuse=False) -> "FakeResolved":
        f = FakeResolved(self, log, refuse)
        self.fakes.append(f)
        return f

    def close(self):
        for f in self.fakes:
            f.stop()
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


class FakeResolved:
    def __init__(self, bus, log: Path, refuse):
        self.log = log
        argv = [sys.executable, str(FAKE), bus.address, str(log)] + (["refuse"] if refuse else [])
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", line + self.proc.stderr.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)


def calls(log: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


@pytest.fixture
def bus(lab):
    if not shutil.which("dbus-daemon"):
        pytest.fail("dbus-daemon not found (package dbus)")
    b = Bus(lab)
    yield b
    b.close()


def start_node(lab, key, name, bus_address, *, dns=()):
    """A node with [DNS] lines dns whose meshd sees bus_address as the system bus."""
    node = lab.add_node(name, authkey=key)
    path = lab.dir / "resolv.conf"
    path.write_text(f"nameserver {meshlab.UNDERLAY}.53\n")
    node.config.write_text(node.config.read_text() + f"\n[DNS]\nResolvConf={path}\n"
                           + "".join(f"{d}\n" for d in dns))
    env = node.env
    node.env = lambda: {**env(), "DBUS_SYSTEM_BUS_ADDRESS": bus_address}
    node.start()
    node.wait_ready(30)
    return node


def ifindex(node) -> int:
    cp = node.exec("ip", "-j", "link", "show", node.interface, check=True)
    return json.loads(cp.stdout)[0]["ifindex"]


def registration(log: Path, since=0) -> dict:
    """method → args of the calls after the first `since` ones."""
    return {c["method"]: c["args"] for c in calls(log)[since:]}


def registered(log: Path, since=0) -> bool:
    return {"SetLinkDomains", "SetLinkDefaultRoute", "SetLinkDNSSEC"} <= registration(log, since).keys()


def resolved_lines(node) -> list[str]:
    return [line for line in node.log.read_text(errors="replace").splitlines() if RESOLVED_LINES.search(line)]


def test_registers_with_resolved_and_reverts_on_stop(lab, bus):
    """SetLinkDNS with the node's own mesh addresses, the routing-only
    ~mesh.internal, never the default route, DNSSEC off on the link; on
    SIGTERM RevertLink before meshd exits."""
    log = lab.dir / "resolved-calls"
    bus.fake_resolved(log)
    control = lab.add_control()
    alpha = start_node(lab, control.authkey(reusable=True), "alpha", bus.address)
    a, index = alpha.status(), ifindex(alpha)

    wait_until(lambda: registered(log), 10, what="the registration")
    reg = registration(log)
    assert reg["SetLinkDNS"] == [index, [[2, a["ipv4"]], [10, a["ipv6"]]]], reg
    assert reg["SetLinkDomains"] == [index, [["mesh.internal", True]]], reg
    assert reg["SetLinkDefaultRoute"] == [index, False], reg
    assert reg["SetLinkDNSSEC"] == [index, "no"], reg
    assert "RevertLink" not in reg, reg
    assert any("Registered mesh DNS with systemd-resolved" in line for line in resolved_lines(alpha))

    n = len(calls(log))
    t = time.monotonic()
    assert alpha.stop() == 0
    assert time.monotonic() - t < 5
    assert [c["method"] for c in calls(log)[n:]] == ["RevertLink"], calls(log)
    assert calls(log)[-1]["args"] == [index]


def test_resolved_started_and_restarted_after_meshd(lab, bus):
    """meshd first, resolved later (one info line meanwhile, nothing sent);
    resolved restarted: registered again. [DNS] Port=5353 needs
    SetLinkDNSEx, which carries the port."""
    log = lab.dir / "resolved-calls"
    control = lab.add_control()
    alpha = start_node(lab, control.authkey(reusable=True), "alpha", bus.address, dns=["Port=5353"])
    a, index = alpha.status(), ifindex(alpha)
    lines = resolved_lines(alpha)
    assert len(lines) == 1 and "systemd-resolved is not running" in lines[0], lines

    fake = bus.fake_resolved(log)
    wait_until(lambda: registered(log), 10, what="the registration once resolved appears")
    reg = registration(log)
    assert reg["SetLinkDNSEx"] == [index, [[2, a["ipv4"], 5353, ""], [10, a["ipv6"], 5353, ""]]], reg
    assert "SetLinkDNS" not in reg

    fake.stop()
    n = len(calls(log))
    bus.fake_resolved(log)
    wait_until(lambda: registered(log, n), 10, what="the registration after resolved restarted")
    assert registration(log, n)["SetLinkDomains"] == [index, [["mesh.internal", True]]]


def test_without_resolved_meshd_runs_quietly(lab, bus):
    """No system bus: one info line, no error, and nothing more while the
    node runs (no retries). Resolved=no: nothing sent although resolved is
    on the bus. A resolved that refuses (a caller without CAP_NET_ADMIN):
    one warning, meshd runs on."""
    log, refused = lab.dir / "resolved-calls", lab.dir / "refused-calls"
    bus.fake_resolved(log)
    other = Bus(lab, "bus2")
    try:
        other.fake_resolved(refused, refuse=True)
        control = lab.add_control()
        key = control.authkey(reusable=True)
        alpha = start_node(lab, key, "alpha", f"unix:path={lab.short}/no-such-bus")
        bravo = start_node(lab, key, "bravo", bus.address, dns=["Resolved=no"])
        charlie = start_node(lab, key, "charlie", other.address)
        wait_until(lambda: registered(refused), 10, what="charlie's attempt")
        time.sleep(3)  # what a retry loop would log meanwhile

        lines = resolved_lines(alpha)
        assert len(lines) == 1 and "No system bus" in lines[0], lines
        assert resolved_lines(bravo) == [] and calls(log) == [], (resolved_lines(bravo), calls(log))
        lines = [line for line in resolved_lines(charlie) if "is on the bus" not in line]   # debug
        assert len(lines) == 1 and "refused" in lines[0] and "AccessDenied" in lines[0], lines
        assert len(calls(refused)) == 4, calls(refused)     # one registration, no retries
        for n in (alpha, bravo, charlie):
            assert n.running and n.status()["state"] == "online", n.name
    finally:
        other.close()

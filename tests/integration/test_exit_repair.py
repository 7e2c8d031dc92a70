# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 16, "routes and rules survive": what meshd keeps in the kernel's
routing comes back when something else removes it (src/daemon/rule-watch.c).
systemd-networkd with ManageForeignRoutingPolicyRules=yes drops every rule
it did not configure whenever it configures a link; an admin may `ip rule
del` or `ip route flush table 5066`; the kernel drops a link's routes when
it goes down. Each is re-added within a second, with one journal line
naming what; a second program that deletes them again and again (a network
manager fighting meshd) gets at most RULE_WATCH_REPAIRS_MAX repairs in
RULE_WATCH_WINDOW_USEC and one line saying so, not a loop.

Real control server: "exit" advertises itself as an exit node and a LAN
(198.51.100.0/24), both approved; "alpha" uses it (ExitNode=exit) and
accepts the LAN (AcceptRoutes=all).
"""

import json
import subprocess
import time

import pytest

import meshlab
from meshlab import wait_until
from test_exit import FWMARK, PUBLIC_EXIT, PUBLIC_HOST, exit_rules_present, log_lines, routing, seen_source

LAN = "198.51.100.0/24"
REPAIRED = "Re-added what something else removed"
CONTESTED = "Something keeps removing meshd's routing rules or routes"
REPAIRS_MAX = 10          # rule-watch.h
WINDOW = 10.0             # s, rule-watch.h


def add_routes_section(node, **keys):
    node.config.write_text(node.config.read_text() + "\n[Routes]\n" +
                           "".join(f"{k}={v}\n" for k, v in keys.items()))


@pytest.fixture
def exit_in_use(lab, control):
    key = control.authkey(reusable=True)
    alpha = lab.add_node("alpha", authkey=key)
    exitn = lab.add_node("exit", authkey=key)
    add_routes_section(exitn, AdvertiseExitNode="yes", Advertise=LAN)
    add_routes_section(alpha, ExitNode="exit", AcceptRoutes="all")
    lan = lab._netns("lan")
    exitn.ns.ip("link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", lan.name)
    exitn.ns.ip("addr", "add", "198.51.100.1/24", "dev", "lan0")
    exitn.ns.ip("link", "set", "lan0", "up")
    lan.ip("link", "set", "eth0", "up")
    # a "public" host behind the exit node alone
    public = lab._netns("public")
    exitn.ns.ip("link", "add", "pub0", "type", "veth", "peer", "name", "eth0", "netns", public.name)
    exitn.ns.ip("addr", "add", f"{PUBLIC_EXIT}/24", "dev", "pub0")
    exitn.ns.ip("link", "set", "pub0", "up")
    public.ip("addr", "add", f"{PUBLIC_HOST}/24", "dev", "eth0")
    public.ip("link", "set", "eth0", "up")
    exitn.exec("sysctl", "-qw", "net.ipv4.ip_forward=1", check=True)
    for n in (alpha, exitn):
        n.start()
    for n in (alpha, exitn):
        n.wait_ready(30)
    wait_until(lambda: {r["prefix"] for r in json.loads(control.command("routes", "list", "--json").stdout)}
               >= {"0.0.0.0/0", "::/0", LAN}, 15, what="exit's routes advertised")
    for prefix in ("0.0.0.0/0", "::/0", LAN):
        control.command("routes", "approve", "exit", prefix)
    wait_until(lambda: exit_rules_present(alpha.ns) and LAN in alpha.ns.ip("route", "show", LAN).stdout, 20,
               what="alpha using the exit node and the LAN route")
    six = alpha.status().get("ipv6") is not None
    if six:
        wait_until(lambda: "default" in alpha.ns.ip("-6", "route", "show", "table", str(FWMARK)).stdout, 10,
                   what="alpha's IPv6 exit route")
    # every netmap re-applies the exit route (adding what is missing): let
    # the approvals' netmaps settle, so that only the watch can re-add
    settled = {"v": -1, "t": time.monotonic()}

    def netmap_settled():
        v = alpha.status()["netmap_version"]
        if v != settled["v"]:
            settled.update(v=v, t=time.monotonic())
        return time.monotonic() - settled["t"] > 1.5
    wait_until(netmap_settled, 20, interval=0.2, what="alpha's netmap settled")
    alpha.public = public
    return alpha


def back_within(ns, before, what, limit=1.0) -> float:
    """Seconds until the routing is `before` again; fails past `limit`."""
    t0 = time.monotonic()
    wait_until(lambda: routing(ns) == before, limit, interval=0.02, what=f"{what}: the routing back")
    return time.monotonic() - t0


def test_status_shows_exit_node_and_routes(exit_in_use):
    """meshctl status (and its JSON) says which exit node is in use and
    which routes this node accepted from whom; with the real control
    server's approval, traffic to the "public" host leaves through the exit
    node (issue 16, Done-when 3; test_exit.py covers the rest with a fake
    server's netmaps)."""
    alpha = exit_in_use
    assert seen_source(alpha.public, alpha) == PUBLIC_EXIT
    status = alpha.status()
    assert status["exit_node"] == {"name": "exit", "in_use": True, "problem": None}, status
    assert status["accepted_routes"] == [{"prefix": LAN, "peer": "exit"}], status
    text = alpha.meshctl("status", check=True).stdout
    assert "     Exit node: exit (in use: all other traffic goes through it)\n" in text, text
    assert f"        Routes: {LAN} via exit\n" in text, text


def test_removed_rules_and_routes_come_back(exit_in_use):
    alpha = exit_in_use
    ns, dev = alpha.ns, alpha.interface
    before = routing(ns)
    assert f"{LAN} dev {dev}" in "\n".join(before["routes4"]), before["routes4"]
    n = len(log_lines(alpha, REPAIRED))

    cases = [
        ("ip rule del (not fwmark)", [("-4", "rule", "del", "priority", "32701")], "IPv4 rule 32701"),
        ("ip rule del (both, IPv4)", [("-4", "rule", "del", "priority", "32700"),
                                      ("-4", "rule", "del", "priority", "32701")], "IPv4 rule 32700"),
        ("ip route flush table", [("-4", "route", "flush", "table", str(FWMARK))],
         f"IPv4 route default table {FWMARK}"),
        ("accepted route deleted", [("-4", "route", "del", LAN, "dev", dev)], f"route {LAN} dev {dev}"),
        ("mesh interface down and up", [("link", "set", dev, "down"), ("link", "set", dev, "up")],
         f"IPv4 route default table {FWMARK}"),
    ]
    if alpha.status().get("ipv6"):
        cases += [("ip -6 rule del", [("-6", "rule", "del", "priority", "32701")], "IPv6 rule 32701"),
                  ("ip -6 route flush table", [("-6", "route", "flush", "table", str(FWMARK))],
                   f"IPv6 route default table {FWMARK}")]
    for what, commands, named in cases:
        for argv in commands:
            ns.ip(*argv)
        assert routing(ns) != before, what
        took = back_within(ns, before, what)
        wait_until(lambda: len(log_lines(alpha, REPAIRED)) > n, 5, what=f"{what}: the journal line")
        line = log_lines(alpha, REPAIRED)[-1]
        assert named in line, (what, line)
        n = len(log_lines(alpha, REPAIRED))
        print(f"{what}: back after {took:.2f} s")
    # each removal one repair, one line: nothing re-added twice
    time.sleep(0.5)
    assert len(log_lines(alpha, REPAIRED)) == n
    assert alpha.can_ping(alpha.peers()[0]["ipv4"])


def test_a_second_manager_fighting_meshd_makes_no_loop(exit_in_use):
    alpha = exit_in_use
    ns = alpha.ns
    before = routing(ns)
    n = len(log_lines(alpha, REPAIRED))
    # the "other manager": deletes meshd's rule whenever it sees it
    fighter = subprocess.Popen(
        ["ip", "netns", "exec", ns.name, "sh", "-c",
         "while :; do ip -4 rule del priority 32701 2>/dev/null; sleep 0.02; done"])
    try:
        t0 = time.monotonic()
        wait_until(lambda: log_lines(alpha, CONTESTED), 30, what="meshd saying it is being fought")
        took = time.monotonic() - t0
        repairs = len(log_lines(alpha, REPAIRED)) - n
        assert repairs == REPAIRS_MAX, repairs
        # still fought, but within the window: no more repairs, no more lines
        time.sleep(2)
        assert len(log_lines(alpha, REPAIRED)) - n == REPAIRS_MAX
        assert len(log_lines(alpha, CONTESTED)) == 1, log_lines(alpha, CONTESTED)
    finally:
        fighter.kill()
        fighter.wait()
    t_stop = time.monotonic()
    # when the window ends the rule comes back
    wait_until(lambda: routing(ns) == before, WINDOW + 2, what="the rule back after the window")
    print(f"{REPAIRS_MAX} repairs in {took:.1f} s of fighting, then none; "
          f"back {time.monotonic() - t_stop:.1f} s after the fight stopped")

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Applying a PEERS-peer netmap: meshd vs `wg setconf`, same backend.

Backend: wireguard-go (the host has no WireGuard module), an empty device
created beforehand in the node's namespace for both contenders, link up.

Set-up: a control server without hub (one peer fewer to think about), PEERS
nodes registered over HTTPS, then node alpha joins (Policy=none) and stops:
its state directory now holds the cached netmap with PEERS peers. The
control server is stopped, so nothing but the cache is applied.

  meshd       exec of meshd (`ip netns exec NS meshd …`) with the cached
              netmap → READY=1 on our NOTIFY_SOCKET. With Policy=none,
              READY=1 follows the first apply directly: key and port, mesh
              addresses, link up, every peer written to the device (one UAPI
              set), the hosts table written and a first probe sent to each
              peer. Process start-up and parsing the cache count too.
  wg setconf  exec of `ip netns exec NS wg setconf IF FILE` → exit, FILE the
              same private key, listen port and peers (public key, the
              netmap's IPv4/32 and IPv6/128 as allowed IPs, the endpoint
              meshd uses, persistent keepalive 25 s, as meshd sets them).

Runs alternate (anchor, meshd, anchor, …), each on a fresh device; medians.
Each run checks afterwards that the device holds all PEERS peers.
Target (issue 7): meshd ≤ 1.0× wg setconf.

    sudo /usr/bin/python3 bench/apply.py [--peers 1000] [--runs 5] [--json FILE]
Binaries from MESHLAB_BUILD_DIR (default build/).
"""

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import benchlib
from benchlib import meshlab


def wg_peer_count(ns, ifname) -> int:
    cp = ns.exec("wg", "show", ifname, "peers")
    return len(cp.stdout.split()) if cp.returncode == 0 else -1


def start_wireguard_go(ns, ifname, log) -> subprocess.Popen:
    """An empty wireguard-go device, link up, as both contenders find it."""
    proc = ns.popen(["wireguard-go", "-f", ifname], log=log)
    meshlab.wait_until(lambda: ns.exec("wg", "show", ifname).returncode == 0, 10, interval=0.02,
                       what=f"wireguard-go {ifname}")
    ns.ip("link", "set", ifname, "up")
    return proc


def stop_wireguard_go(ns, ifname, proc):
    ns.ip("link", "del", ifname, check=False)       # wireguard-go exits with its tun
    meshlab._kill_pids([proc.pid], grace=3)
    meshlab._remove_wg_socket(ifname)


def setconf_text(node) -> str:
    """wg(8) configuration equal to what meshd writes for the cached netmap."""
    netmap = json.loads((node.state_dir / "netmap.json").read_text())
    private = (node.state_dir / "private.key").read_text().strip()
    lines = ["[Interface]", f"PrivateKey = {private}", "ListenPort = 41641", ""]
    for p in netmap["peers"]:
        allowed = [f"{p['ipv4']}/32"] + ([f"{p['ipv6']}/128"] if p.get("ipv6") else [])
        lines += ["[Peer]", f"PublicKey = {p['public_key']}", f"AllowedIPs = {', '.join(allowed)}"]
        if p.get("endpoints"):
            lines.append(f"Endpoint = {p['endpoints'][0]}")
        lines += ["PersistentKeepalive = 25", ""]
    return "\n".join(lines)


def run(a, workdir: Path) -> list:
    os.environ["MESHD_LOG_LEVEL"] = "info"      # as in production: no debug lines per peer
    with meshlab.Lab(workdir) as lab:
        control = lab.add_control(hub=False)
        key = control.authkey(reusable=True)
        gen = lab.add_host("gen", "192.0.2.200")
        t = time.monotonic()
        benchlib.register_nodes(gen, control, key, a.peers, workdir / "tokens.jsonl")
        print(f"registered {a.peers} nodes in {time.monotonic() - t:.1f} s", flush=True)

        alpha = lab.add_node("alpha", authkey=key, policy="none")
        alpha.start()
        alpha.wait_ready(60)
        meshlab.wait_until(lambda: alpha.status().get("peers_total") == a.peers, 60,
                           what=f"alpha's netmap with {a.peers} peers")
        alpha.stop()
        control.stop()
        netmap = json.loads((alpha.state_dir / "netmap.json").read_text())
        assert len(netmap["peers"]) == a.peers, f"cached netmap has {len(netmap['peers'])} peers"
        conf = workdir / "setconf.conf"
        conf.write_text(setconf_text(alpha))
        conf.chmod(0o600)

        ifname = alpha.interface
        meshd_times, anchor_times, statuses = [], [], []
        for i in range(a.runs):
            # anchor: wg setconf onto an empty wireguard-go device
            proc = start_wireguard_go(alpha.ns, ifname, workdir / f"wg-anchor{i}.log")
            t0 = time.monotonic()
            cp = subprocess.run(["ip", "netns", "exec", alpha.ns.name, "wg", "setconf", ifname, str(conf)],
                                capture_output=True, text=True)
            t1 = time.monotonic()
            if cp.returncode != 0:
                raise RuntimeError(f"wg setconf failed: {cp.stderr.strip()}")
            n = wg_peer_count(alpha.ns, ifname)
            stop_wireguard_go(alpha.ns, ifname, proc)
            if n != a.peers:
                raise RuntimeError(f"wg setconf left {n} peers, not {a.peers}")
            anchor_times.append(t1 - t0)

            # meshd: the cached netmap onto an empty wireguard-go device
            proc = start_wireguard_go(alpha.ns, ifname, workdir / f"wg-meshd{i}.log")
            alpha.start()
            ready = alpha.wait_ready(60)
            n = wg_peer_count(alpha.ns, ifname)
            alpha.stop()
            stop_wireguard_go(alpha.ns, ifname, proc)
            if n != a.peers:
                raise RuntimeError(f"meshd left {n} peers on {ifname}, not {a.peers}")
            meshd_times.append(ready.after_start)
            statuses.append(ready.status)
            print(f"run {i + 1}: wg setconf {anchor_times[-1] * 1000:.1f} ms, "
                  f"meshd exec → READY=1 {ready.after_start * 1000:.1f} ms", flush=True)

    m, anchor = benchlib.median(meshd_times), benchlib.median(anchor_times)
    return [benchlib.row(
        "apply", f"apply a {a.peers:,}-peer netmap (meshd exec → READY=1, Policy=none, cached netmap)",
        m * 1000, "ms", anchor=f"`wg setconf` of the same {a.peers:,} peers (exec → exit)",
        anchor_value=anchor * 1000, target="≤ 1.0× anchor", met=m <= anchor,
        runs=[round(x * 1000, 1) for x in meshd_times],
        note=(f"backend: wireguard-go (userspace) for both, an empty device with link up created "
              f"before each run; median of {a.runs} alternating runs; anchor runs "
              f"{[round(x * 1000, 1) for x in anchor_times]} ms"))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--peers", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", help="write the rows here (for bench/report.py)")
    a = ap.parse_args()
    benchlib.run_bench("apply", run, a)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""meshd's resident memory with 100 and 1,000 peers.

One Lab: the control server with its hub (userspace), a load-generator
namespace, node alpha (Policy=none: its peers never answer, and Policy=any
does not count the hub). For each size N (ascending): nodes are registered
over HTTPS until alpha's netmap has N peers besides the hub, then alpha is
restarted (as systemd would start it: cached netmap, long-poll to the
server) and left alone for --settle seconds, probing its unreachable peers
every second, before /proc/PID/status is read: VmRSS (the figure), VmHWM,
RssAnon and RssFile (shared library pages are part of RSS). The
wireguard-go child's RSS is reported beside it, without a target: it is
the backend, not meshd.

Anchor: the same meshd with no peers but the hub (joined, idle), so the
ratio says what N peers cost on top of the daemon itself.
Target (issue 7): VmRSS < 5 MB (5,000,000 bytes) at 100 peers.

    sudo /usr/bin/python3 bench/rss.py [--sizes 100,1000] [--settle 10] [--json FILE]
Binaries from MESHLAB_BUILD_DIR (default build/).
"""

import argparse
import os
import time
from pathlib import Path

import benchlib
from benchlib import meshlab

TARGET_PEERS = 100
TARGET_BYTES = 5_000_000


def measure(node, settle) -> tuple[dict, dict]:
    """Restarts node, waits for READY=1 and its control connection, lets it
    settle; (meshd's /proc status, wireguard-go's)."""
    node.restart()
    node.wait_ready(60)
    meshlab.wait_until(lambda: node.status().get("control_connected"), 30, what="control connection")
    time.sleep(settle)
    pid = node.proc.pid
    meshd = benchlib.proc_status(pid)
    meshd["Pss"] = benchlib.proc_pss(pid)
    meshd["top"] = benchlib.proc_rss_by_file(pid)
    meshd["libraries"] = len({line.split()[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
                              if ".so" in line.split()[-1]})
    child = benchlib.pid_of_child(pid, "wireguard-go")
    return meshd, benchlib.proc_status(child) if child else {}


def run(a, workdir: Path) -> list:
    os.environ["MESHD_LOG_LEVEL"] = "info"
    rows = []
    with meshlab.Lab(workdir) as lab:
        control = lab.add_control()
        key = control.authkey(reusable=True)
        gen = lab.add_host("gen", "192.0.2.200")
        # Policy=none: READY=1 once the device is configured (the synthetic
        # peers never answer, and the policy "any" does not count the hub)
        alpha = lab.add_node("alpha", authkey=key, policy="none")
        alpha.start()
        alpha.wait_ready(60)
        base, base_wg = measure(alpha, a.settle)
        print(f"0 peers (hub only): meshd VmRSS {base['VmRSS']} KiB (anon {base.get('RssAnon')} KiB, "
              f"file {base.get('RssFile')} KiB), wireguard-go {base_wg.get('VmRSS')} KiB",
              flush=True)
        registered = 0
        for n in a.sizes:
            benchlib.register_nodes(gen, control, key, n - registered, workdir / "tokens.jsonl",
                                    first=registered)
            registered = n
            meshlab.wait_until(lambda: alpha.status().get("peers_total") == n, 120, interval=0.5,
                               what=f"alpha's netmap with {n} peers")
            grown = benchlib.proc_status(alpha.proc.pid)
            meshd, wg = measure(alpha, a.settle)
            print(f"{n} peers: meshd VmRSS {meshd['VmRSS']} KiB (peak {meshd['VmHWM']} KiB, anon "
                  f"{meshd.get('RssAnon')} KiB, file {meshd.get('RssFile')} KiB; before the restart, "
                  f"grown by netmap updates: {grown['VmRSS']} KiB), wireguard-go {wg.get('VmRSS')} KiB",
                  flush=True)
            target = n == TARGET_PEERS
            rows.append(benchlib.row(
                "rss", f"meshd RSS with {n:,} peers (+ hub), steady state after a restart",
                meshd["VmRSS"] / 1024, "MiB",
                anchor="same meshd, joined, no peers but the hub", anchor_value=base["VmRSS"] / 1024,
                target="< 5 MB (4.77 MiB)" if target else None,
                met=(meshd["VmRSS"] * 1024 < TARGET_BYTES) if target else None,
                note=(f"VmHWM {meshd['VmHWM'] / 1024:.1f} MiB, RssAnon {meshd.get('RssAnon', 0) / 1024:.1f} MiB, "
                      f"RssFile {meshd.get('RssFile', 0) / 1024:.1f} MiB (shared libraries), "
                      f"PSS {meshd['Pss'] / 1024:.1f} MiB; "
                      f"before the restart, after growing by netmap updates: {grown['VmRSS'] / 1024:.1f} MiB; "
                      f"largest parts: {', '.join(f'{k} {v / 1024:.1f}' for k, v in meshd['top'])} MiB; "
                      f"{meshd['libraries']} shared objects mapped; "
                      f"wireguard-go child: {wg.get('VmRSS', 0) / 1024:.1f} MiB; after {a.settle:g} s settled")))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100,1000", help="peer counts, ascending")
    ap.add_argument("--settle", type=float, default=10.0, help="seconds between READY=1 and reading RSS")
    ap.add_argument("--json", help="write the rows here (for bench/report.py)")
    a = ap.parse_args()
    a.sizes = sorted(int(x) for x in a.sizes.split(","))
    benchlib.run_bench("rss", run, a)


if __name__ == "__main__":
    main()

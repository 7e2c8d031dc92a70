#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""TCP throughput of meshd's paths: direct, the hub's UDP relay, the TLS relay.

One Lab: the control server with its hub (192.0.2.1, userspace backend)
and two meshd nodes, alpha and bravo, on the same bridge (192.0.2.10 and
.11). `iperf3 -c BRAVO-MESH-IPV4 -t SECONDS -O 1` (one TCP stream, the first
second omitted, as bench/throughput.py) from alpha to an iperf3 server in
bravo, in each mode:

  wireguard-go   meshd stopped; a plain wireguard-go pair between the same
                 namespaces, configured with `wg setconf` (throughput.py's
                 anchor, its code)
  direct         meshd started on both; nothing blocked; both say path
                 "direct" (`meshctl peers --json`)
  udp-relay      UDP between alpha and bravo's WireGuard ports dropped in
                 alpha's namespace (nftables); both say path "relay": the
                 packets go through the hub's wireguard-go
  tls-relay      all UDP dropped on alpha's eth0; alpha's `meshctl status`
                 says hub.transport "tls" and path "relay-tls" for bravo:
                 alpha's WireGuard datagrams ride a TLS stream to
                 meshd-control, which hands them to the hub over loopback

Rounds interleave the modes (in that order; meshd starts again from its
cache each round). The figures are medians in Mbit/s; the ratios: direct
against plain wireguard-go (no target), each relay against direct in the
same run (issue 12: UDP relay ≥ 0.90×, TLS relay ≥ 0.50×). Higher is
better. Each mode also prints the CPU share (of one core) that meshd,
meshd-control and every wireguard-go used while iperf3 ran, and how busy
the whole machine was (iperf3, the kernel and anyone else included): on a
small machine the relays are CPU-bound, and these say where it goes.

    sudo /usr/bin/python3 bench/relay.py [--seconds 8] [--rounds 2] [--json FILE]
Binaries from MESHLAB_BUILD_DIR (default build/); iperf3 and wireguard-go
from Debian (tools/bench installs them).
"""

import argparse
import json
import os
import shutil
import sys
import time

import benchlib
from benchlib import meshlab
from throughput import WireguardGo, iperf

MODES = ("wireguard-go", "direct", "udp-relay", "tls-relay")
MESHD_PORT = 41641
PATH_WITHIN_S = 30.0        # to settle on a path; the tests hold meshd to 10-15 s


def path_of(node, name):
    return next((p.get("path") for p in node.peers() if p["name"] == name), None)


def wait_path(alpha, bravo, want_a, want_b, address, *, transport=None):
    """Until alpha says want_a for bravo, bravo says want_b for alpha (and
    alpha's hub transport is `transport`), and alpha pings address."""
    def ok():
        if transport and (alpha.status().get("hub") or {}).get("transport") != transport:
            return False
        return (path_of(alpha, bravo.name) == want_a and path_of(bravo, alpha.name) == want_b
                and alpha.ping(address).returncode == 0)
    try:
        meshlab.wait_until(ok, PATH_WITHIN_S, interval=0.2,
                           what=f"alpha → bravo {want_a}, bravo → alpha {want_b}")
    except TimeoutError as e:
        views = {n.name: json.dumps(n.peers()) for n in (alpha, bravo)}
        raise RuntimeError(f"{e}; peers: {views}; alpha's hub: {alpha.status().get('hub')}") from None


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = f[3] + f[4]          # idle, iowait
    total = sum(f[:8])          # guest time is inside user already
    return total - idle, total


class Processes:
    """The CPU seconds of the processes on the data path, around a run,
    and how busy the whole machine was (others' work included)."""

    def __init__(self, pids: dict):
        self.pids = {k: v for k, v in pids.items() if v}

    def _read(self):
        out = {}
        for name, pid in self.pids.items():
            try:
                out[name] = benchlib.proc_cpu_seconds(pid)
            except OSError:
                pass
        return out

    def __enter__(self):
        self.t0, self.c0, self.m0 = time.monotonic(), self._read(), machine_cpu()
        return self

    def __exit__(self, *exc):
        wall = time.monotonic() - self.t0
        c1 = self._read()
        self.share = {k: (c1[k] - self.c0[k]) / wall * 100 for k in c1 if k in self.c0}
        busy, total = (b - a for a, b in zip(self.m0, machine_cpu()))
        self.share["whole machine"] = busy / max(total, 1) * 100 * os.cpu_count()


def meshd_pids(control, alpha, bravo) -> dict:
    pids = {"meshd-control": control.proc.pid,
            "hub wireguard-go": benchlib.pid_of_child(control.proc.pid, "wireguard-go")}
    for n in (alpha, bravo):
        pids[f"{n.name} meshd"] = n.proc.pid
        pids[f"{n.name} wireguard-go"] = benchlib.pid_of_child(n.proc.pid, "wireguard-go")
    return pids


def one_round(r, a, lab, control, alpha, bravo, wg, results, cpu):
    def measure(mode, address, pids):
        with Processes(pids) as p:
            mbit = iperf(alpha, bravo, address, a.seconds, lab.dir / f"iperf3-{mode}-{r}.log")
        results[mode].append(mbit)
        cpu[mode].append(p.share)
        shares = ", ".join(f"{k} {v:.0f}%" for k, v in sorted(p.share.items(), key=lambda kv: -kv[1])
                           if k != "whole machine")
        shares += f"; whole machine {p.share['whole machine']:.0f}% of {os.cpu_count() * 100}%"
        print(f"round {r + 1}: {mode} {benchlib.fmt(mbit, 'Mbit/s')} (CPU of one core: {shares})", flush=True)

    if "wireguard-go" in a.only:
        try:
            address = wg.up()
            measure("wireguard-go", address, {f"{n.name} wireguard-go": p.pid
                                              for (n, _i, _a), (_ns, p) in zip(wg.sides, wg.procs)})
        finally:
            wg.down()

    for n in (alpha, bravo):
        n.start()
    try:
        for n in (alpha, bravo):
            n.wait_ready(60)
        address = bravo.status()["ipv4"]
        pids = meshd_pids(control, alpha, bravo)
        if "direct" in a.only:
            wait_path(alpha, bravo, "direct", "direct", address)
            measure("direct", address, pids)
        if "udp-relay" in a.only:
            alpha.cut_udp_to(bravo.address, MESHD_PORT)
            wait_path(alpha, bravo, "relay", "relay", address)
            measure("udp-relay", address, pids)
        if "tls-relay" in a.only:
            alpha.block_udp()
            wait_path(alpha, bravo, "relay-tls", "relay", address, transport="tls")
            measure("tls-relay", address, pids)
    finally:
        alpha.restore_udp()
        for n in (alpha, bravo):
            n.stop()


def median_shares(samples: list) -> dict:
    keys = {k for s in samples for k in s}
    return {k: round(benchlib.median([s.get(k) for s in samples]), 1) for k in sorted(keys)}


def run(a, workdir):
    os.environ["MESHD_LOG_LEVEL"] = "info"
    results = {m: [] for m in MODES}
    cpu = {m: [] for m in MODES}
    with meshlab.Lab(workdir) as lab:
        control = lab.add_control()         # with its hub
        key = control.authkey(reusable=True)
        alpha = lab.add_node("alpha", authkey=key)
        bravo = lab.add_node("bravo", authkey=key)
        for n in (alpha, bravo):
            n.start()
        for n in (alpha, bravo):
            n.wait_ready(60)            # joined; each round starts them again from their cache
        for n in (alpha, bravo):
            n.stop()
        wg = WireguardGo(lab, alpha, bravo)
        for r in range(a.rounds):
            one_round(r, a, lab, control, alpha, bravo, wg, results, cpu)

    m = {mode: benchlib.median(results[mode]) for mode in MODES}
    note = (f"median of {a.rounds} rounds of {a.seconds} s (+1 s omitted), one TCP stream, alpha → bravo's "
            f"mesh IPv4, modes interleaved; hub: meshd-control's wireguard-go (userspace)")
    labels = {
        "wireguard-go": ("iperf3 TCP through a plain wireguard-go pair configured with `wg setconf`",
                         None, None, None),
        "direct": ("iperf3 TCP through meshd, direct path", "plain wireguard-go, same run",
                   "wireguard-go", None),
        "udp-relay": ("iperf3 TCP through meshd, relayed by the hub over UDP (direct UDP dropped)",
                      "meshd direct path, same run", "direct", 0.90),
        "tls-relay": ("iperf3 TCP through meshd, TLS relay to the hub (all UDP dropped on alpha)",
                      "meshd direct path, same run", "direct", 0.50),
    }
    rows = []
    for mode in MODES:
        if mode not in a.only:
            continue
        figure, anchor, anchor_mode, target = labels[mode]
        anchor_value = m.get(anchor_mode) if anchor_mode in a.only else None
        ratio = benchlib.ratio(m[mode], anchor_value)
        shares = median_shares(cpu[mode])
        rows.append(benchlib.row(
            "relay", figure, m[mode], "Mbit/s",
            anchor=anchor if anchor_value else None, anchor_value=anchor_value,
            target=f"≥ {target:.2f}× direct" if target else None,
            met=(ratio is not None and ratio >= target) if target else None,
            higher_is_better=True, runs=[round(x) for x in results[mode]],
            note=note + "; CPU of one core while iperf3 ran (median): "
                 + ", ".join(f"{k} {v:.0f}%" for k, v in shares.items() if k != "whole machine")
                 + f"; the whole machine {shares.get('whole machine', 0):.0f}% of {os.cpu_count() * 100}%"))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", default=",".join(MODES), help="modes, comma-separated")
    ap.add_argument("--json", help="write the rows here (for bench/report.py)")
    a = ap.parse_args()
    a.only = [x for x in a.only.split(",") if x]
    unknown = [x for x in a.only if x not in MODES]
    if unknown:
        sys.exit(f"bench/relay.py: unknown mode(s) {unknown}; known: {', '.join(MODES)}")
    missing = [b for b in ("iperf3", "wireguard-go", "wg", "nft") if shutil.which(b) is None]
    if missing:
        sys.exit(f"bench/relay.py: {', '.join(missing)} not installed (tools/bench installs them)")
    benchlib.run_bench("relay", run, a)


if __name__ == "__main__":
    main()

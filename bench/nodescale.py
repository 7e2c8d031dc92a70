#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A node with PEERS peers (issue 17): full apply, one changed peer, RssAnon.

Backend: wireguard-go (the host has no WireGuard module), an empty device
with link up created beforehand in the node's namespace, as in apply.py.

Set-up as apply.py: a control server without hub, PEERS nodes registered
over HTTPS, node alpha (Policy=none) joins and stops with the PEERS-peer
netmap in its cache. The figures, all in one run:

  full map    meshd started with the cached netmap onto an empty device:
              the time meshd reports in Status's netmap_apply.device_usec,
              from reading the cache (before parsing) to the device holding
              every peer (in-daemon; process start-up not counted), and
              exec → READY=1 beside it.
  one change  alpha running with the control server: one node registers
              (a peer added) and is removed again (a peer removed); each
              arrives as a netmap delta. netmap_apply.device_usec: from the
              reply complete (before merging the delta) to the device
              updated; total_usec also covers the hosts table, the cache,
              DNS, firewall and routes.
  RssAnon     meshd's private memory (RssAnon of /proc/PID/status) with
              PEERS peers, after the changes and --settle seconds of
              probing its (unreachable) peers.

Anchor for each: `wg setconf` of the same PEERS peers onto an empty
wireguard-go device (exec → exit), runs alternating with meshd's; medians.
Targets (issue 17): one change < 5 ms, full map ≤ 1.0× wg setconf,
RssAnon < 30 MiB. Not a test: prints numbers, never fails on them.

    sudo /usr/bin/python3 bench/nodescale.py [--peers 10000] [--runs 3] [--changes 5] [--json FILE]
Binaries from MESHLAB_BUILD_DIR (default build/).
"""

import argparse
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import benchlib
from apply import setconf_text, start_wireguard_go, stop_wireguard_go, wg_peer_count
from benchlib import meshlab

ONE_CHANGE_TARGET_MS = 5.0
RSS_ANON_TARGET_KIB = 30 * 1024


def get_status(node, timeout=60.0) -> dict:
    """io.meshd.GetStatus straight over the Varlink socket: `meshctl status`
    also lists every peer (ListPeers reads the device's counters), which
    with 10,000 peers on a busy wireguard-go would be most of the wait."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(node.socket))
        s.sendall(json.dumps({"method": "io.meshd.GetStatus"}).encode() + b"\0")
        data = b""
        while not data.endswith(b"\0"):
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("meshd closed the API connection")
            data += chunk
    reply = json.loads(data[:-1])
    if "error" in reply:
        raise RuntimeError(f"GetStatus: {reply['error']}")
    params = reply.get("parameters", {})
    return params.get("status", params)


def setconf_once(ns, ifname, conf: Path, log: Path, peers: int) -> float:
    proc = start_wireguard_go(ns, ifname, log)
    t0 = time.monotonic()
    cp = subprocess.run(["ip", "netns", "exec", ns.name, "wg", "setconf", ifname, str(conf)],
                        capture_output=True, text=True)
    t1 = time.monotonic()
    n = wg_peer_count(ns, ifname)
    stop_wireguard_go(ns, ifname, proc)
    if cp.returncode != 0:
        raise RuntimeError(f"wg setconf failed: {cp.stderr.strip()}")
    if n != peers:
        raise RuntimeError(f"wg setconf left {n} peers, not {peers}")
    return t1 - t0


def wait_applied(node, version_before: int, peers: int) -> dict:
    """The Status once a netmap newer than version_before with peers peers is applied."""
    def applied():
        s = get_status(node)
        a = s.get("netmap_apply") or {}
        return s if s.get("peers_total") == peers and a.get("version", 0) > version_before else None
    return meshlab.wait_until(applied, 60, interval=0.05, what=f"a netmap with {peers} peers applied")


def wg_set_once(ns, ifname, args) -> float:
    t0 = time.monotonic()
    cp = subprocess.run(["ip", "netns", "exec", ns.name, "wg", "set", ifname, *args], capture_output=True, text=True)
    t1 = time.monotonic()
    if cp.returncode != 0:
        raise RuntimeError(f"wg set failed: {cp.stderr.strip()}")
    return (t1 - t0) * 1000


def one_changes(a, alpha, control, gen, key, workdir: Path) -> dict:
    """Adds and removes one node a.changes times: the times (ms) of each
    apply, and of `wg set` adding and removing one (foreign, unused) peer on
    the same device beside each."""
    out = {"device": [], "prepare": [], "total": [], "written": [], "wg_set": []}
    version = get_status(alpha)["netmap_version"]
    foreign = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True).stdout.strip()
    foreign = subprocess.run(["wg", "pubkey"], input=foreign, capture_output=True, text=True,
                             check=True).stdout.strip()
    for i in range(a.changes):
        name = f"x{i}"
        benchlib.register_nodes(gen, control, key, 1, workdir / "extra.jsonl", first=i, prefix="x",
                                concurrency=1)
        for step, peers in (("add", a.peers + 1), ("remove", a.peers)):
            if step == "remove":
                control.remove_node(name)
            s = wait_applied(alpha, version, peers)
            ap = s["netmap_apply"]
            version = ap["version"]
            out["device"].append(ap["device_usec"] / 1000)
            out["prepare"].append(ap.get("prepare_usec", 0) / 1000)
            out["total"].append(ap["total_usec"] / 1000)
            out["written"].append(ap["device_peers"])
            # the backend's own share of one peer: `wg set` on the same device
            out["wg_set"].append(wg_set_once(alpha.ns, alpha.interface, (
                ["peer", foreign, "allowed-ips", "100.127.255.254/32", "endpoint", "203.0.113.254:9",
                 "persistent-keepalive", "25"] if step == "add" else ["peer", foreign, "remove"])))
            print(f"change {i + 1} ({step}): entries ready after {out['prepare'][-1]:.2f} ms, device updated "
                  f"after {out['device'][-1]:.2f} ms ({out['written'][-1]} entries), all done after "
                  f"{out['total'][-1]:.2f} ms; wg set of one peer {out['wg_set'][-1]:.2f} ms", flush=True)
    return out


def prepare(a, lab, workdir: Path):
    control = lab.add_control(hub=False)
    key = control.authkey(reusable=True)
    gen = lab.add_host("gen", "192.0.2.200")
    t = time.monotonic()
    benchlib.register_nodes(gen, control, key, a.peers, workdir / "tokens.jsonl")
    print(f"registered {a.peers} nodes in {time.monotonic() - t:.1f} s", flush=True)
    alpha = lab.add_node("alpha", authkey=key, policy="none")
    alpha.start()
    alpha.wait_ready(120)
    meshlab.wait_until(lambda: get_status(alpha).get("peers_total") == a.peers, 120,
                       what=f"alpha's netmap with {a.peers} peers")
    alpha.stop()
    conf = workdir / "setconf.conf"
    conf.write_text(setconf_text(alpha))
    conf.chmod(0o600)
    return control, key, gen, alpha, conf


def run(a, workdir: Path) -> list:
    os.environ["MESHD_LOG_LEVEL"] = "info"      # as in production: no debug lines per peer
    with meshlab.Lab(workdir) as lab:
        control, key, gen, alpha, conf = prepare(a, lab, workdir)
        ifname = alpha.interface
        control.stop()
        anchor, full, ready, full_prepare = [], [], [], []
        for i in range(a.runs):
            anchor.append(setconf_once(alpha.ns, ifname, conf, workdir / f"wg-anchor{i}.log", a.peers) * 1000)
            proc = start_wireguard_go(alpha.ns, ifname, workdir / f"wg-meshd{i}.log")
            alpha.start()
            r = alpha.wait_ready(120)
            s = get_status(alpha)
            n = wg_peer_count(alpha.ns, ifname)
            alpha.stop()
            stop_wireguard_go(alpha.ns, ifname, proc)
            if n != a.peers:
                raise RuntimeError(f"meshd left {n} peers on {ifname}, not {a.peers}")
            full.append(s["netmap_apply"]["device_usec"] / 1000)
            full_prepare.append(s["netmap_apply"].get("prepare_usec", 0) / 1000)
            ready.append(r.after_start * 1000)
            print(f"run {i + 1}: wg setconf {anchor[-1]:.1f} ms; meshd in-daemon full apply {full[-1]:.1f} ms "
                  f"(exec → READY=1 {ready[-1]:.1f} ms)", flush=True)

        # one change at a time, with the control server and alpha running
        control.start()
        proc = start_wireguard_go(alpha.ns, ifname, workdir / "wg-changes.log")
        alpha.start()
        alpha.wait_ready(120)
        meshlab.wait_until(lambda: get_status(alpha).get("control_connected"), 60, what="control connection")
        ch = one_changes(a, alpha, control, gen, key, workdir)
        device = ch["device"]
        time.sleep(a.settle)
        st = benchlib.proc_status(alpha.proc.pid)
        alpha.stop()
        stop_wireguard_go(alpha.ns, ifname, proc)

    setconf = benchlib.median(anchor)
    anchor_text = f"`wg setconf` of the same {a.peers:,} peers (exec → exit)"
    backend = "backend: wireguard-go (userspace), an empty device with link up before each full apply"
    one, full_m = benchlib.median(device), benchlib.median(full)
    anon = st.get("RssAnon", 0)
    return [
        benchlib.row("nodescale", f"in-daemon apply of a {a.peers:,}-peer netmap (cache read → device updated)",
                     full_m, "ms", anchor=anchor_text, anchor_value=setconf, target="≤ 1.0× anchor",
                     met=full_m <= setconf, runs=[round(x, 1) for x in full],
                     note=(f"{backend}; median of {a.runs} alternating runs; meshd's own share (cache "
                           f"read, parse, checks, the entries ready for the backend) "
                           f"{[round(x, 1) for x in full_prepare]} ms; exec → READY=1 "
                           f"{[round(x, 1) for x in ready]} ms; anchor runs {[round(x, 1) for x in anchor]} ms")),
        benchlib.row("nodescale", f"one peer added or removed in a {a.peers:,}-peer netmap "
                     "(delta received → device updated)", one, "ms", anchor=anchor_text, anchor_value=setconf,
                     target=f"< {ONE_CHANGE_TARGET_MS:g} ms", met=one < ONE_CHANGE_TARGET_MS,
                     runs=[round(x, 2) for x in device],
                     note=(f"median of {len(device)} (added, removed in turn); meshd's own share (delta "
                           f"received → entries ready for the backend) {benchlib.median(ch['prepare']):.2f} ms "
                           f"median, runs {[round(x, 2) for x in ch['prepare']]}; `wg set` of one peer on the "
                           f"same device (exec → exit) {benchlib.median(ch['wg_set']):.2f} ms median; entries "
                           f"written {sorted(set(ch['written']))}; everything done (hosts, cache, DNS, firewall, "
                           f"routes) after {benchlib.median(ch['total']):.2f} ms median, runs "
                           f"{[round(x, 2) for x in ch['total']]}")),
        benchlib.row("nodescale", f"meshd RssAnon with {a.peers:,} peers", anon / 1024, "MiB",
                     anchor=anchor_text + ", in ms", anchor_value=None,
                     target=f"< {RSS_ANON_TARGET_KIB // 1024} MiB", met=anon < RSS_ANON_TARGET_KIB,
                     note=(f"VmRSS {st['VmRSS'] / 1024:.1f} MiB, VmHWM {st['VmHWM'] / 1024:.1f} MiB, "
                           f"RssFile {st.get('RssFile', 0) / 1024:.1f} MiB; after {len(device)} changes and "
                           f"{a.settle:g} s probing")),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--peers", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3, help="full applies (and wg setconf runs)")
    ap.add_argument("--changes", type=int, default=5, help="nodes added and removed again, one at a time")
    ap.add_argument("--settle", type=float, default=12.0, help="seconds before reading RssAnon")
    ap.add_argument("--json", help="write the rows here (for bench/report.py)")
    a = ap.parse_args()
    benchlib.run_bench("nodescale", run, a)


if __name__ == "__main__":
    main()

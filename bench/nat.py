#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""NAT traversal timings (issue 5), in the meshlab NAT topology.

Per run, one fresh NatLab: the control server with its hub on the public
segment, alpha and bravo each behind a port-preserving NAT, charlie behind
a NAT that randomises ports.

  baseline      plain wireguard-go between alpha's and bravo's namespaces,
                endpoints set by hand (`wg set … endpoint OTHER-NAT:51820
                persistent-keepalive 25`, both sides at once): from the
                first `wg set` to the first packet received from the peer
  direct        alpha and bravo start meshd; from both having joined to the
                first packet received through the direct peer entry (rx > 0),
                and to `meshctl ping` answering with path "direct"
  relay         charlie starts meshd; from charlie having joined to
                `meshctl ping alpha` answering with path "relay"

Prints one line per run and a table of medians with the ratio against the
baseline measured in the same runs. Never fails on speed; exits non-zero
only when the lab cannot be built.

    sudo /usr/bin/python3 bench/nat.py [--runs 3] [--timeout 30] [--json FILE]
--json writes the medians as rows for tools/bench's report (bench/report.py).
Binaries from MESHLAB_BUILD_DIR (default build/).
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
import benchlib  # noqa: E402
import meshlab  # noqa: E402
from meshlab import NatLab  # noqa: E402

BASELINE_PORT = 51820       # not meshd's 41641: the NAT mappings must not carry over


def poll(predicate, timeout, interval=0.01):
    """Seconds until predicate() held, or None after timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    return None


def wg_rx(ns, ifname, key) -> int:
    cp = ns.exec("wg", "show", ifname, "dump")
    for line in cp.stdout.splitlines()[1:]:
        f = line.split("\t")
        if f[0] == key:
            return int(f[5])
    return 0


def baseline(lab, a, b, timeout) -> float | None:
    """Plain wireguard-go between nodes a and b (namespaces only, meshd
    not started), each endpoint the other NAT's public address."""
    sides = []
    for node, letter in ((a, "x"), (b, "y")):      # z is the hub
        ifname = f"m{lab.rid}{letter}"
        priv = node.ns.exec("wg", "genkey", check=True).stdout.strip()
        pub = node.ns.exec("wg", "pubkey", input=priv + "\n", check=True).stdout.strip()
        keyfile = lab.dir / f"{ifname}.key"
        keyfile.write_text(priv + "\n")
        proc = node.ns.popen(["wireguard-go", "-f", ifname], log=lab.dir / f"{ifname}.log")
        meshlab.wait_until(lambda: node.ns.exec("wg", "show", ifname).returncode == 0, 10,
                           what=f"wireguard-go {ifname}")
        node.ns.exec("wg", "set", ifname, "listen-port", BASELINE_PORT, "private-key", keyfile,
                     check=True)
        node.ns.ip("link", "set", ifname, "up")
        sides.append((node, ifname, pub, proc))
    (na, ia, pa, proc_a), (nb, ib, pb, proc_b) = sides
    start = time.monotonic()
    for ns, ifname, peer, public in ((na.ns, ia, pb, b.router.public), (nb.ns, ib, pa, a.router.public)):
        ns.exec("wg", "set", ifname, "peer", peer, "allowed-ips", "100.127.255.0/32",
                "endpoint", f"{public}:{BASELINE_PORT}", "persistent-keepalive", "25", check=True)
    t = poll(lambda: wg_rx(na.ns, ia, pb) > 0 and wg_rx(nb.ns, ib, pa) > 0, timeout)
    t = None if t is None else time.monotonic() - start
    for node, ifname, _pub, proc in sides:
        meshlab._kill_pids([proc.pid], grace=2)
        meshlab._remove_wg_socket(ifname)
    for r in (a.router, b.router):
        r.set_nat(r.kind)       # forget the baseline's mappings
    return t


def joined(node, timeout) -> float:
    meshlab.wait_until(lambda: _has_ipv4(node), timeout, interval=0.02, what=f"{node.name} joined")
    return time.monotonic()


def _has_ipv4(node) -> bool:
    try:
        return bool(node.status().get("ipv4"))
    except Exception:
        return False


def ping_path(a, b) -> str | None:
    cp = a.meshctl("--json", "ping", "-c", "1", "--timeout", "1", b.name, timeout=15)
    if cp.returncode != 0:
        return None
    import json
    try:
        return json.loads(cp.stdout.strip().splitlines()[-1]).get("path")
    except (ValueError, IndexError):
        return None


def one_run(workdir: Path, timeout: float) -> dict:
    res = {}
    with NatLab(workdir) as lab:
        lab.add_control()       # with its hub
        key = lab.control.authkey(reusable=True)
        home1 = lab.add_router("home1", "preserving")
        home2 = lab.add_router("home2", "preserving")
        cafe = lab.add_router("cafe", "random")
        alpha = lab.add_node("alpha", behind=home1, authkey=key)
        bravo = lab.add_node("bravo", behind=home2, authkey=key)
        charlie = lab.add_node("charlie", behind=cafe, authkey=key)

        res["baseline"] = baseline(lab, alpha, bravo, timeout)

        alpha.start()
        bravo.start()
        t0 = max(joined(alpha, 30), joined(bravo, 30))
        bravo_key = bravo.status()["public_key"]
        t = poll(lambda: wg_rx(alpha.ns, alpha.interface, bravo_key) > 0, timeout)
        res["direct_packet"] = None if t is None else time.monotonic() - t0
        t = poll(lambda: ping_path(alpha, bravo) == "direct", max(0.0, timeout - (time.monotonic() - t0)))
        res["direct_ping"] = None if t is None else time.monotonic() - t0

        charlie.start()
        t0 = joined(charlie, 30)
        t = poll(lambda: ping_path(charlie, alpha) == "relay", timeout)
        res["relay_ping"] = None if t is None else time.monotonic() - t0
    return res


def ms(v):
    return "timeout" if v is None else f"{v * 1000:.0f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=30.0, help="per measurement, seconds")
    ap.add_argument("--json", help="write the medians as rows here (for bench/report.py)")
    a = ap.parse_args()
    problem = meshlab.netns_usable()
    if problem:
        sys.exit(f"bench/nat.py: {problem}")
    for name in ("meshd-control", "meshd", "meshctl"):
        meshlab.binary(name)
    meshlab.sweep_stale()
    cols = ("baseline", "direct_packet", "direct_ping", "relay_ping")
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-nat-") as tmp:
        for i in range(a.runs):
            r = one_run(Path(tmp) / f"run{i}", a.timeout)
            runs.append(r)
            print(f"run {i + 1}: " + ", ".join(f"{c} {ms(r[c])} ms" for c in cols), flush=True)

    def median(c):
        vals = [r[c] for r in runs if r[c] is not None]
        return statistics.median(vals) if vals else None

    base = median("baseline")
    print()
    print(f"{'measurement (median of %d runs)' % a.runs:<44} {'ms':>8} {'× baseline':>11}")
    labels = {
        "baseline": "wireguard-go by hand, first packet",
        "direct_packet": "join → first direct packet (preserving NAT)",
        "direct_ping": "join → meshctl ping direct",
        "relay_ping": "join → meshctl ping relay (random NAT)",
    }
    rows = []
    for c in cols:
        m = median(c)
        ratio = "" if m is None or not base or c == "baseline" else f"{m / base:.1f}"
        timeouts = sum(1 for r in runs if r[c] is None)
        note = f"  ({timeouts} timed out)" if timeouts else ""
        print(f"{labels[c]:<44} {ms(m):>8} {ratio:>11}{note}")
        if c != "baseline":
            rows.append(benchlib.row(
                "nat", labels[c], None if m is None else m * 1000, "ms",
                anchor=labels["baseline"] + " (same NATs)", anchor_value=None if base is None else base * 1000,
                runs=[None if r[c] is None else round(r[c] * 1000) for r in runs],
                note=f"median of {a.runs} runs" + (f", {timeouts} timed out" if timeouts else "")))
    benchlib.write_json(a.json, rows)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Replacing `table inet meshd` with ENTRIES filter entries: meshd vs `nft -f`.

Set-up: a control server and node alpha joined; then alpha gets crafted
netmaps (the hostile control server of tests/integration/test_attack_control.py,
the real server's TLS identity) whose "filter" has ENTRIES entries, each two
source addresses (IPv4 and IPv6) → alpha's two addresses, ports "22/tcp",
"N/tcp", "53/udp", "icmp" (N differs per entry): 8,000 set elements for
1,000 entries. Each round changes N everywhere, so every round replaces
the whole table. meshd keeps the filter in named sets of concatenations
(src . dst . port, one per family and protocol: docs/firewall.md), so the
chains hold a handful of rules however many entries.

  meshd   the time meshd itself reports for handing the script to
          libnftables and the kernel's transaction ("replaced in X ms" in
          its journal line): meshd's path, the script in one buffer.
  nft -f  `nft -f FILE` (process start included, run inside the namespace)
          of the same table: "table inet meshd {}; delete table inet meshd"
          and the table as `nft list table inet meshd` prints it after
          meshd's replacement, i.e. the same rules and sets.

Medians over the rounds; the ratio meshd / nft -f is printed (no target:
a benchmark, not a test).

    sudo /usr/bin/python3 bench/nftables.py [--entries 1000] [--runs 5] [--json FILE]
Binaries from MESHLAB_BUILD_DIR (default build/).
"""

import argparse
import copy
import ipaddress
import json
import os
import re
import sys
import time
from pathlib import Path

import benchlib
from benchlib import meshlab

sys.path.insert(0, str(benchlib.BENCH_DIR.parent / "tests" / "integration"))
from test_attack_control import HostileControl  # noqa: E402

TIMER = """
import subprocess, sys, time
t = time.monotonic()
cp = subprocess.run(["nft", "-f", sys.argv[1]], capture_output=True, text=True)
print(time.monotonic() - t)
sys.exit(cp.returncode and print(cp.stderr, file=sys.stderr) or cp.returncode)
"""

REPLACED = re.compile(r"Firewall: nftables table inet meshd on \S+ (?:installed|replaced): .* replaced in ([0-9.]+) ms")


def filter_entries(real: dict, n: int, port: int) -> list:
    v4 = ipaddress.ip_network(real["ipv4_range"]).network_address
    v6 = ipaddress.ip_network(real["ipv6_range"]).network_address if real.get("ipv6_range") else None
    dst = [f"{real['self']['ipv4']}/32"] + ([f"{real['self']['ipv6']}/128"] if real["self"].get("ipv6") else [])
    out = []
    for i in range(n):
        src = [f"{v4 + 1000 + i}/32"] + ([f"{v6 + 1000 + i}/128"] if v6 else [])
        out.append({"src": src, "dst": dst, "ports": ["22/tcp", f"{port + i}/tcp", "53/udp", "icmp"]})
    return out


def meshd_times(node) -> list:
    return [float(m.group(1)) for m in REPLACED.finditer(node.log.read_text(errors="replace"))]


def run(a, workdir: Path) -> list:
    os.environ["MESHD_LOG_LEVEL"] = "info"
    with meshlab.Lab(workdir) as lab:
        control = lab.add_control()
        alpha = lab.add_node("alpha", authkey=control.authkey(), policy="none")
        alpha.start()
        alpha.wait_ready(30)
        real = json.loads((alpha.state_dir / "netmap.json").read_text())
        control.stop()

        hostile, version, meshd, anchor = None, real["version"], [], []
        for i in range(a.runs + 1):                 # the first round installs: not counted
            nm = copy.deepcopy(real)
            version += 1
            nm["version"] = version
            nm["filter"] = filter_entries(real, a.entries, 10000 + 20000 * (i % 2))
            if hostile:
                hostile.stop()
            hostile = HostileControl(lab, control, {"netmap": nm, "ca": ""}, f"bench-{i}")
            lab.daemons.append(hostile)
            hostile.start()
            hostile.wait_ready(10)
            meshlab.wait_until(lambda: len(meshd_times(alpha)) > i, 60, interval=0.05,
                               what=f"meshd's replacement {i}")
            if i == 0:
                continue
            meshd.append(meshd_times(alpha)[i] / 1000)

            listing = alpha.exec("nft", "list", "table", "inet", "meshd", check=True).stdout
            script = workdir / f"table-{i}.nft"
            script.write_text("table inet meshd {}\ndelete table inet meshd\n" + listing)
            cp = alpha.exec(meshlab.PYTHON, "-c", TIMER, script, check=True)
            anchor.append(float(cp.stdout.strip()))
        elements = sum(len(block.split("}")[0].split(",")) for block in listing.split("elements = {")[1:])
        print(f"{a.entries} filter entries: {elements} set elements, script {script.stat().st_size} bytes")

    m, n = benchlib.median(meshd), benchlib.median(anchor)
    print(f"meshd (libnftables, one buffer): {m * 1000:.1f} ms; nft -f: {n * 1000:.1f} ms; "
          f"ratio {benchlib.ratio(m, n):.2f}")
    return [benchlib.row("nftables", f"replace table inet meshd, {a.entries} filter entries", m * 1000, "ms",
                         anchor="nft -f of the same table", anchor_value=n * 1000,
                         note=f"{elements} set elements, medians of {a.runs}", runs=a.runs)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json")
    benchlib.run_bench("nftables", run, ap.parse_args(), binaries=("meshd-control", "meshd", "meshctl"))


if __name__ == "__main__":
    main()

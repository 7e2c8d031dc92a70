#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writes docs/BENCHMARKS.md from the JSON rows of the benchmarks (tools/bench).

    bench/report.py --results DIR --out FILE --build-dir DIR [--quick] [--seconds S]

DIR holds NAME.json (rows, see benchlib.py) and NAME.status (the exit
status) for each benchmark run, NAME one of BENCHES. A benchmark that failed
or did not run leaves its targets "not measured", which counts as missed.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# name → (section title, script and options as tools/bench runs them)
BENCHES = {
    "ready": "Time to READY=1 (bench/ready.py)",
    "apply": "Netmap apply vs `wg setconf` (bench/apply.py)",
    "rss": "meshd memory (bench/rss.py)",
    "nodescale": "A node with 10,000 peers: full apply, one changed peer, RssAnon (bench/nodescale.py)",
    "control-small": "meshd-control at a smaller size, for scaling (bench/control.py)",
    "control-full": "meshd-control answering with full netmaps (no deltas), for comparison "
                    "(bench/control.py --full)",
    "control-10000": "meshd-control, 10,000 nodes (bench/control.py --nodes 10000)",
    "throughput": "Throughput (bench/throughput.py)",
    "relay": "Throughput of meshd's paths: direct, hub UDP relay, TLS relay (bench/relay.py)",
    "nat": "NAT traversal (bench/nat.py)",
    "dns": "Mesh DNS: meshd's server vs dnsmasq (bench/dns.py)",
    "nftables": "Replacing meshd's nftables table vs `nft -f` (bench/nftables.py)",
}

# What each benchmark does, in a few words (its script's docstring has the rest).
INTROS = {
    "ready": "meshd is restarted (as `systemctl restart meshd` would, the interface and its wireguard-go "
             "included) beside a LAN peer that stays up; the time runs from exec to READY=1 on a "
             "NOTIFY_SOCKET the benchmark owns, and READY=1 means a peer answered a probe through the tunnel. "
             "The anchor does the least a wireguard-go based tool must do for the same proof.",
    "apply": "Both contenders start from an empty wireguard-go device with its link up. meshd applies the "
             "netmap from its cache (exec → READY=1; with Policy=none READY=1 follows the apply, so process "
             "start-up, parsing, addresses, the hosts table and first probes count against meshd); "
             "`wg setconf` writes the same peers with the same settings (exec → exit). Most of both is "
             "wireguard-go handling the one UAPI request.",
    "rss": "VmRSS counts every resident page, shared-library pages (RssFile) included; RssAnon and PSS in "
           "the notes say what meshd itself holds.",
    "nodescale": "Issue 17: the in-daemon times meshd reports in Status's netmap_apply (from the netmap's "
                 "arrival, before parsing, to the device updated), for the whole map from the cache onto an "
                 "empty wireguard-go device and for one peer added or removed (a netmap delta from the "
                 "control server), against `wg setconf` of the same peers (exec → exit); and meshd's "
                 "RssAnon with those peers.",
    "control": "Every node long-polls on its own TLS connection; one node registers, and the time runs "
               "until the last long-poll has its whole reply. Registration of the nodes is set-up only.",
    "throughput": "meshd's data path is wireguard-go's (meshd configures it and never touches packets), so "
                  "the meshd and plain wireguard-go rows differ only by this machine's run-to-run noise.",
    "relay": "Issue 12's paths between the same two nodes, one lab: direct, relayed by the hub's wireguard-go "
             "(direct UDP dropped), and through the TLS relay (all UDP dropped on the sender: WireGuard inside "
             "TLS to meshd-control, which hands it to the hub). The relays are measured against the direct "
             "path of the same run, the direct path against plain wireguard-go. The notes give the CPU share "
             "of each process on the data path while iperf3 ran.",
    "nat": "Issue 5's NAT topologies; no targets.",
    "nftables": "Issue 16: a node's `table inet meshd` with 1,000 filter entries (named sets of "
                "concatenations), replaced whole in one transaction: the time meshd reports for "
                "libnftables and the kernel, against `nft -f` of the same table (process start "
                "included). No target.",
    "dns": "Issue 14's mesh DNS server on a node, asked for a node's A record by dnsperf in the same "
           "namespace, against dnsmasq answering the same name from a hosts file on the same address "
           "(another port); first with many queries in flight (throughput; the latency then is mostly "
           "queueing), then one at a time (the latency of one query). No target. dnsperf shares the "
           "CPUs with the server: on a small machine the load generator is part of the figure.",
}

# The targets of issue 7 (and issue 12's relay), by the benchmark that measures them: what the
# summary shows when that benchmark produced no row with a target.
TARGETS = {
    "ready": "READY=1 < 200 ms with a cached netmap and a LAN peer",
    "apply": "1,000-peer netmap apply ≤ 1.0× `wg setconf`, same backend",
    "rss": "meshd RSS < 5 MB at 100 peers",
    "nodescale": "issue 17: 10,000 peers: one change < 5 ms, full map ≤ 1.0× `wg setconf`, RssAnon < 30 MiB",
    "control-10000": "10,000 nodes on one server: a change reaches every long-poller in < 2 s",
    "relay": "iperf3 through the hub: UDP relay ≥ 0.90× direct, TLS relay ≥ 0.50× direct",
}

PACKAGES = ("wireguard-go", "wireguard-tools", "tinc", "nebula", "iperf3", "dnsmasq-base", "dnsperf",
            "libcurl3-gnutls", "libmicrohttpd12", "libgnutls30", "libsqlite3-0", "libldns3")


def sh(*argv) -> str:
    cp = subprocess.run(argv, capture_output=True, text=True)
    return cp.stdout.strip() if cp.returncode == 0 else ""


def machine(build_dir: Path) -> list[tuple[str, str]]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = next((int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines()
                if x.startswith("MemTotal:")), 0)
    os_name = next((x.split("=", 1)[1].strip('"') for x in Path("/etc/os-release").read_text().splitlines()
                    if x.startswith("PRETTY_NAME=")), "unknown")
    debian = Path("/etc/debian_version").read_text().strip() if Path("/etc/debian_version").exists() else ""
    versions = []
    for p in PACKAGES:
        v = sh("dpkg-query", "-W", "-f=${Version}", p)
        if v:
            versions.append(f"{p} {v}")
    kmod = Path("/sys/module/wireguard").exists()
    commit = sh("git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD") or "unknown"
    dirty = sh("git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no", "--", "src", "meson.build")
    buildtype = "unknown"
    opts = sh("meson", "introspect", "--buildoptions", str(build_dir))
    if opts:
        for o in json.loads(opts):
            if o.get("name") == "buildtype":
                buildtype = o.get("value")
    return [
        ("CPU", f"{cpu}, {os.cpu_count()} cores (`nproc`)"),
        ("Memory", f"{mem / 1024 / 1024:.1f} GiB"),
        ("Kernel", f"{platform.release()} ({platform.machine()})"),
        ("OS", f"{os_name}" + (f" ({debian})" if debian else "")),
        ("WireGuard backend", "userspace: wireguard-go over its UAPI socket, for meshd and for every anchor "
                              "(the kernel " + ("has a WireGuard module, not used here" if kmod
                                                else "has no WireGuard module") + ")"),
        ("meshd", f"commit {commit}" + (" with uncommitted changes in src/" if dirty else "")
                  + f", build `{build_dir.name}/` ({buildtype})"),
        ("Packages", ", ".join(versions) or "unknown"),
    ]


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if abs(v) >= 100:
        text = f"{v:,.0f}"
    elif abs(v) >= 10:
        text = f"{v:.1f}"
    else:
        text = f"{v:.2f}"
    return f"{text} {unit}".strip()


def cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def met_cell(r) -> str:
    if not r.get("target"):
        return "—"
    return "yes" if r.get("met") else "**no**"


def ratio_cell(r) -> str:
    if r.get("ratio") is None:
        return "—"
    text = f"{r['ratio']:.2f}×"
    return text + " (higher is better)" if r.get("higher_is_better") else text


def table(rows, notes: dict) -> list[str]:
    """notes: note text → its number, shared by every table of the page."""
    out = ["| Figure | Value | Anchor | Anchor value | Ratio | Target | Met |",
           "|---|---:|---|---:|---:|---|---|"]
    for r in rows:
        figure = cell(r["figure"])
        if r.get("note"):
            number = notes.setdefault(r["note"], len(notes) + 1)
            figure += f" [{number}]"
        out.append("| " + " | ".join([
            figure, fmt(r.get("value"), r["unit"]), cell(r.get("anchor") or "—"),
            fmt(r.get("anchor_value"), r["unit"]) if r.get("anchor") else "—", ratio_cell(r),
            cell(r.get("target") or "—"), met_cell(r)]) + " |")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--build-dir", required=True, type=Path)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seconds", type=float, help="wall time of the whole run")
    ap.add_argument("--load", help="/proc/loadavg before the run")
    a = ap.parse_args()

    results, failed = {}, {}
    for name in BENCHES:
        status = a.results / f"{name}.status"
        if not status.exists():
            continue
        code = int(status.read_text().strip() or 1)
        data = a.results / f"{name}.json"
        if code == 0 and data.exists():
            results[name] = json.loads(data.read_text())["rows"]
        else:
            failed[name] = code

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# Benchmarks", "",
             f"Generated by `sudo tools/bench`{' --quick' if a.quick else ''} on {now}; do not edit by hand, "
             "run it again. Every figure comes with an anchor measured in the same run on the same machine, "
             "and the ratio of the two; a benchmark never fails on speed, a missed target is marked "
             "**no** in the Met column.", ""]
    if a.quick:
        lines += ["**Quick run: reduced sizes and repetitions (see tools/bench), not the figures of the "
                  "issue.**", ""]

    lines += ["## Machine", "", "| | |", "|---|---|"]
    for k, v in machine(a.build_dir):
        lines.append(f"| {k} | {cell(v)} |")
    if a.load:
        lines.append(f"| Load average before the run | {cell(a.load)} (the machine may be shared) |")
    if a.seconds:
        lines.append(f"| Wall time of the run | {a.seconds / 60:.1f} min |")
    lines.append("")

    notes = {}
    lines += ["## Targets", ""]
    target_rows = [r for rows in results.values() for r in rows if r.get("target")]
    out = table(target_rows, notes)
    unmeasured = []
    for name, what in TARGETS.items():
        if any(r.get("target") for r in results.get(name, [])):
            continue
        why = f"bench failed (exit {failed[name]})" if name in failed else "not run"
        unmeasured.append(f"{what} ({why})")
        out.append(f"| {cell(what)} | n/a | — | — | — | {cell(what)} | **no**: {why} |")
    lines += out
    missed = [r["figure"] for r in target_rows if not r.get("met")] + unmeasured
    total = len(target_rows) + len(unmeasured)
    lines += ["", f"{total - len(missed)} of {total} targets met."
              + (" Missed: " + "; ".join(missed) + "." if missed else ""), ""]

    lines += ["## All figures", ""]
    for name, title in BENCHES.items():
        if name not in results and name not in failed:
            continue
        lines += [f"### {title}", ""]
        if name.split("-")[0] in INTROS:
            lines += [INTROS[name.split("-")[0]], ""]
        if name in failed:
            lines += [f"The benchmark failed (exit status {failed[name]}); its log is "
                      f"`{a.results.name}/{name}.log` in the build directory.", ""]
            continue
        lines += table(results[name], notes) + [""]

    if notes:
        lines += ["## Notes", ""]
        lines += [f"{i}. {cell(n)}" for n, i in notes.items()] + [""]

    lines += ["## How to reproduce", "",
              "```sh",
              "sudo tools/bench            # installs iperf3, tinc, nebula, … (apt-get), builds build-bench/, "
              "runs everything, writes this file",
              "sudo tools/bench --quick    # small sizes, writes build-bench/BENCHMARKS.md instead",
              "sudo tools/bench ready rss  # some benchmarks only (also written to build-bench/)",
              "```", "",
              "Each benchmark is a script in `bench/` that also runs alone as root, e.g. "
              "`sudo MESHLAB_BUILD_DIR=build-bench /usr/bin/python3 bench/apply.py --peers 1000`; "
              "`bench/README.md` says what each one measures and how. They build their network "
              "namespaces with `tests/integration/meshlab.py` and remove them on exit. Logs of the "
              f"run are in `{a.build_dir.name}/{a.results.name}/`.", ""]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()

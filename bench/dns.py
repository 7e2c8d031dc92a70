#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Mesh DNS: queries/s and latency of meshd's DNS server vs dnsmasq.

One Lab: the control server (with its hub) and one meshd node, alpha,
joined (READY=1). Both servers run in alpha's namespace and answer the same
question, `alpha.mesh.internal A`, with alpha's mesh IPv4:

  meshd     meshd's own mesh DNS server on alpha's mesh IPv4, port 53
            (issue 14), answering from its netmap
  dnsmasq   dnsmasq (Debian's dnsmasq-base), started by the benchmark on
            the same address, port 5300, with --no-resolv --no-hosts and
            --addn-hosts=FILE holding the one line an /etc/hosts would
            (the anchor: a Debian resolver answering a name from a hosts
            file)

Before measuring, `dig` checks that each server answers the question with
alpha's mesh IPv4. Then dnsperf (Debian's dnsperf), also in alpha's
namespace, sends the question to each server in turn (--rounds rounds, the
servers interleaved) from one socket (-c 1 -T 1), a query timing out after
1 s (lost): for --seconds with --outstanding queries in flight (queries/s,
loss, and latency under load, which is mostly queueing: about
outstanding / rate), then for --seconds with one in flight (the latency
of one query). dnsperf -v reports every query's latency: p50 and p99 are
taken from them; queries/s is dnsperf's "Queries per second" (answered
queries / run time).
The figures are medians over the rounds; the ratios are meshd against
dnsmasq in the same run (queries/s: higher is better). No target: the
issue asks for the numbers. The notes give the CPU share (of one core)
each server used and how busy the whole machine was: dnsperf runs on the
same cores, so on a small or shared machine the figures are the machine's
as much as the servers'.

    sudo /usr/bin/python3 bench/dns.py [--seconds 10] [--rounds 2] [--outstanding 100] [--json FILE]
Binaries from MESHLAB_BUILD_DIR (default build/); dnsmasq (dnsmasq-base),
dnsperf and dig (bind9-dnsutils) from Debian (tools/bench installs them).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys

import benchlib
from benchlib import meshlab
from relay import Processes

MODES = ("meshd", "dnsmasq")
QUESTION = "alpha.mesh.internal"
PORTS = {"meshd": 53, "dnsmasq": 5300}
ANSWER_WITHIN_S = 20.0      # meshd binds its DNS sockets once the mesh addresses are up


def dig_a(node, server, port, name) -> list[str]:
    """The A records `dig` gets from server:port for name (empty when none)."""
    cp = node.exec("dig", f"@{server}", "-p", port, "+tries=1", "+time=2", "+short", name, "A", timeout=30)
    return cp.stdout.split() if cp.returncode == 0 else []


def wait_answer(node, server, port, expected, what):
    try:
        meshlab.wait_until(lambda: dig_a(node, server, port, QUESTION) == [expected], ANSWER_WITHIN_S,
                           interval=0.2, what=f"{what} answering {QUESTION} A with {expected}")
    except TimeoutError as e:
        raise RuntimeError(f"{e}; last answer: {dig_a(node, server, port, QUESTION)}") from None


class Dnsmasq:
    """dnsmasq in node's namespace answering QUESTION from a hosts file,
    nothing else (no upstream, no /etc/hosts)."""

    def __init__(self, lab, node, address, port):
        self.node, self.address, self.port = node, address, port
        self.dir = lab.dir / "dnsmasq"
        self.dir.mkdir(exist_ok=True)
        # dnsmasq drops to user nobody after start-up; it must still read the file.
        for d in (lab.dir, self.dir):
            d.chmod(d.stat().st_mode | 0o711)
        self.hosts = self.dir / "hosts"
        self.hosts.write_text(f"{address} {QUESTION}\n")
        self.hosts.chmod(0o644)
        self.proc = None

    def start(self):
        self.proc = self.node.ns.popen(
            ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=", "--log-facility=-",
             "--no-resolv", "--no-hosts", f"--addn-hosts={self.hosts}", f"--listen-address={self.address}",
             "--bind-interfaces", f"--port={self.port}"], log=self.dir / "dnsmasq.log")
        wait_answer(self.node, self.address, self.port, self.address, "dnsmasq")
        return self.proc.pid

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None


def percentile(ordered, p):
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def parse_dnsperf(path) -> dict:
    """dnsperf -v's output: one "> RCODE NAME TYPE SECONDS" line per
    answered query, then its statistics."""
    latencies, rcodes, stats = [], {}, {}
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("> "):
                fields = line.split()
                rcodes[fields[1]] = rcodes.get(fields[1], 0) + 1
                latencies.append(float(fields[-1]))
                continue
            m = re.match(r"\s+(Queries sent|Queries completed|Queries lost|Queries per second):\s+([\d.]+)", line)
            if m:
                stats[m.group(1)] = float(m.group(2))
    if "Queries per second" not in stats:
        raise RuntimeError(f"dnsperf printed no statistics (output in {path})")
    latencies.sort()
    sent = stats.get("Queries sent", 0)
    return {"qps": stats["Queries per second"], "sent": int(sent),
            "lost_pct": stats.get("Queries lost", 0) / sent * 100 if sent else None,
            "p50": percentile(latencies, 50) * 1e6 if latencies else None,
            "p99": percentile(latencies, 99) * 1e6 if latencies else None,
            "rcodes": rcodes}


def dnsperf(node, server, port, a, outstanding, out):
    """dnsperf in node's namespace against server:port for a.seconds; its
    output goes to out, parse_dnsperf's figures are returned."""
    data = out.with_suffix(".queries")
    data.write_text(f"{QUESTION} A\n")
    argv = ["ip", "netns", "exec", node.ns.name, "dnsperf", "-s", server, "-p", str(port), "-d", str(data),
            "-l", str(a.seconds), "-q", str(outstanding), "-c", "1", "-T", "1", "-t", "1", "-v"]
    with open(out, "w") as f:
        cp = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, timeout=a.seconds + 60)
    if cp.returncode != 0:
        raise RuntimeError(f"dnsperf exited {cp.returncode} (output in {out})")
    return parse_dnsperf(out)


def one_round(r, a, lab, alpha, address, dnsmasq, results, shares):
    """Each server in turn: dnsperf with a.outstanding queries in flight
    (the throughput and loaded latency), then with one (the latency)."""
    for mode in MODES:
        if mode == "dnsmasq":
            pids = {"dnsmasq": dnsmasq.start()}
        else:
            pids = {"meshd": alpha.proc.pid}
        try:
            for phase, outstanding in (("load", a.outstanding), ("single", 1)):
                with Processes(pids) as p:
                    res = dnsperf(alpha, address, PORTS[mode], a, outstanding,
                                  lab.dir / f"dnsperf-{mode}-{phase}-{r}.log")
                results[mode][phase].append(res)
                shares[mode][phase].append(p.share)
                print(f"round {r + 1}: {mode}, {outstanding} in flight: {benchlib.fmt(res['qps'], 'queries/s')}, "
                      f"p50 {benchlib.fmt(res['p50'], 'µs')}, p99 {benchlib.fmt(res['p99'], 'µs')}, lost "
                      f"{benchlib.fmt(res['lost_pct'], '%')}, answers {res['rcodes']}; {mode} "
                      f"{benchlib.fmt(p.share.get(mode), '%')} of one core, whole machine "
                      f"{p.share['whole machine']:.0f}% of {os.cpu_count() * 100}%", flush=True)
        finally:
            dnsmasq.stop()


def run(a, workdir):
    os.environ["MESHD_LOG_LEVEL"] = "info"
    results = {m: {"load": [], "single": []} for m in MODES}
    shares = {m: {"load": [], "single": []} for m in MODES}
    load = open("/proc/loadavg").read().split()[:3]
    with meshlab.Lab(workdir) as lab:
        control = lab.add_control()
        alpha = lab.add_node("alpha", authkey=control.authkey())
        alpha.start()
        alpha.wait_ready(60)
        address = alpha.status()["ipv4"]
        wait_answer(alpha, address, PORTS["meshd"], address, "meshd")
        dnsmasq = Dnsmasq(lab, alpha, address, PORTS["dnsmasq"])
        for r in range(a.rounds):
            one_round(r, a, lab, alpha, address, dnsmasq, results, shares)
    return rows(a, results, shares, load)


def summary(a, mode, results, shares):
    cpu = {k: benchlib.median([s.get(k) for s in shares[mode]["load"]]) for k in (mode, "whole machine")}
    answered = {}
    for phase, runs in results[mode].items():
        for res in runs:
            for k, v in res["rcodes"].items():
                answered[(phase, k)] = answered.get((phase, k), 0) + v
    counts = ", ".join(f"{v:,} {k} with {a.outstanding if phase == 'load' else 1} in flight"
                       for (phase, k), v in answered.items())
    return (f"{mode}: answered {counts}; with {a.outstanding} in flight {mode} used "
            f"{benchlib.fmt(cpu[mode], '%')} of one core, the whole machine (dnsperf, kernel and others "
            f"included) {benchlib.fmt(cpu['whole machine'], '%')} of {os.cpu_count() * 100}%")


def rows(a, results, shares, load):
    version = (benchlib.run_quiet(["dnsmasq", "--version"]).stdout.splitlines() or ["dnsmasq"])[0]
    version = version.split()[2] if len(version.split()) > 2 else "?"     # "Dnsmasq version 2.90 …"
    anchor = f"dnsmasq {version}, the same name from a hosts file (--addn-hosts), same address, same run"
    q = f"`{QUESTION} A`"
    paced = benchlib.median([res["qps"] for m in MODES for res in results[m]["single"]]) or 0
    figures = (("load", "qps", f"queries/s answered by meshd's mesh DNS server ({q}, {a.outstanding} in flight)",
                "queries/s", True),
               ("load", "p50", f"latency p50 with {a.outstanding} queries in flight, meshd", "µs", False),
               ("load", "p99", f"latency p99 with {a.outstanding} queries in flight, meshd", "µs", False),
               ("single", "p50", "latency p50, one query at a time, meshd", "µs", False),
               ("single", "p99", "latency p99, one query at a time, meshd", "µs", False),
               ("load", "lost_pct", f"queries lost (no answer within 1 s) with {a.outstanding} in flight, meshd",
                "%", False))
    note = (f"median of {a.rounds} rounds of {a.seconds} s per server and load, servers interleaved; dnsperf "
            f"-c 1 -T 1 in the servers' namespace, {q} only; "
            + summary(a, "meshd", results, shares) + "; " + summary(a, "dnsmasq", results, shares)
            + f"; load average before the run {' '.join(load)}; one at a time, dnsperf paces its queries "
            f"(about {paced:.0f}/s here), so those percentiles rest on about {paced * a.seconds:,.0f} queries "
            "per server and round")
    out = []
    for phase, key, figure, unit, higher in figures:
        def med(mode):
            return benchlib.median([res[key] for res in results[mode][phase]])
        runs = [res[key] for res in results["meshd"][phase]]
        out.append(benchlib.row("dns", figure, med("meshd"), unit, anchor=anchor, anchor_value=med("dnsmasq"),
                                higher_is_better=higher, note=note,
                                runs=[round(x, 2) if x is not None else None for x in runs]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=10, help="dnsperf's run time per server and round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--outstanding", type=int, default=100, help="queries in flight (dnsperf -q)")
    ap.add_argument("--json", help="write the rows here (for bench/report.py)")
    a = ap.parse_args()
    missing = [b for b in ("dnsmasq", "dnsperf", "dig") if shutil.which(b) is None]
    if missing:
        sys.exit(f"bench/dns.py: {', '.join(missing)} not installed (tools/bench installs them: "
                 "dnsmasq-base, dnsperf, bind9-dnsutils)")
    benchlib.run_bench("dns", run, a)


if __name__ == "__main__":
    main()

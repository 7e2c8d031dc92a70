# SPDX-License-Identifier: LGPL-2.1-or-later
"""Helpers shared by the benchmarks in bench/ (not a benchmark itself).

Every benchmark prints its figures with their anchors and, with --json
FILE, writes them as rows for tools/bench's report (bench/report.py):

    {"bench": "apply", "figure": "…", "value": 12.3, "unit": "ms",
     "anchor": "…", "anchor_value": 10.1, "ratio": 1.22,
     "target": "≤ 1.0× anchor", "met": false, "note": "…"}

"met" is null for figures without a target. Lower is better unless the
row says "higher_is_better": true (throughput).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent / "tests" / "integration"))
import meshlab  # noqa: E402

LOADGEN = BENCH_DIR / "loadgen.py"


def check_environment(*binaries):
    """Root, namespaces, built binaries; clears what aborted runs left.
    SIGTERM (tools/bench's time limit) unwinds like Ctrl-C, so every Lab
    removes its namespaces and daemons."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    problem = meshlab.netns_usable()
    if problem:
        sys.exit(f"{Path(sys.argv[0]).name}: {problem}")
    for name in binaries:
        meshlab.binary(name)
    meshlab.sweep_stale()


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio(value, anchor):
    if value is None or not anchor:
        return None
    return value / anchor


def row(bench, figure, value, unit, *, anchor=None, anchor_value=None, target=None, met=None,
        note=None, higher_is_better=False, runs=None):
    return {"bench": bench, "figure": figure, "value": value, "unit": unit, "anchor": anchor,
            "anchor_value": anchor_value, "ratio": ratio(value, anchor_value), "target": target,
            "met": met, "note": note, "higher_is_better": higher_is_better, "runs": runs}


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        text = f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"
    else:
        text = str(v)
    return f"{text} {unit}".strip()


def print_rows(rows):
    for r in rows:
        line = f"{r['figure']}: {fmt(r['value'], r['unit'])}"
        if r["anchor"]:
            line += f" | anchor {r['anchor']}: {fmt(r['anchor_value'], r['unit'])}"
            if r["ratio"] is not None:
                line += f" | ratio {r['ratio']:.2f}"
        if r["target"]:
            line += f" | target {r['target']}: {'met' if r['met'] else 'MISSED'}"
        print(line, flush=True)


def write_json(path, rows, extra=None):
    if not path:
        return
    data = {"rows": rows}
    data.update(extra or {})
    Path(path).write_text(json.dumps(data, indent=1) + "\n")


def proc_status(pid) -> dict:
    """/proc/PID/status memory fields in KiB (VmRSS, VmHWM, RssAnon, RssFile, …)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.startswith(("Vm", "Rss")) and value.strip().endswith("kB"):
            out[key] = int(value.split()[0])
    return out


def proc_pss(pid) -> int:
    """Proportional set size in KiB (shared pages divided among their users)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def proc_rss_by_file(pid, top=6) -> list[tuple[str, int]]:
    """The mapped files with the most resident KiB, and "[heap]"/anonymous."""
    sizes, name = {}, None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        f = line.split()
        if f and "-" in f[0] and not f[0].endswith(":"):
            name = os.path.basename(f[5]) if len(f) > 5 else "[anonymous]"
        elif f and f[0] == "Rss:" and name:
            sizes[name] = sizes.get(name, 0) + int(f[1])
    return sorted(sizes.items(), key=lambda kv: -kv[1])[:top]


def proc_cpu_seconds(pid) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(pid, *, quiet=0.5, busy_share=0.05, timeout=120.0):
    """Waits until process pid used less than busy_share of one CPU over
    `quiet` seconds (it has worked off what it was sent)."""
    deadline = time.monotonic() + timeout
    last = proc_cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = proc_cpu_seconds(pid)
        if now - last < busy_share * quiet:
            return True
        last = now
    return False


def register_nodes(ns: meshlab.Netns, control, authkey, count, out: Path, *, first=0, prefix="n",
                   concurrency=8, timeout=1800) -> dict:
    """POST /v1/register `count` times from namespace ns; appends the nodes'
    tokens to out (JSON lines). Returns loadgen's summary."""
    cp = ns.exec(meshlab.PYTHON, LOADGEN, "register", "--url", control.url, "--authkey", str(authkey),
                 "--count", count, "--first", first, "--prefix", prefix, "--concurrency", concurrency,
                 "--out", out, timeout=timeout)
    lines = cp.stdout.strip().splitlines()
    if cp.returncode != 0 or not lines:
        raise RuntimeError(f"loadgen register failed ({cp.returncode}): {cp.stdout[-2000:]} {cp.stderr[-2000:]}")
    return json.loads(lines[-1])


def pid_of_child(parent: int, name: str) -> int | None:
    """A direct child of parent whose command is name (wireguard-go of meshd)."""
    for task in Path(f"/proc/{parent}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for c in children:
            argv = meshlab._cmdline(int(c))
            if argv and os.path.basename(argv[0]) == name:
                return int(c)
    return None


def run_quiet(argv, **kwargs):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kwargs)


def run_bench(name, run, args, binaries=("meshd-control", "meshd", "meshctl")):
    """The end of every benchmark's main(): check the environment, run in a
    scratch directory, print the rows and (--json) write them."""
    check_environment(*binaries)
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        rows = run(args, Path(tmp))
    print_rows(rows)
    write_json(args.json, rows)

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""meshd-control at scale: registration rate, NODES nodes all long-polling, one change.

Each engine of --engines in turn (sqlite, postgresql: a throw-away server
from tests/pg/pgserver.py), one Lab each. The registration rate (issue 17,
target >= 1,000/s at 10,000 nodes) is step 1's; on PostgreSQL steps 2-4
run with --replicas `serve` processes on the one database (default 2), the
long-polls split across them round-robin, the change made through the
first (issue 17: a change -> all long-polls answered with 2 replicas).

One Lab: the control server (userspace hub unless --no-hub) and a
load-generator namespace on the same bridge. Steps:

  1. register NODES nodes (POST /v1/register with a reusable auth key,
     --concurrency keep-alive TLS connections from each of
     --register-procs processes); each gets a random
     key and one endpoint; this runs without the hub, which comes up with
     a restart of the server afterwards (set-up time only);
  2. every node opens its long-poll (GET /v1/netmap?since=CURRENT&delta=1,
     as meshd asks; --full leaves out &delta=1) on its own TLS connection,
     from --pollers processes (asyncio + ssl) so that one Python process
     does not have to drive all of them;
  3. once every request is sent and the server has gone idle, one change:
     a new node registers (POST /v1/register, sent from this process);
     with --policy the mesh has an access policy from the start
     ("allow * -> *:22/tcp") and the change is `meshd-control policy set`
     of another (22/tcp and 443/tcp): every node's filter changes, so every
     node gets a full netmap (issue 16: policy change → applied);
  4. from sending that request to each long-poll's complete reply
     (status 200 and the whole body read): first, median, 99th
     percentile and last; and the server's memory (VmRSS before, VmHWM
     after).

Target (issue 7), for 10,000 nodes: the change reaches every long-poller
in < 2 s (smaller --nodes give scaling points without a target).
Anchor: the time the same server needs to answer a single request for the
full netmap at this size (GET /v1/netmap?since=0 from one client on a new
TLS connection, nothing else running), so the ratio says how many
single-node answers the fan-out costs.

The server runs under an address-space limit (--memory-cap, default 8 GiB
and never more than MemAvailable less 4 GiB, set with prlimit) so that a
server that buffers every reply at once fails its own allocations (HTTP
500 or a dropped connection, counted) instead of pushing a shared machine
into the OOM killer.

    sudo /usr/bin/python3 bench/control.py [--nodes 10000] [--pollers 4] [--engines sqlite,postgresql]
        [--replicas 2] [--register-only] [--full] [--perf FILE] [--json FILE]
Binaries from MESHLAB_BUILD_DIR (default build/).
"""

import argparse
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import benchlib
from benchlib import meshlab

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "pg"))
import pgserver  # noqa: E402


TARGET_NODES = 10000


class CappedControl(meshlab.Control):
    """meshd-control serve under RLIMIT_AS (prlimit execs it: the pid stays the server's)."""

    memory_cap = None

    def argv(self):
        argv = super().argv()
        if self.memory_cap:
            return ["prlimit", f"--as={self.memory_cap}", "--", *argv]
        return argv


def add_control(lab, *, hub, memory_cap) -> CappedControl:
    ns = lab.add_host("control", lab.control_address)
    control = CappedControl(lab, ns, lab.control_address, hub=hub)
    control.memory_cap = memory_cap
    lab.daemons.append(control)
    lab.control = control
    control.init()
    control.start()
    control.wait_ready(30)
    return control


def https_request(ns, host, port, method, path, *, token=None, body=None, timeout=120):
    """One HTTPS request from namespace ns; (status, body bytes, seconds
    from sending to the last byte)."""
    raw = meshlab.netns_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
    raw.settimeout(timeout)
    raw.connect((host, port))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with ctx.wrap_socket(raw) as s:
        head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
        if token:
            head.append(f"Authorization: Bearer {token}")
        data = body or b""
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        start = time.monotonic()
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        chunks = []
        while True:
            try:
                chunk = s.recv(1 << 20)
            except ssl.SSLEOFError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        elapsed = time.monotonic() - start
    reply = b"".join(chunks)
    head, _, rest = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, rest, elapsed, start


class Poller:
    """One loadgen poll process; its output lines are collected by a thread."""

    def __init__(self, ns, control, tokens, first, last, since, deadline, delta, log):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns.name, meshlab.PYTHON, str(benchlib.LOADGEN), "poll",
             "--url", control.url, "--tokens", str(tokens), "--first", str(first), "--last", str(last),
             "--since", str(since), "--deadline", str(deadline)] + (["--delta"] if delta else []),
            stdout=subprocess.PIPE, stderr=open(log, "w"), text=True, start_new_session=True)
        self.parked = None
        self.result = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith("parked "):
                self.parked = int(line.split()[1])
            elif line.startswith("{"):
                self.result = json.loads(line)

    def kill(self):
        if self.proc.poll() is None:
            meshlab._kill_pids([self.proc.pid], grace=2)


def parse_size(text) -> int:
    """"8G", "512M", "1048576" → bytes (prlimit itself takes only bytes)."""
    m = re.fullmatch(r"(\d+)([KMGT]?)", text.strip().upper())
    if not m:
        sys.exit(f"bench/control.py: --memory-cap {text!r}: a number of bytes with K, M, G or T")
    return int(m.group(1)) * 1024 ** " KMGT".index(m.group(2) or " ")


HEADROOM = 4 << 30


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def fmt_s(seconds) -> str:
    return "n/a" if seconds is None else f"{seconds:.2f} s"


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def change_policy(control, policy_file) -> float:
    """The change of --policy: another policy; returns when it was started."""
    policy_file.write_text('{"rules": ["allow * -> *:22/tcp,443/tcp"]}\n')
    t0 = time.monotonic()
    control.command("policy", "set", policy_file, timeout=600)
    print(f"policy set returned after {time.monotonic() - t0:.2f} s", flush=True)
    return t0


def register_trigger(gen, control, key) -> float:
    """The change: a new node joins; returns when its registration was sent."""
    # the change: a new node joins
    public_key = meshlab.fake_public_key()
    status, ch, _elapsed, _t = https_request(gen, control.address, control.port, "POST",
                                             "/v1/challenge", body=b"{}", timeout=600)
    if status != 200:
        raise RuntimeError(f"trigger challenge: HTTP {status} {ch[:200]!r}")
    ch = json.loads(ch)
    body = json.dumps({"authkey": str(key), "public_key": public_key, "hostname": "trigger",
                       "endpoints": [], "challenge": ch["challenge"],
                       "proof": meshlab.register_proof(meshlab.private_key_of(public_key),
                                                       ch["server_key"], ch["challenge"],
                                                       public_key, "trigger", str(key))}).encode()
    status, reply, _elapsed, t0 = https_request(gen, control.address, control.port, "POST",
                                                "/v1/register", body=body, timeout=600)
    if status != 200:
        raise RuntimeError(f"trigger registration: HTTP {status} {reply[:200]!r}")
    return t0


def register_parallel(gen, control, key, count, tokens: Path, procs: int, concurrency: int,
                      netmap_scope: str = "self") -> dict:
    """loadgen register from procs processes at once (one Python process
    would measure itself: TLS, JSON and the proof of key possession), each
    with concurrency keep-alive connections; their tokens end up in tokens
    in node order."""
    per = (count + procs - 1) // procs
    running = []
    for i in range(procs):
        first, n = i * per, min(count, (i + 1) * per) - i * per
        if n <= 0:
            break
        out = tokens.with_suffix(f".{i}")
        running.append((out, subprocess.Popen(
            ["ip", "netns", "exec", gen.name, meshlab.PYTHON, str(benchlib.LOADGEN), "register",
             "--url", control.url, "--authkey", str(key), "--count", str(n), "--first", str(first),
             "--concurrency", str(concurrency), "--out", str(out), "--netmap-scope", netmap_scope],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    total = {"registered": 0, "n_errors": 0, "errors": []}
    for out, proc in running:
        stdout, stderr = proc.communicate(timeout=1800)
        lines = stdout.strip().splitlines()
        if not lines:
            raise RuntimeError(f"loadgen register failed ({proc.returncode}): {stderr[-2000:]}")
        r = json.loads(lines[-1])
        total["registered"] += r["registered"]
        total["n_errors"] += r["n_errors"]
        total["errors"] += r["errors"]
        with open(tokens, "a") as f:
            f.write(out.read_text())
    return total


def run(a, workdir: Path) -> list:
    """Each engine of --engines in turn, one Lab each (PostgreSQL: a
    throw-away server from tests/pg/pgserver.py)."""
    os.environ["MESHD_LOG_LEVEL"] = "info"      # no per-request debug lines at this scale
    rows = []
    for engine in a.engines:
        if engine == "sqlite":
            rows += run_engine(a, workdir / engine, None)
            continue
        pg = pgserver.PgServer().start()
        try:
            rows += run_engine(a, workdir / engine, pg)
        finally:
            pg.stop()
    return rows


def run_engine(a, workdir: Path, pg) -> list:
    engine = "PostgreSQL" if pg else "SQLite"
    replicas = a.replicas if pg else 1
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    with meshlab.Lab(workdir) as lab:
        if pg:
            lab.use_postgresql(pg)
        # Registration is set-up, not the measurement: without the hub it
        # is quicker (no UAPI call per node); the hub, when wanted, comes up
        # with the restart below, all members in one go.
        control = add_control(lab, hub=False, memory_cap=a.memory_cap)
        key = control.authkey(reusable=True)
        gen = lab.add_host("gen", "192.0.2.200")
        gen.exec("sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65000", check=True)
        tokens = workdir / "tokens.jsonl"
        t = time.monotonic()
        reg = register_parallel(gen, control, key, a.nodes, tokens, a.register_procs, a.concurrency,
                                a.register_netmap)
        reg_seconds = time.monotonic() - t
        print(f"{engine}: registered {reg['registered']} nodes in {reg_seconds:.1f} s "
              f"({reg['registered'] / reg_seconds:,.0f}/s)", flush=True)
        if reg["registered"] != a.nodes:
            raise RuntimeError(f"only {reg['registered']} of {a.nodes} nodes registered: {reg}")
        rows.append(benchlib.row(
            "control", f"{a.nodes:,} nodes ({engine}): registration rate", reg["registered"] / reg_seconds,
            "/s", target=">= 1000/s" if a.nodes >= TARGET_NODES else None,
            met=reg["registered"] / reg_seconds >= 1000 if a.nodes >= TARGET_NODES else None,
            note=(f"{reg['registered']:,} registrations in {reg_seconds:.1f} s from {a.register_procs} "
                  f"load-generator processes with {a.concurrency} keep-alive connections each "
                  f"(challenge, proof, register; the reply's netmap: "
                  f"{'the node alone, as meshd asks' if a.register_netmap == 'self' else 'the whole mesh'}), "
                  f"one server, no hub")))
        if a.register_only:
            return rows
        control.stop()
        control.hub = not a.no_hub
        control.start()
        control.wait_ready(300)
        print(f"server {'with hub ' if control.hub else ''}restarted, READY=1 after "
              f"{control.wait_ready(1).after_start:.1f} s", flush=True)
        # the other replicas serve the same database; the long-polls are
        # split across all of them, the change goes through the first
        servers = [control] + [lab.add_control_replica() for _ in range(replicas - 1)]
        server = control.proc.pid
        policy_file = workdir / "policy.json"
        if a.policy:
            policy_file.write_text('{"rules": ["allow * -> *:22/tcp"]}\n')
            control.command("policy", "set", policy_file, timeout=600)
        benchlib.wait_idle(server, quiet=1.0, busy_share=0.2, timeout=120)
        idle = benchlib.proc_status(server)

        token0 = json.loads(tokens.read_text().splitlines()[0])["token"]
        single = []
        version = None
        for _ in range(3):
            status, body, elapsed, _start = https_request(gen, control.address, control.port, "GET",
                                                          "/v1/netmap?since=0", token=token0)
            if status != 200:
                raise RuntimeError(f"GET /v1/netmap?since=0: HTTP {status} {body[:200]!r}")
            single.append(elapsed)
            version = int(re.match(rb'\{"version":(\d+)', body).group(1))
            netmap_bytes = len(body)
        anchor = benchlib.median(single)
        print(f"one long-poll answered at once: {anchor * 1000:.1f} ms, {netmap_bytes} bytes "
              f"(netmap version {version})", flush=True)

        per = (a.nodes + a.pollers - 1) // a.pollers
        pollers = []
        perf = None
        t = time.monotonic()
        try:
            for i in range(a.pollers):
                pollers.append(Poller(gen, servers[i % len(servers)], tokens, i * per, min(a.nodes, (i + 1) * per), version,
                                      a.deadline, not a.full, workdir / f"poller{i}.log"))
            meshlab.wait_until(lambda: all(p.parked is not None or p.proc.poll() is not None for p in pollers),
                               300, interval=0.2, what="every long-poll sent")
            parked = sum(p.parked or 0 for p in pollers)
            # the hub reads its device every second: "idle" allows for that
            benchlib.wait_idle(server, quiet=1.0, busy_share=0.2, timeout=120)
            print(f"{parked} long-polls open after {time.monotonic() - t:.1f} s", flush=True)
            waiting = benchlib.proc_status(server)

            perf = None
            if a.perf:
                perf = subprocess.Popen(["perf", "record", "-q", "-g", "-o", a.perf, "-p", str(server)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(0.5)
            if a.policy:
                t0 = change_policy(control, policy_file)
            else:
                t0 = register_trigger(gen, control, key)
            meshlab.wait_until(lambda: all(p.result is not None or p.proc.poll() is not None for p in pollers),
                               a.deadline + 30, interval=0.2, what="every poller's summary")
        finally:
            for p in pollers:
                p.kill()
            if perf is not None:
                perf.send_signal(2)
                perf.wait(60)
        after = benchlib.proc_status(server) if control.running else {}
        server_alive = control.running
        replies, statuses, nbytes, failures, gen_rss = [], {}, 0, 0, []
        for p in pollers:
            p.thread.join(5)
            r = p.result or {"replies_at": [], "status": {}, "bytes": 0, "failures": per, "maxrss_kib": 0}
            replies += [(status, t - t0) for status, t in r["replies_at"]]
            for k, v in r["status"].items():
                statuses[k] = statuses.get(k, 0) + v
            nbytes += r["bytes"]
            failures += r["failures"]
            gen_rss.append(r["maxrss_kib"])
        ok_times = sorted(t for status, t in replies if status == 200)
        all_times = sorted(t for _status, t in replies)
        ok = len(ok_times)
        last = ok_times[-1] if ok == a.nodes else None
        print(f"replies: {statuses}, failures {failures}, {nbytes / 1e6:,.1f} MB", flush=True)
        if ok_times:
            print(f"fan-out (HTTP 200): first {ok_times[0]:.2f} s, median {percentile(ok_times, 50):.2f} s, "
                  f"p99 {percentile(ok_times, 99):.2f} s, last {ok_times[-1]:.2f} s", flush=True)
        print(f"server VmRSS idle {idle.get('VmRSS')} KiB, with polls {waiting.get('VmRSS')} KiB, "
              f"peak {after.get('VmHWM')} KiB{'' if server_alive else ' (server died)'}", flush=True)

        n = f"{a.nodes:,}"
        where = f"{engine}, {replicas} replicas" if replicas > 1 else engine
        prefix = f"{n} nodes ({where})" + (", full netmaps (no deltas)" if a.full else "") + \
            (", a policy change (every filter changes)" if a.policy else "")
        hub = "hub on (wireguard-go)" if not a.no_hub else "no hub"
        split = f"{a.pollers} load-generator processes" if a.pollers > 1 else "one load-generator process"
        note_all = (f"{ok:,} of {n} long-polls got the new netmap (HTTP status counts {statuses}, "
                    f"{failures} failed or unanswered{'' if server_alive else ', the server died'}); "
                    f"first 200 after {fmt_s(ok_times[0] if ok_times else None)}, last after "
                    f"{fmt_s(ok_times[-1] if ok_times else None)}, last reply of any kind after "
                    f"{fmt_s(all_times[-1] if all_times else None)}; "
                    f"{nbytes / 1e6:,.1f} MB of replies ({'full netmaps' if a.full else 'deltas, as meshd asks'}; "
                    f"a full netmap is {netmap_bytes / 1e6:.2f} MB); {hub}; {split} "
                    f"(peak RSS {max(gen_rss) / 1024:.0f} MiB each at most); server under "
                    f"prlimit --as={a.memory_cap_text}")
        anchor_label = "one full netmap for one client (same server, nothing else waiting)"
        rows.append(benchlib.row(
            "control", f"{prefix}: change → every long-poll answered with the new netmap (a node registers)",
            None if last is None else last * 1000, "ms", anchor=anchor_label, anchor_value=anchor * 1000,
            target="< 2000 ms" if a.nodes >= TARGET_NODES else None,
            met=(last is not None and last < 2.0) if a.nodes >= TARGET_NODES else None,
            note=note_all if last is not None else "NOT every long-poll got the new netmap: " + note_all))
        for label, pct in (("median", 50), ("99th percentile", 99)):
            v = percentile(ok_times, pct)
            rows.append(benchlib.row("control", f"{prefix}: change → {label} long-poll answered (HTTP 200)",
                                     None if v is None else v * 1000, "ms",
                                     anchor=anchor_label, anchor_value=anchor * 1000))
        rows.append(benchlib.row("control", f"{prefix}: server RSS, idle", idle.get("VmRSS", 0) / 1024, "MiB"))
        rows.append(benchlib.row("control", f"{prefix}: server RSS, every long-poll open",
                                 waiting.get("VmRSS", 0) / 1024, "MiB"))
        rows.append(benchlib.row("control", f"{prefix}: server peak RSS (VmHWM) since its restart, fan-out included",
                                 after.get("VmHWM", 0) / 1024 if after else None, "MiB",
                                 note=(f"VmHWM just before the change: {waiting.get('VmHWM', 0) / 1024:.1f} MiB; "
                                       f"{a.nodes:,} full netmaps of {netmap_bytes / 1e6:.2f} MB would be "
                                       f"{a.nodes * netmap_bytes / 2**20:,.0f} MiB"
                                       + ("" if after else "; the server died during the fan-out"))))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=10000)
    ap.add_argument("--pollers", type=int, default=4, help="load-generator processes")
    ap.add_argument("--engines", default="sqlite,postgresql",
                    help="store engines to run, in turn (comma-separated: sqlite, postgresql)")
    ap.add_argument("--replicas", type=int, default=2,
                    help="serve replicas on the PostgreSQL database, long-polls split across them")
    ap.add_argument("--register-procs", type=int, default=4, help="load-generator processes that register")
    ap.add_argument("--register-only", action="store_true", help="only the registration rate, no long-polls")
    ap.add_argument("--register-netmap", choices=("self", "full"), default="self",
                    help="the register reply's netmap: the node alone (as meshd asks) or the whole mesh "
                         "(as before netmap_scope)")
    ap.add_argument("--concurrency", type=int, default=8, help="keep-alive connections per registering process")
    ap.add_argument("--no-hub", action="store_true", help="serve --no-hub")
    ap.add_argument("--policy", action="store_true",
                    help="the change is `meshd-control policy set` of a new access policy")
    ap.add_argument("--full", action="store_true",
                    help="long-poll for full netmaps (no &delta=1, unlike meshd)")
    ap.add_argument("--memory-cap", default="8G",
                    help="prlimit --as for the server; at most MemAvailable less 4 GiB")
    ap.add_argument("--deadline", type=float, default=300.0, help="seconds to wait for the replies")
    ap.add_argument("--perf", metavar="FILE", help="perf record -g the server through the fan-out")
    ap.add_argument("--json", help="write the rows here (for bench/report.py)")
    a = ap.parse_args()
    a.engines = [e.strip() for e in a.engines.split(",") if e.strip()]
    for e in a.engines:
        if e not in ("sqlite", "postgresql"):
            sys.exit(f"bench/control.py: --engines: {e!r} is neither sqlite nor postgresql")
    if a.replicas < 1:
        sys.exit("bench/control.py: --replicas: at least 1")
    a.memory_cap_text = a.memory_cap
    a.memory_cap = parse_size(a.memory_cap) or None
    # never more than what the machine has free, less 4 GiB for everyone else
    available = mem_available()
    if a.memory_cap is None or a.memory_cap > available - HEADROOM:
        cap = max(available - HEADROOM, 1 << 30)
        print(f"bench/control.py: {available >> 20} MiB available: server capped at {cap >> 20} MiB "
              f"instead of {a.memory_cap_text}", flush=True)
        a.memory_cap, a.memory_cap_text = cap, f"{cap >> 20}M"
    benchlib.run_bench("control", run, a, binaries=("meshd-control",))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Driver of tools/demo: a control server and three nodes (alpha, bravo,
charlie) in network namespaces, built with the same tests/integration/meshlab.py
the integration tests use. Usage: tools/demo.py [--keep]"""

import argparse
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import meshlab  # noqa: E402

NAMES = ("alpha", "bravo", "charlie")


def say(text=""):
    print(text, flush=True)


def show_mesh(lab, control, nodes):
    say(f"\ncontrol server  {control.url}  (namespace {control.ns.name})")
    say(f"                pin {control.pin}\n")
    say(f"{'node':8} {'mesh name':24} {'IPv4':15} {'IPv6':26} underlay")
    for n in nodes:
        s = n.status()
        say(f"{n.name:8} {s.get('fqdn') or s['name']:24} {s['ipv4']:15} "
            f"{s.get('ipv6') or '-':26} {n.address}")
    say("\nmeshctl ping, by name, from every node to the others:")
    ok = True
    for src in nodes:
        for dst in nodes:
            if src is dst:
                continue
            cp = src.meshctl("ping", "-c", "1", dst.name)
            out = (cp.stdout.strip() or cp.stderr.strip()).splitlines()
            mark = "ok  " if cp.returncode == 0 else "FAIL"
            ok &= cp.returncode == 0
            say(f"  {mark} {src.name:>7} → {dst.name:7}  {out[-1] if out else ''}")

    say("\nplain ping (ICMP through the tunnel), names resolved by the NSS module:")
    for src in nodes:
        nss = meshlab.NssResolver(lab, src, meshlab.write_nsswitch(lab, src, True))
        for dst in nodes:
            if src is dst:
                continue
            fqdn = f"{dst.name}.mesh.internal"
            cp = nss.run("ping", "-4", "-c", "1", "-W", "2", fqdn)
            first = cp.stdout.splitlines()[0] if cp.stdout else ""
            resolved = first.split("(")[1].split(")")[0] if "(" in first else "?"
            reply = [line for line in cp.stdout.splitlines() if "time=" in line]
            mark = "ok  " if cp.returncode == 0 else "FAIL"
            ok &= cp.returncode == 0
            say(f"  {mark} {src.name:>7} → ping {fqdn:22} → {resolved:12} "
                f"{' '.join(reply[0].split()[-2:]) if reply else cp.stderr.strip()}")
    return ok


def show_tour(lab, nodes):
    a = nodes[0]
    meshctl = meshlab.binary("meshctl")
    say(f"""
What you just saw
  • meshd-control ran in its own namespace and handed out one auth key;
  • three meshd daemons joined with it (AuthKeyFile= in meshd.conf), got a
    name and a stable address from 100.64.0.0/10 and built WireGuard
    tunnels (userspace wireguard-go) straight to each other;
  • each one told the harness READY=1 (as it tells systemd) only once a
    peer answered a probe through its tunnel, or when it had no peers yet;
    `meshctl ping` sends that probe, by name;
  • plain `ping bravo.mesh.internal` worked because libnss_mesh (hosts:
    files mesh dns) answers mesh names from meshd's /run/meshd/hosts.

Poke around (as root, while this is up):
  ip netns exec {a.ns.name} {meshctl} --socket {a.socket} status
  ip netns exec {a.ns.name} {meshctl} --socket {a.socket} peers
  ip netns exec {a.ns.name} wg show {a.interface}
  ip netns exec {a.ns.name} ping -c 3 {nodes[1].status()['ipv4']}
  less {a.log}
  cat {a.config}""")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keep", action="store_true",
                    help="keep the namespaces up until Ctrl-C, even without a terminal")
    args = ap.parse_args()

    problem = meshlab.netns_usable()
    if problem:
        sys.exit(f"tools/demo: {problem}")
    try:
        for name in ("meshd-control", "meshd", "meshctl"):
            meshlab.binary(name)
        if not meshlab.NSS_LIBRARY.exists():
            raise FileNotFoundError(f"{meshlab.NSS_LIBRARY} is missing: build first")
    except FileNotFoundError as e:
        sys.exit(f"tools/demo: {e}")
    meshlab.sweep_stale()
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    workdir = Path(tempfile.mkdtemp(prefix="meshd-demo-"))
    lab = meshlab.Lab(workdir)
    failed = True
    try:
        t0 = time.monotonic()
        say("starting the control server (meshd-control init + serve)…")
        control = lab.add_control()
        key = control.authkey(reusable=True)
        say(f"auth key created; a machine could join with:\n  {key.up_command}")
        nodes = [lab.add_node(n, authkey=key) for n in NAMES]
        say(f"starting meshd on {', '.join(NAMES)}…")
        for n in nodes:
            n.start()
        for n in nodes:
            r = n.wait_ready(60)
            say(f"  {n.name}: READY=1 after {r.after_start:.1f} s  ({r.status})")
        # READY (policy any) means one peer answers; the tour pings them all.
        for n in nodes:
            meshlab.wait_until(lambda: n.status().get("peers_reachable") == len(nodes) - 1, 30,
                               what=f"{n.name} reaching all its peers")
        failed = not show_mesh(lab, control, nodes)
        say(f"\nmesh up in {time.monotonic() - t0:.1f} s")
        show_tour(lab, nodes)
        if args.keep:
            say("\n--keep: up until Ctrl-C.")
            while True:
                signal.pause()
        elif sys.stdin.isatty():
            input("\nPress Enter to tear everything down. ")
        else:
            say("\nno terminal: tearing down now (use --keep to keep it up).")
    except KeyboardInterrupt:
        say("\ninterrupted.")
    except Exception as e:
        say(f"\ntools/demo: FAILED: {e}\n\n{lab.log_tails(25)}")
    finally:
        lab.close()
        if failed:
            say(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        say("cleaned up: namespaces, daemons and wireguard-go are gone.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

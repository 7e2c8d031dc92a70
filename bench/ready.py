#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Time from starting meshd to READY=1 with a cached netmap and a LAN peer.

One Lab: the control server (with its hub) and nodes alpha and bravo on
the same bridge (a LAN). Both join; bravo stays up for the whole run.
alpha is stopped and started again, as `systemctl restart meshd` would
(KeepInterface=no: the interface and its wireguard-go go away and come
back), and the time from exec (`ip netns exec NS meshd …`) to READY=1 on
a NOTIFY_SOCKET this script owns is taken, Policy=any. READY=1 means a
peer answered a probe through the tunnel (docs/architecture.md).

  control down  the control server is stopped first: alpha has only its
                cache (nothing it could wait for)
  control up    the control server runs: alpha applies its cache at once
                and long-polls beside it (READY=1 does not wait for it)

Anchor: the same thing done by hand with plain wireguard-go between the
same namespaces: `wireguard-go IF && wg setconf IF FILE && ip addr add …
&& ip link set IF up && ping -c 1 PEER` in alpha's namespace, the peer a
plain wireguard-go already up in bravo's namespace, from exec of the
script to ping's exit. That is the least any wireguard-go based tool must
do to prove the tunnel: start the backend, configure it, handshake, one
round trip. Medians of --runs runs each; every READY=1 must say "Online"
(a degraded READY=1 after the online timeout counts as a failure).
Target (issue 7): < 200 ms with a cached netmap and a LAN peer.

    sudo /usr/bin/python3 bench/ready.py [--runs 5] [--json FILE]
Binaries from MESHLAB_BUILD_DIR (default build/).
"""

import argparse
import os
import subprocess
import time
from pathlib import Path

import benchlib
from benchlib import meshlab

ANCHOR_PORT = 51820
ANCHOR_A, ANCHOR_B = "100.127.255.1", "100.127.255.2"     # mesh range, used by no node here


def wg_keypair(ns):
    private = ns.exec("wg", "genkey", check=True).stdout.strip()
    public = ns.exec("wg", "pubkey", input=private + "\n", check=True).stdout.strip()
    return private, public


class Anchor:
    """Plain wireguard-go: bravo's side stays up, alpha's is created per run."""

    def __init__(self, lab, alpha, bravo):
        self.lab, self.alpha, self.bravo = lab, alpha, bravo
        self.if_a, self.if_b = f"m{lab.rid}x", f"m{lab.rid}y"
        priv_a, self.pub_a = wg_keypair(alpha.ns)
        priv_b, pub_b = wg_keypair(bravo.ns)
        self.conf_a = lab.dir / "anchor-a.conf"
        self.conf_a.write_text(f"[Interface]\nPrivateKey = {priv_a}\nListenPort = {ANCHOR_PORT}\n\n"
                               f"[Peer]\nPublicKey = {pub_b}\nAllowedIPs = {ANCHOR_B}/32\n"
                               f"Endpoint = {bravo.address}:{ANCHOR_PORT}\n")
        conf_b = lab.dir / "anchor-b.conf"
        conf_b.write_text(f"[Interface]\nPrivateKey = {priv_b}\nListenPort = {ANCHOR_PORT}\n\n"
                          f"[Peer]\nPublicKey = {self.pub_a}\nAllowedIPs = {ANCHOR_A}/32\n"
                          f"Endpoint = {alpha.address}:{ANCHOR_PORT}\n")
        for f in (self.conf_a, conf_b):
            f.chmod(0o600)
        ns = bravo.ns
        self.proc_b = ns.popen(["wireguard-go", "-f", self.if_b], log=lab.dir / "anchor-b.log")
        meshlab.wait_until(lambda: ns.exec("wg", "show", self.if_b).returncode == 0, 10,
                           what=f"wireguard-go {self.if_b}")
        ns.exec("wg", "setconf", self.if_b, conf_b, check=True)
        ns.ip("addr", "add", ANCHOR_B, "peer", ANCHOR_A, "dev", self.if_b)
        ns.ip("link", "set", self.if_b, "up")

    def run_once(self) -> float:
        script = (f"wireguard-go {self.if_a} && wg setconf {self.if_a} {self.conf_a} && "
                  f"ip addr add {ANCHOR_A} peer {ANCHOR_B} dev {self.if_a} && "
                  f"ip link set {self.if_a} up && ping -n -q -c 1 -W 5 {ANCHOR_B} >/dev/null")
        t0 = time.monotonic()
        cp = subprocess.run(["ip", "netns", "exec", self.alpha.ns.name, "sh", "-c", script],
                            capture_output=True, text=True)
        t = time.monotonic() - t0
        # wireguard-go (daemonised) exits when its tun goes away
        self.alpha.ns.ip("link", "del", self.if_a, check=False)
        meshlab.wait_until(lambda: not (meshlab.WG_SOCKET_DIR / f"{self.if_a}.sock").exists(), 10,
                           what=f"{self.if_a}'s wireguard-go to exit")
        if cp.returncode != 0:
            raise RuntimeError(f"anchor failed ({cp.returncode}): {cp.stdout.strip()} {cp.stderr.strip()}")
        return t

    def close(self):
        self.bravo.ns.ip("link", "del", self.if_b, check=False)
        meshlab._kill_pids([self.proc_b.pid], grace=3)
        meshlab._remove_wg_socket(self.if_b)


def restart_to_ready(node) -> float:
    node.stop()
    node.start()
    ready = node.wait_ready(30)
    if not ready.status.startswith("Online"):
        raise RuntimeError(f"{node.name}: READY=1 came degraded: {ready.status!r}")
    return ready.after_start


def run(a, workdir: Path) -> list:
    os.environ["MESHD_LOG_LEVEL"] = "info"
    with meshlab.Lab(workdir) as lab:
        control = lab.add_control()
        key = control.authkey(reusable=True)
        alpha = lab.add_node("alpha", authkey=key)
        bravo = lab.add_node("bravo", authkey=key)
        for n in (alpha, bravo):
            n.start()
        for n in (alpha, bravo):
            n.wait_ready(60)
        meshlab.wait_until(lambda: alpha.status().get("peers_total") == 1, 30, what="alpha sees bravo")

        anchor = Anchor(lab, alpha, bravo)
        up, down, anchor_times = [], [], []
        try:
            for i in range(a.runs):
                up.append(restart_to_ready(alpha))
                alpha.stop()
                anchor_times.append(anchor.run_once())
                print(f"run {i + 1}: control up {up[-1] * 1000:.0f} ms, anchor {anchor_times[-1] * 1000:.0f} ms",
                      flush=True)
            control.stop()
            for i in range(a.runs):
                down.append(restart_to_ready(alpha))
                alpha.stop()
                anchor_times.append(anchor.run_once())
                print(f"run {i + 1}: control down {down[-1] * 1000:.0f} ms, "
                      f"anchor {anchor_times[-1] * 1000:.0f} ms", flush=True)
        finally:
            anchor.close()

    anchor_m = benchlib.median(anchor_times) * 1000
    anchor_label = "plain wireguard-go pair: start, `wg setconf`, address, link up, first ping reply"
    rows = []
    for label, times in (("control server unreachable (stopped)", down), ("control server reachable", up)):
        m = benchlib.median(times) * 1000
        rows.append(benchlib.row(
            "ready", f"exec → READY=1, cached netmap, LAN peer up, {label}", m, "ms",
            anchor=anchor_label, anchor_value=anchor_m, target="< 200 ms", met=m < 200,
            runs=[round(x * 1000, 1) for x in times],
            note=(f"median of {a.runs}; Policy=any, READY=1 = a probe answered through the tunnel; "
                  f"restart removes and re-creates the interface (wireguard-go started by meshd); "
                  f"anchor median of {len(anchor_times)} runs, interleaved")))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", help="write the rows here (for bench/report.py)")
    a = ap.parse_args()
    benchlib.run_bench("ready", run, a)


if __name__ == "__main__":
    main()

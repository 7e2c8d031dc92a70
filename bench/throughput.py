#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""TCP throughput through meshd's tunnel vs wireguard-go, tinc and nebula.

One Lab: two namespaces, alpha and bravo, each with a veth into the same
bridge (192.0.2.10 and .11), and the control server (no hub) that meshd
needs to join. Each contender in turn, alone (the others are stopped),
carries `iperf3 -c BRAVO-TUNNEL-ADDRESS -t SECONDS -O 1` (one TCP stream,
the first second omitted) from alpha to an iperf3 server in bravo:

  meshd          meshd on both nodes, userspace backend (wireguard-go
                 started by meshd), iperf3 to bravo's mesh IPv4
  wireguard-go   plain wireguard-go on both sides, configured with `wg
                 setconf` (the anchor: the same data path without meshd)
  tinc           tincd 1.0 (Debian's tinc), router mode, its default
                 cipher and digest (Blowfish-CBC, HMAC-SHA1), RSA-2048 keys
  nebula         nebula (Debian's), a CA and two certificates from
                 nebula-cert, static host map, no lighthouse, allow-all
                 firewall, default cipher (AES-256-GCM) and tun MTU
  veth           no tunnel at all: the ceiling of this machine's path

Every contender keeps its default MTU. --rounds rounds, contenders
interleaved in each; the figure is the median Mbit/s, the ratio is against
plain wireguard-go in the same run (higher is better). No target.

    sudo /usr/bin/python3 bench/throughput.py [--seconds 8] [--rounds 2] [--json FILE]
Binaries from MESHLAB_BUILD_DIR (default build/); iperf3, tinc, nebula and
wireguard-go from Debian (tools/bench installs them).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import benchlib
from benchlib import meshlab

IPERF_PORT = 5201
WG_A, WG_B = "100.127.1.1", "100.127.1.2"
TINC_A, TINC_B = "100.127.2.1", "100.127.2.2"
NEBULA_A, NEBULA_B = "100.127.3.1", "100.127.3.2"
WG_PORT, NEBULA_PORT = 51820, 4242


def ping_until(ns, address, timeout=30):
    meshlab.wait_until(lambda: ns.exec("ping", "-n", "-q", "-c", "1", "-W", "1", address).returncode == 0,
                       timeout, interval=0.2, what=f"ping {address} from {ns.name}")


def iperf(alpha, bravo, address, seconds, log) -> float:
    """Mbit/s received by bravo's iperf3 server from alpha."""
    server = bravo.ns.popen(["iperf3", "-s", "-1", "-B", address, "-p", IPERF_PORT], log=log)
    try:
        meshlab.wait_until(lambda: f":{IPERF_PORT} " in bravo.ns.exec("ss", "-Htln").stdout, 10,
                           interval=0.05, what="iperf3 server listening")
        cp = alpha.ns.exec("iperf3", "-c", address, "-p", IPERF_PORT, "-t", seconds, "-O", "1", "-J",
                           timeout=seconds + 60)
        if cp.returncode != 0:
            raise RuntimeError(f"iperf3 -c {address}: {cp.stdout[-800:]} {cp.stderr[-800:]}")
        data = json.loads(cp.stdout)
        return data["end"]["sum_received"]["bits_per_second"] / 1e6
    finally:
        meshlab._kill_pids([server.pid], grace=2)


class Contender:
    name = ""

    def __init__(self, lab, alpha, bravo):
        self.lab, self.alpha, self.bravo = lab, alpha, bravo
        self.dir = lab.dir / self.name
        self.dir.mkdir(exist_ok=True)
        self.procs = []

    def up(self) -> str:
        """Starts it; returns bravo's tunnel address once it answers ping."""
        raise NotImplementedError

    def down(self):
        for ns, p in self.procs:
            meshlab._kill_pids([p.pid], grace=3)
        self.procs = []


class Veth(Contender):
    name = "veth"

    def up(self):
        return self.bravo.address


class Meshd(Contender):
    name = "meshd"

    def up(self):
        for n in (self.alpha, self.bravo):
            n.start()
        for n in (self.alpha, self.bravo):
            n.wait_ready(60)
        address = self.bravo.status()["ipv4"]
        ping_until(self.alpha.ns, address)
        return address

    def down(self):
        for n in (self.alpha, self.bravo):
            n.stop()


class WireguardGo(Contender):
    name = "wireguard-go"

    def __init__(self, *args):
        super().__init__(*args)
        rid = self.lab.rid
        self.sides = [(self.alpha, f"m{rid}x", WG_A), (self.bravo, f"m{rid}y", WG_B)]
        keys = []
        for node, _ifname, _addr in self.sides:
            private = node.ns.exec("wg", "genkey", check=True).stdout.strip()
            public = node.ns.exec("wg", "pubkey", input=private + "\n", check=True).stdout.strip()
            keys.append((private, public))
        for i, (node, ifname, _addr) in enumerate(self.sides):
            other_node, _other_if, other_addr = self.sides[1 - i]
            conf = self.dir / f"{ifname}.conf"
            conf.write_text(f"[Interface]\nPrivateKey = {keys[i][0]}\nListenPort = {WG_PORT}\n\n"
                            f"[Peer]\nPublicKey = {keys[1 - i][1]}\nAllowedIPs = {other_addr}/32\n"
                            f"Endpoint = {other_node.address}:{WG_PORT}\n")
            conf.chmod(0o600)

    def up(self):
        for i, (node, ifname, addr) in enumerate(self.sides):
            ns = node.ns
            self.procs.append((ns, ns.popen(["wireguard-go", "-f", ifname], log=self.dir / f"{ifname}.log")))
            meshlab.wait_until(lambda: ns.exec("wg", "show", ifname).returncode == 0, 10,
                               what=f"wireguard-go {ifname}")
            ns.exec("wg", "setconf", ifname, self.dir / f"{ifname}.conf", check=True)
            ns.ip("addr", "add", addr, "peer", self.sides[1 - i][2], "dev", ifname)
            ns.ip("link", "set", ifname, "up")
        ping_until(self.alpha.ns, WG_B)
        return WG_B

    def down(self):
        for node, ifname, _addr in self.sides:
            node.ns.ip("link", "del", ifname, check=False)
        super().down()
        for _node, ifname, _addr in self.sides:
            meshlab._remove_wg_socket(ifname)


class Tinc(Contender):
    name = "tinc"

    def __init__(self, *args):
        super().__init__(*args)
        rid = self.lab.rid
        self.sides = [(self.alpha, f"t{rid}a", TINC_A), (self.bravo, f"t{rid}b", TINC_B)]
        for i, (node, ifname, addr) in enumerate(self.sides):
            d = self.dir / node.name
            (d / "hosts").mkdir(parents=True)
            conf = [f"Name = {node.name}", f"Interface = {ifname}", "AddressFamily = ipv4"]
            if i == 0:
                conf.append(f"ConnectTo = {self.bravo.name}")
            (d / "tinc.conf").write_text("\n".join(conf) + "\n")
            (d / "hosts" / node.name).write_text(f"Address = {node.address}\nSubnet = {addr}/32\n")
            up = d / "tinc-up"
            up.write_text(f"#!/bin/sh\nip addr add {addr} peer {self.sides[1 - i][2]} dev $INTERFACE\n"
                          f"ip link set $INTERFACE up\n")
            up.chmod(0o755)
            cp = subprocess.run(["tincd", "-c", str(d), "-K2048"], stdin=subprocess.DEVNULL,
                                capture_output=True, text=True)
            if cp.returncode != 0:
                raise RuntimeError(f"tincd -K: {cp.stderr.strip()}")
        for i, (node, _ifname, _addr) in enumerate(self.sides):
            other = self.sides[1 - i][0]
            shutil.copy(self.dir / node.name / "hosts" / node.name, self.dir / other.name / "hosts" / node.name)

    def up(self):
        for node, _ifname, _addr in self.sides:
            d = self.dir / node.name
            self.procs.append((node.ns, node.ns.popen(
                ["tincd", "-c", d, "-D", f"--pidfile={d / 'tinc.pid'}"], log=d / "tincd.log")))
        ping_until(self.alpha.ns, TINC_B)
        return TINC_B


class Nebula(Contender):
    name = "nebula"

    def __init__(self, *args):
        super().__init__(*args)
        d = self.dir
        rid = self.lab.rid
        benchlib.run_quiet(["nebula-cert", "ca", "-name", f"bench-{rid}", "-out-crt", d / "ca.crt",
                            "-out-key", d / "ca.key"], check=True)
        self.sides = [(self.alpha, f"n{rid}a", NEBULA_A), (self.bravo, f"n{rid}b", NEBULA_B)]
        for i, (node, ifname, addr) in enumerate(self.sides):
            other, _oif, other_addr = self.sides[1 - i]
            benchlib.run_quiet(["nebula-cert", "sign", "-ca-crt", d / "ca.crt", "-ca-key", d / "ca.key",
                                "-name", node.name, "-ip", f"{addr}/24", "-out-crt", d / f"{node.name}.crt",
                                "-out-key", d / f"{node.name}.key"], check=True)
            (d / f"{node.name}.yml").write_text(f"""\
pki:
  ca: {d / 'ca.crt'}
  cert: {d / f'{node.name}.crt'}
  key: {d / f'{node.name}.key'}
static_host_map:
  "{other_addr}": ["{other.address}:{NEBULA_PORT}"]
lighthouse:
  am_lighthouse: false
  hosts: []
listen:
  host: 0.0.0.0
  port: {NEBULA_PORT}
punchy:
  punch: false
tun:
  dev: {ifname}
logging:
  level: info
firewall:
  outbound:
    - port: any
      proto: any
      host: any
  inbound:
    - port: any
      proto: any
      host: any
""")

    def up(self):
        for node, _ifname, _addr in self.sides:
            self.procs.append((node.ns, node.ns.popen(["nebula", "-config", self.dir / f"{node.name}.yml"],
                                                      log=self.dir / f"{node.name}.log")))
        ping_until(self.alpha.ns, NEBULA_B)
        return NEBULA_B


CONTENDERS = {"meshd": Meshd, "wireguard-go": WireguardGo, "tinc": Tinc, "nebula": Nebula, "veth": Veth}


def run(a, workdir: Path) -> list:
    os.environ["MESHD_LOG_LEVEL"] = "info"
    results = {name: [] for name in a.only}
    with meshlab.Lab(workdir) as lab:
        control = lab.add_control(hub=False)
        key = control.authkey(reusable=True)
        alpha = lab.add_node("alpha", authkey=key)
        bravo = lab.add_node("bravo", authkey=key)
        for n in (alpha, bravo):
            n.start()
        for n in (alpha, bravo):
            n.wait_ready(60)            # joined; each round starts them again from their cache
        for n in (alpha, bravo):
            n.stop()
        contenders = [CONTENDERS[name](lab, alpha, bravo) for name in a.only]
        for r in range(a.rounds):
            for c in contenders:
                try:
                    address = c.up()
                    mbit = iperf(alpha, bravo, address, a.seconds, c.dir / f"iperf3-{r}.log")
                finally:
                    c.down()
                results[c.name].append(mbit)
                print(f"round {r + 1}: {c.name} {mbit:.0f} Mbit/s", flush=True)

    anchor = benchlib.median(results.get("wireguard-go", []))
    rows = []
    labels = {
        "meshd": "meshd mesh (userspace backend: wireguard-go started by meshd)",
        "wireguard-go": "plain wireguard-go pair configured with `wg setconf`",
        "tinc": "tinc 1.0 (router mode, default Blowfish-CBC + HMAC-SHA1)",
        "nebula": "nebula (default AES-256-GCM, static host map)",
        "veth": "no tunnel (veth through the bridge): the ceiling",
    }
    for name in a.only:
        m = benchlib.median(results[name])
        rows.append(benchlib.row(
            "throughput", f"iperf3 TCP through {labels[name]}", m, "Mbit/s",
            anchor="plain wireguard-go, same run" if name != "wireguard-go" and anchor else None,
            anchor_value=anchor if name != "wireguard-go" else None, higher_is_better=True,
            runs=[round(x) for x in results[name]],
            note=f"median of {a.rounds} rounds of {a.seconds} s (+1 s omitted), one TCP stream, "
                 f"alpha → bravo over veth + bridge"))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", default="meshd,wireguard-go,tinc,nebula,veth",
                    help="contenders, comma-separated")
    ap.add_argument("--json", help="write the rows here (for bench/report.py)")
    a = ap.parse_args()
    a.only = [x for x in a.only.split(",") if x]
    unknown = [x for x in a.only if x not in CONTENDERS]
    if unknown:
        sys.exit(f"bench/throughput.py: unknown contender(s) {unknown}; known: {sorted(CONTENDERS)}")
    missing = [b for b in ("iperf3", "tincd", "nebula", "nebula-cert", "wireguard-go", "wg")
               if shutil.which(b) is None]
    if missing:
        sys.exit(f"bench/throughput.py: {', '.join(missing)} not installed (tools/bench installs them)")
    benchlib.run_bench("throughput", run, a)


if __name__ == "__main__":
    main()

# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 12, Done-when item 5: the TLS relay (docs/protocol.md, "GET
/v1/relay") on the server side. Bad input on a relay stream (garbage
frames, oversized frames, another node's key, slow readers) closes that
stream only, with a clear log line, and never blocks other nodes.

The node side of the relay lives in meshd; here a Python shuttle plays it:
a wireguard-go device in a namespace of its own, configured with a
registered node's key and the hub as its one peer at a loopback UDP port
where the shuttle listens, and the shuttle carrying those datagrams over
the relay stream (and back). "Reaching the hub" is a probe (MSHP to
100.64.0.1:41642, which the hub answers to members; ICMP to the hub is not
a hub service, its firewall drops it)."""

import base64
import json
import os
import select
import socket
import ssl
import struct
import threading
import time

import pytest

import meshlab
from meshlab import wait_until

HUB_V4 = "100.64.0.1"
PROBE_PORT = 41642
FRAME_MAX = 9216
# the relay's own TLS port (serve --relay-port, default 443), which nodes use
# when the netmap's hub has "relay_port"; control.port is the API port,
# whose upgrade stays for old nodes
RELAY_PORT = 443


def log_lines(control, pattern):
    import re
    rx = re.compile(pattern)
    return [line for line in control.log.read_text(errors="replace").splitlines() if rx.search(line)]


# ---------------------------------------------------------------- the client

class Relay:
    """One GET /v1/relay from namespace ns: status, headers and body of the
    reply; after a 101, frames both ways."""

    def __init__(self, ns, control, token, *, upgrade="meshd-relay/1", extra=b"", port=RELAY_PORT):
        self.sock = meshlab.tls_connect(ns, control.address, port)
        lines = [f"GET /v1/relay HTTP/1.1", f"Host: {control.address}:{port}"]
        if token is not None:
            lines.append(f"Authorization: Bearer {token}")
        if upgrade is not None:
            lines += ["Connection: Upgrade", f"Upgrade: {upgrade}"]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + extra)
        head = b""
        while b"\r\n\r\n" not in head:
            d = self.sock.recv(4096)
            if not d:
                raise ConnectionError(f"server closed during the reply: {head!r}")
            head += d
        head, self.buf = head.split(b"\r\n\r\n", 1)
        status_line, *hdrs = head.decode().split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in hdrs)}
        self.body = b""
        if self.status != 101:
            n = int(self.headers.get("content-length", "0"))
            while len(self.buf) < n:
                self.buf += self.sock.recv(4096)
            self.body = self.buf[:n]

    def error(self) -> str:
        return json.loads(self.body)["error"]

    def send_frame(self, payload: bytes):
        self.sock.sendall(struct.pack("!H", len(payload)) + payload)

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def closed_by_server(self, timeout) -> bool:
        """Reads (and drops) what comes until end-of-stream: True when the
        server closed within timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                d = self.sock.recv(65536)
            except (TimeoutError, socket.timeout):
                return False
            except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
                return True
            if not d:
                return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Shuttle(threading.Thread):
    """Carries a wireguard-go device's datagrams (from its loopback UDP
    socket) over a relay stream and back, the way meshd's relay client
    does. read_downlink=False: never reads the stream (a slow reader)."""

    def __init__(self, ns, relay: Relay):
        super().__init__(daemon=True)
        self.relay = relay
        self.udp = meshlab.netns_socket(ns, socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.wg_addr = None
        self.read_downlink = True
        self.stop = False
        self.eof = False
        self.up = self.down = 0
        self.buf = relay.buf

    def run(self):
        tls = self.relay.sock
        tls.setblocking(True)
        tls.settimeout(5)
        try:
            while not self.stop and not self.eof:
                watch = [self.udp] + ([tls] if self.read_downlink else [])
                if self.read_downlink and tls.pending():
                    readable = [tls]
                else:
                    readable, _, _ = select.select(watch, [], [], 0.1)
                if self.udp in readable:
                    d, self.wg_addr = self.udp.recvfrom(65536)
                    self.relay.send_frame(d)
                    self.up += 1
                if tls in readable:
                    d = tls.recv(65536)
                    if not d:
                        self.eof = True
                        break
                    self.buf += d
                    while len(self.buf) >= 2:
                        n = struct.unpack("!H", self.buf[:2])[0]
                        if len(self.buf) < 2 + n:
                            break
                        if self.wg_addr:
                            self.udp.sendto(self.buf[2:2 + n], self.wg_addr)
                        self.down += 1
                        self.buf = self.buf[2 + n:]
        except (OSError, ssl.SSLError):
            self.eof = True

    def close(self):
        self.stop = True
        self.join(5)
        self.udp.close()
        self.relay.close()


class RelayedDevice:
    """A WireGuard device (wireguard-go) with private key `private` and
    address `ipv4`, in a namespace of its own on the underlay, whose one
    peer is the hub at the loopback port of a Shuttle on a relay stream
    opened with token. Kill its UDP to anywhere but loopback, so nothing
    but the relay carries it."""

    _count = 0

    def __init__(self, lab, control, name, private, ipv4, token, hub_public, port=RELAY_PORT):
        RelayedDevice._count += 1
        n = RelayedDevice._count
        self.name = name
        self.ns = lab.add_host(name, f"{meshlab.UNDERLAY}.{200 + n}")
        self.ifname = f"m{lab.rid}{chr(ord('z') - n)}"      # never a node's letter
        self.ipv4 = ipv4
        env = dict(os.environ, WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD="1")
        self.proc = self.ns.popen(["wireguard-go", "-f", self.ifname], log=lab.dir / f"{name}-wg.log",
                                  env=env)
        sock = meshlab.WG_SOCKET_DIR / f"{self.ifname}.sock"
        wait_until(sock.exists, 10, what=f"{name}: wireguard-go socket")
        self.relay = Relay(self.ns, control, token, port=port)
        assert self.relay.status == 101, (self.relay.status, self.relay.body)
        self.shuttle = Shuttle(self.ns, self.relay)
        keyfile = lab.dir / f"{name}.key"
        keyfile.write_text(private + "\n")
        keyfile.chmod(0o600)
        self.ns.exec("wg", "set", self.ifname, "private-key", keyfile, "peer", hub_public,
                     "allowed-ips", f"{HUB_V4}/32", "endpoint", f"127.0.0.1:{self.shuttle.port}",
                     check=True)
        self.ns.ip("addr", "add", f"{ipv4}/32", "dev", self.ifname)
        self.ns.ip("link", "set", self.ifname, "up")
        self.ns.ip("route", "add", f"{HUB_V4}/32", "dev", self.ifname)
        self.ns.exec("nft", "-f", "-", check=True, input="""
            table inet meshlab {
                chain output {
                    type filter hook output priority 0;
                    oifname "eth0" meta l4proto udp drop
                }
            }""")
        self.shuttle.start()

    def probe_hub(self, timeout=1.0) -> bool:
        return probe_from(self.ns, timeout)

    def close(self):
        self.shuttle.close()
        self.proc.kill()
        self.proc.wait(5)


def probe_from(ns, timeout=1.0, count=1) -> bool:
    s = meshlab.netns_socket(ns, socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        for i in range(count):
            nonce = struct.unpack("!I", os.urandom(4))[0]
            try:
                s.sendto(b"MSHP" + bytes([1, 0, 0, 0]) + struct.pack("!I", nonce), (HUB_V4, PROBE_PORT))
                while True:
                    d, _ = s.recvfrom(64)
                    if d[:8] == b"MSHP" + bytes([2, 0, 0, 0]) and d[8:12] == struct.pack("!I", nonce):
                        return True
            except (TimeoutError, socket.timeout, OSError):
                continue
        return False
    finally:
        s.close()


# A node cut off from the hub stays cut off until the stream that starves
# it is closed (10 s without progress at least); a gap up to this long is
# a probe or two lost on a loaded machine, not that.
PROBER_GAP_S = 5.0


class Prober(threading.Thread):
    """A real meshd node probing the hub over UDP the whole time: the
    longest run of failed probes tells whether it was ever cut off."""

    def __init__(self, node):
        super().__init__(daemon=True)
        self.node, self.stop = node, False
        self.ok = self.failed = self.worst_gap = 0
        self._gap_start = None

    def run(self):
        while not self.stop:
            t = time.monotonic()
            if probe_from(self.node.ns, 1.0):
                self.ok += 1
                if self._gap_start is not None:
                    self.worst_gap = max(self.worst_gap, t - self._gap_start)
                    self._gap_start = None
            else:
                self.failed += 1
                self._gap_start = self._gap_start or t
            time.sleep(0.1)

    def finish(self):
        self.stop = True
        self.join(5)
        if self._gap_start is not None:
            self.worst_gap = max(self.worst_gap, time.monotonic() - self._gap_start)
        return self


# ---------------------------------------------------------------- fixtures

class Registered:
    def __init__(self, reply, private):
        data = reply.json()
        self.token = data["token"]
        self.name = data["name"]
        self.private = private
        self.ipv4 = data["netmap"]["self"]["ipv4"]
        self.public_key = data["netmap"]["self"]["public_key"]
        self.hub_public = data["netmap"]["hub"]["public_key"]


def register(api, control, key, hostname) -> Registered:
    public = meshlab.fake_public_key()
    reply = api.register(key, public, hostname)
    assert reply.status == 200, (reply.status, reply.body)
    return Registered(reply, meshlab.private_key_of(public))


@pytest.fixture
def relay_lab(lab, control):
    """The control server and its hub, a client namespace, one real meshd
    node (alpha) on UDP, and an API client."""
    client = lab.add_host("client", meshlab.CLIENT_ADDRESS)
    key = control.authkey(reusable=True)
    alpha = lab.add_node("alpha", authkey=key)
    alpha.start()
    alpha.wait_ready(30)
    api = meshlab.ControlApi(client, control)
    wait_until(lambda: probe_from(alpha.ns), 20, what="alpha reaches the hub over UDP")
    yield lab, control, client, key, alpha, api
    api.close()


def token_of(node) -> str:
    return json.loads((node.state_dir / "node.json").read_text())["token"]


# ---------------------------------------------------------------- the tests

def test_relay_carries_wireguard_to_the_hub(relay_lab):
    """Happy path: a WireGuard device whose only way to the hub is the
    relay stream (on the relay's own port, which the netmap announces)
    handshakes and reaches the hub's mesh address."""
    lab, control, client, key, alpha, api = relay_lab
    assert api.netmap(token_of(alpha)).json()["hub"]["relay_port"] == RELAY_PORT
    reg = register(api, control, key, "roamer")
    dev = RelayedDevice(lab, control, "roamer", reg.private, reg.ipv4, reg.token, reg.hub_public)
    try:
        assert log_lines(control, r"Relay stream of node roamer arrives on the relay port [0-9.]+:443 from")
        assert dev.relay.headers.get("upgrade") == "meshd-relay/1", dev.relay.headers
        assert "upgrade" in dev.relay.headers.get("connection", "").lower(), dev.relay.headers
        wait_until(lambda: dev.probe_hub(), 20, what="probe through the relay")
        for _ in range(20):
            assert dev.probe_hub(2.0), "a probe through the relay went unanswered"
        assert dev.shuttle.up > 0 and dev.shuttle.down > 0
        lines = log_lines(control, r"Relay stream of node roamer open, the hub sees it at 127\.0\.0\.1:\d+")
        assert len(lines) == 1, lines
        # the hub sees it on loopback (and reads its peers every second),
        # and never publishes that as roamer's observed endpoint
        wait_until(lambda: "127.0.0.1:" in hub_peers(control).get(reg.public_key, ""), 20,
                   what="the hub sees roamer on loopback")
        # a negative, watched over a window: a read of the hub's peers
        # that publishes nothing leaves no trace, so give its once-a-second
        # poll three rounds (slack for a loaded machine) to do the wrong thing
        time.sleep(3.0)
        netmap = api.netmap(token_of(alpha)).json()
        roamer = [p for p in netmap["peers"] if p["name"] == "roamer"]
        assert roamer and not any(e.startswith("127.") for e in roamer[0].get("endpoints", [])), roamer
        assert not log_lines(control, r"seen at 127\.")
    finally:
        dev.close()
    wait_until(lambda: log_lines(control, r"Relay stream of node roamer closed: connection closed by the node"),
               10, what="close line")


def test_relay_api_port_upgrade_still_works(relay_lab):
    """Compatibility: the upgrade on the API port (what nodes without
    relay_port in their netmap use) still carries WireGuard to the hub."""
    lab, control, client, key, alpha, api = relay_lab
    reg = register(api, control, key, "oldnode")
    dev = RelayedDevice(lab, control, "oldnode", reg.private, reg.ipv4, reg.token, reg.hub_public,
                        port=control.port)
    try:
        wait_until(lambda: dev.probe_hub(), 20, what="probe through the API port's relay")
        assert dev.probe_hub(2.0)
        assert not log_lines(control, r"Relay stream of node oldnode arrives on the relay port")
        assert log_lines(control, r"Relay stream of node oldnode open")
    finally:
        dev.close()
    wait_until(lambda: log_lines(control, r"Relay stream of node oldnode closed: connection closed by the node"),
               10, what="close line")


@pytest.mark.parametrize("where", ["relay_port", "api_port"])
def test_attack_relay_refused_requests(relay_lab, where):
    """401 unknown or missing token, 403 removed or expired node, 400 no or
    another Upgrade: one line each, and no stream; the same answers on the
    relay's own port and on the API port (one admission function)."""
    lab, control, client, key, alpha, api = relay_lab
    port = RELAY_PORT if where == "relay_port" else control.port
    r = Relay(client, control, "mshn_not-a-token", port=port)
    assert (r.status, r.error()) == (401, "unknown node token")
    r = Relay(client, control, None, port=port)
    assert (r.status, r.error()) == (401, "missing node token")
    good = register(api, control, key, "good")
    r = Relay(client, control, good.token, upgrade=None, port=port)
    assert (r.status, r.error()) == (400, "Upgrade: expected meshd-relay/1")
    r = Relay(client, control, good.token, upgrade="websocket", port=port)
    assert (r.status, r.error()) == (400, "Upgrade: expected meshd-relay/1")

    gone = register(api, control, key, "gone")
    control.command("nodes", "expire", "gone")
    r = Relay(client, control, gone.token, port=port)
    assert (r.status, r.error()) == (403, "node gone expired, join again")
    control.remove_node("gone")
    r = Relay(client, control, gone.token, port=port)
    assert (r.status, r.error()) == (403, "node removed")

    r = Relay(client, control, good.token, port=port)
    assert r.status == 101
    assert r.headers.get("upgrade") == "meshd-relay/1", r.headers
    r.close()
    assert not log_lines(control, r"Relay stream of node gone")


def test_attack_relay_bad_frames_close_that_stream_only(relay_lab):
    """Garbage, an empty frame, a declared length past 9216 and a payload
    that is not a WireGuard message: each closes its stream with a line
    naming the node and the reason; a relayed device and alpha on UDP keep
    reaching the hub the whole time."""
    lab, control, client, key, alpha, api = relay_lab
    reg = register(api, control, key, "steady")
    dev = RelayedDevice(lab, control, "steady", reg.private, reg.ipv4, reg.token, reg.hub_public)
    wait_until(lambda: dev.probe_hub(), 20, what="probe through the relay")
    prober = Prober(alpha)
    prober.start()
    cases = {
        "garbage": (b"GET / HTTP/1.1\r\n\r\n", r"frame larger than 9216 bytes \(declared length 18245\)"),
        "empty": (b"\x00\x00", r"empty frame \(declared length 0\)"),
        "oversized": (struct.pack("!H", FRAME_MAX + 1) + b"\x04" * 100,
                      r"frame larger than 9216 bytes \(declared length 9217\)"),
        "notwg": (struct.pack("!H", 48) + b"\x05\x00\x00\x00" + bytes(44),
                  r"frame is not a WireGuard message \(48 bytes, type 5\)"),
        "shortinit": (struct.pack("!H", 100) + b"\x01\x00\x00\x00" + bytes(96),
                      r"frame is not a WireGuard message \(100 bytes, type 1\)"),
    }
    try:
        for name, (data, reason) in cases.items():
            bad = register(api, control, key, f"bad-{name}")
            r = Relay(client, control, bad.token)
            assert r.status == 101
            # a valid transport-sized frame first: the stream works until the bad one
            r.send_frame(b"\x04\x00\x00\x00" + bytes(28))
            r.send_raw(data)
            assert r.closed_by_server(20), f"{name}: stream not closed"
            r.close()
            wait_until(lambda: log_lines(control, rf"Relay stream of node bad-{name} closed: {reason}\."), 20,
                       what=f"{name}: close line")
            assert len(log_lines(control, rf"Relay stream of node bad-{name} closed")) == 1
            assert dev.probe_hub(2.0), f"after {name}: the other stream stopped working"
        # the bytes sent with the request itself count as frames too
        bad = register(api, control, key, "bad-early")
        r = Relay(client, control, bad.token, extra=b"\x00\x00")
        assert r.status == 101 and r.closed_by_server(20)
        wait_until(lambda: log_lines(control, r"Relay stream of node bad-early closed: empty frame"), 20,
                   what="early close line")
    finally:
        prober.finish()
    assert not dev.shuttle.eof and dev.probe_hub(2.0)
    assert prober.ok > 0 and prober.worst_gap < PROBER_GAP_S, vars(prober)
    assert not log_lines(control, r"Relay stream of node steady closed")
    dev.close()


def test_attack_relay_another_nodes_packets(relay_lab):
    """A stream that carries alpha's WireGuard packets (a wireguard-go with
    alpha's private key, shuttled into bravo's stream): the hub, roaming,
    would send alpha's traffic to that stream. The stream is closed with a
    line naming both, alpha's hub entry is put back to its UDP endpoint, it
    is never published as a loopback address, and alpha reaches the hub."""
    lab, control, client, key, alpha, api = relay_lab
    bravo = register(api, control, key, "bravo")
    alpha_private = (alpha.state_dir / "private.key").read_text().strip()
    alpha_public = meshlab.public_from_private(alpha_private)
    # the hub has published where it sees alpha: that is where alpha's entry goes back to
    wait_until(lambda: log_lines(control, rf"Hub \S+: node \d+ seen at {alpha.address}:41641"), 10,
               what="alpha's observed endpoint")
    before = {n["name"]: n for n in control.nodes()}["alpha"]
    dev = RelayedDevice(lab, control, "thief", alpha_private, before["ipv4"], bravo.token, bravo.hub_public)
    try:
        # traffic makes the thief's wireguard-go handshake as alpha
        wait_until(lambda: (dev.probe_hub(0.2), dev.shuttle.eof)[1], 15, what="the thief's stream closed")
        assert dev.shuttle.eof and dev.shuttle.up > 0
        pattern = (rf"Relay stream of node bravo closed: it carried the packets of node "
                   rf"{alpha_public.replace('+', '[+]')} .*put back to {alpha.address}:41641\.")
        wait_until(lambda: log_lines(control, pattern), 20, what="close line naming both")
        assert len(log_lines(control, r"Relay stream of node bravo closed")) == 1
        hub = hub_peers(control)
        assert hub[alpha_public] == f"{alpha.address}:41641", hub
        wait_until(lambda: probe_from(alpha.ns, 1.0), 20, what="alpha reaches the hub again")
        after = {n["name"]: n for n in control.nodes()}["alpha"]
        assert "127.0.0.1" not in json.dumps(after), (before, after)
    finally:
        dev.close()


def hub_peers(control) -> dict:
    cp = control.ns.exec("wg", "show", control.hub_interface, "endpoints", check=True)
    return dict(line.split("\t") for line in cp.stdout.splitlines() if "\t" in line)


BLASTER = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.monotonic() + float(sys.argv[2])
data = bytes(1200)
while time.monotonic() < end:
    for _ in range(50):
        try:
            s.sendto(data, (sys.argv[1], 9))
        except OSError:
            pass
    time.sleep(0.005)
"""


def test_attack_relay_slow_reader(relay_lab):
    """A stream whose node never reads while the hub has lots to send to it
    (the control host blasts UDP at the node's mesh address): its queue is
    dropped past 256 KiB, and with no progress for 10 s the stream is
    closed; another relayed device and alpha keep reaching the hub."""
    lab, control, client, key, alpha, api = relay_lab
    reg = register(api, control, key, "steady")
    dev = RelayedDevice(lab, control, "steady", reg.private, reg.ipv4, reg.token, reg.hub_public)
    slow = register(api, control, key, "sloth")
    sloth = RelayedDevice(lab, control, "sloth", slow.private, slow.ipv4, slow.token, slow.hub_public)
    wait_until(lambda: dev.probe_hub() and sloth.probe_hub(), 20, what="both relayed devices reach the hub")
    sloth.shuttle.read_downlink = False
    prober = Prober(alpha)
    prober.start()
    blaster = control.ns.popen([meshlab.PYTHON, "-c", BLASTER, slow.ipv4, "40"], log=lab.dir / "blaster.log")
    start = time.monotonic()
    try:
        # the uplink goes on: only the node's reading stops
        stop = threading.Event()

        def keepalive():
            while not stop.is_set() and not sloth.shuttle.eof:
                sloth.probe_hub(0.2)
        threading.Thread(target=keepalive, daemon=True).start()
        wait_until(lambda: log_lines(control, r"Relay stream of node sloth closed: the node stopped reading"),
                   40, what="slow reader closed")
        took = time.monotonic() - start
        assert 10 <= took <= 30, took
        for _ in range(5):
            assert dev.probe_hub(2.0), "the other stream stopped working"
    finally:
        stop.set()
        blaster.kill()
        blaster.wait(5)
        prober.finish()
    assert prober.ok > 0 and prober.worst_gap < PROBER_GAP_S, vars(prober)
    assert not log_lines(control, r"Relay stream of node steady closed")
    line = log_lines(control, r"Relay stream of node sloth closed")
    assert len(line) == 1 and "datagrams dropped" in line[0], line
    dev.close()
    sloth.close()


def rule_packets(ns, table, chain, comment) -> int:
    listing = ns.exec("nft", "list", "chain", "inet", table, chain, check=True).stdout
    return sum(int(line.split("counter packets ")[1].split()[0]) for line in listing.splitlines()
               if f'comment "{comment}"' in line)


def initiation() -> bytes:
    """Shaped like a WireGuard handshake initiation (type 1, 148 bytes);
    the hub's wireguard-go drops it (no valid MAC), cheaply."""
    return b"\x01\x00\x00\x00" + os.urandom(144)


# shaped like a WireGuard data message (type 4, 32 + 16·n bytes), which
# the relay forwards without counting it against the handshake limit
MARKER = b"\x04\x00\x00\x00" + b"meshlab marker".ljust(60, b".")


def count_markers(ns):
    """A counter of MARKER datagrams reaching the hub on loopback, in a
    table of the test's own: the relay handles a stream's frames in order,
    so once the marker sent last is counted, every frame before it was
    forwarded or dropped."""
    ns.exec("nft", "-f", "-", check=True, input=f"""
        table inet meshlab_marker {{
            chain input {{
                type filter hook input priority -300;
                iifname "lo" udp length {8 + len(MARKER)} @th,64,8 4 counter comment "marker"
            }}
        }}""")
    return lambda: rule_packets(ns, "meshlab_marker", "input", "marker")


def test_attack_relay_handshakes_limited_per_stream(lab, control):
    """Every stream reaches the hub from 127.0.0.1: the hub firewall's
    per-source handshake limit (burst 100) would let one stream starve all
    others, so loopback is left to the relay, which limits each stream
    (burst 20, then 10 a second) and drops the rest without closing it."""
    client = lab.add_host("client", meshlab.CLIENT_ADDRESS)
    key = control.authkey(reusable=True)
    api = meshlab.ControlApi(client, control)
    table = f"meshd_hub_{control.hub_interface}"
    relayed = lambda: rule_packets(control.ns, table, "input", "TLS relay streams, limited per stream")
    flood = lambda: rule_packets(control.ns, table, "input", "handshake flood")
    streams = [Relay(client, control, register(api, control, key, f"n{i}").token) for i in range(8)]
    assert all(r.status == 101 for r in streams)
    before, dropped = relayed(), flood()

    # 8 streams × 20: more than the firewall's per-source burst, all within each stream's own
    for r in streams:
        r.send_raw(b"".join(struct.pack("!H", 148) + initiation() for _ in range(20)))
    wait_until(lambda: relayed() - before >= 160, 30, what="160 initiations at the hub")
    assert flood() == dropped

    # one stream flooding: its burst and rate reach the hub, the rest is dropped
    markers = count_markers(control.ns)
    before = relayed()
    start = time.monotonic()
    streams[0].send_raw(b"".join(struct.pack("!H", 148) + initiation() for _ in range(500)))
    streams[0].send_frame(MARKER)
    wait_until(lambda: markers() == 1, 30, what="the marker after the flood at the hub")
    passed = relayed() - before - 1
    assert passed <= 20 + 10 * (time.monotonic() - start + 1), passed
    assert not any(r.closed_by_server(0.2) for r in streams)
    assert not log_lines(control, r"Relay stream of node n\d closed")
    for r in streams:
        r.close()
    api.close()


def test_attack_relay_stream_limit_and_replacement(lab):
    """--relay-max-streams: past it 503 "too many relay streams"; a node's
    new stream replaces its old one (which is closed); --no-relay: 503."""
    control = lab.add_control(hub_args=["--relay-max-streams=1"])
    client = lab.add_host("client", meshlab.CLIENT_ADDRESS)
    key = control.authkey(reusable=True)
    api = meshlab.ControlApi(client, control)
    a, b = register(api, control, key, "one"), register(api, control, key, "two")
    first = Relay(client, control, a.token)
    assert first.status == 101
    r = Relay(client, control, b.token)
    assert (r.status, r.error()) == (503, "too many relay streams")
    second = Relay(client, control, a.token)
    assert second.status == 101
    assert first.closed_by_server(20)
    wait_until(lambda: log_lines(control, r"Relay stream of node one closed: replaced by a new stream"), 20,
               what="replaced line")
    second.close()
    wait_until(lambda: log_lines(control, r"Relay stream of node one closed: connection closed by the node"), 20,
               what="closed line")
    r = Relay(client, control, b.token)
    assert r.status == 101
    r.close()
    api.close()


def test_attack_relay_removed_node_loses_its_stream(lab, control):
    """A node removed (by another process) while its stream is open: the
    stream is closed within a second or two, with a line naming it."""
    client = lab.add_host("client", meshlab.CLIENT_ADDRESS)
    key = control.authkey(reusable=True)
    api = meshlab.ControlApi(client, control)
    a, b = register(api, control, key, "leaver"), register(api, control, key, "stayer")
    leaver, stayer = Relay(client, control, a.token), Relay(client, control, b.token)
    assert leaver.status == 101 and stayer.status == 101
    control.remove_node("leaver")
    assert leaver.closed_by_server(20)
    wait_until(lambda: log_lines(control, r"Relay stream of node leaver closed: node removed or expired\."), 20,
               what="removed line")
    assert not stayer.closed_by_server(1)
    assert not log_lines(control, r"Relay stream of node stayer closed")
    stayer.close()
    api.close()


def test_attack_relay_no_relay_option(lab):
    control = lab.add_control(hub_args=["--no-relay", "--no-udp-echo"])
    client = lab.add_host("client", meshlab.CLIENT_ADDRESS)
    key = control.authkey(reusable=True)
    api = meshlab.ControlApi(client, control)
    a = register(api, control, key, "one")
    r = Relay(client, control, a.token, port=control.port)
    assert (r.status, r.error()) == (503, "relay disabled")
    # no relay, no relay port, and none announced
    with pytest.raises(ConnectionRefusedError):
        meshlab.tls_connect(client, control.address, RELAY_PORT)
    assert "relay_port" not in api.netmap(a.token).json()["hub"]
    assert echo(client, control, echo_request(b"n" * 16)) is None
    api.close()


def echo_request(nonce: bytes, kind=1) -> bytes:
    return b"MSHE" + bytes([kind, 0, 0, 0]) + nonce


def echo(ns, control, data, timeout=1.0):
    s = meshlab.netns_socket(ns, socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(data, (control.address, control.port))
        d, addr = s.recvfrom(4096)
        assert addr == (control.address, control.port), addr
        return d
    except (TimeoutError, socket.timeout):
        return None
    finally:
        s.close()


def test_attack_relay_udp_echo(lab, control):
    """The UDP echo answers an exact request with the same 24 bytes, type
    2, from the server's address; nothing else; and no more than its rate
    however much comes."""
    client = lab.add_host("client", meshlab.CLIENT_ADDRESS)
    nonce = os.urandom(16)
    assert echo(client, control, echo_request(nonce)) == echo_request(nonce, 2)
    for bad in (echo_request(nonce)[:23], echo_request(nonce) + b"x", echo_request(nonce, 2),
                b"MSHX" + echo_request(nonce)[4:], echo_request(nonce)[:5] + b"\x01" + echo_request(nonce)[6:],
                echo_request(nonce) * 10, b""):
        assert echo(client, control, bad, 0.5) is None, bad

    # a flood gets at most the rate (200/s, burst 200) back
    s = meshlab.netns_socket(client, socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    start = time.monotonic()
    for i in range(2000):
        s.sendto(echo_request(struct.pack("!16s", i.to_bytes(16, "big"))), (control.address, control.port))
    sent_for = time.monotonic() - start
    s.settimeout(1.0)
    got = 0
    try:
        while True:
            d = s.recv(64)
            assert len(d) == 24
            got += 1
    except (TimeoutError, socket.timeout):
        pass
    s.close()
    assert 150 <= got <= 200 + 200 * (sent_for + 1.5), (got, sent_for)


# ------------------------------------------------ the relay's own listener

def raw_connect(ns, control, port=RELAY_PORT, timeout=15.0):
    s = meshlab.netns_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((control.address, port))
    return s


def closed_within(sock, timeout) -> float | None:
    """Seconds until the server closed sock (what it sent is dropped), or
    None when it stayed open for timeout."""
    start = time.monotonic()
    deadline = start + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            d = sock.recv(65536)
        except (TimeoutError, socket.timeout):
            return None
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return time.monotonic() - start
        if not d:
            return time.monotonic() - start
    return None


def test_attack_relay_listener_slow_loris(relay_lab):
    """On the relay port, a connection that never starts its TLS handshake,
    and one that sends only part of its request head, are each closed 10 s
    after the accept, with a line; a node arriving meanwhile is served."""
    lab, control, client, key, alpha, api = relay_lab
    silent = raw_connect(client, control)
    partial = meshlab.tls_connect(client, control.address, RELAY_PORT)
    partial.sendall(b"GET /v1/relay HTTP/1.1\r\nHost: x\r\n")
    opened = time.monotonic()
    good = register(api, control, key, "patient")
    r = Relay(client, control, good.token)
    assert r.status == 101
    t = closed_within(silent, 14)
    u = closed_within(partial, max(0.1, 14 - (time.monotonic() - opened)))
    assert t is not None and 8.5 <= time.monotonic() - opened <= 14, t
    assert u is not None, "the partial head was never cut"
    wait_until(lambda: len(log_lines(control, r"Relay connection from 192\.0\.2\.250:\d+ closed: "
                                              r"no complete request within 10 s")) == 2, 3, what="two lines")
    # the upgraded stream is no pending connection: the deadline spared it
    assert not r.closed_by_server(0.5)
    r.close()


def test_attack_relay_listener_head_limits(relay_lab):
    """A head over 8 KiB: 431 with one line; a head that is not HTTP/1.1:
    400; another path: 404; another method: 405. No stream in any case."""
    lab, control, client, key, alpha, api = relay_lab
    good = register(api, control, key, "big")

    def ask(head: bytes):
        s = meshlab.tls_connect(client, control.address, RELAY_PORT)
        s.sendall(head)
        data = b""
        while True:
            try:
                d = s.recv(65536)
            except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
                break
            if not d:
                break
            data += d
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), json.loads(body)["error"]

    huge = (f"GET /v1/relay HTTP/1.1\r\nAuthorization: Bearer {good.token}\r\nConnection: Upgrade\r\n"
            f"Upgrade: meshd-relay/1\r\nX-Padding: {'a' * 8200}\r\n\r\n").encode()
    assert ask(huge) == (431, "request head larger than 8 KiB")
    assert ask(b"GET /v1/relay HTTP/1.1\r\n  folded\r\n\r\n") == (400, "malformed request head")
    assert ask(b"GET /v1/relay\r\n\r\n") == (400, "malformed request head")
    assert ask(b"GET /v1/netmap HTTP/1.1\r\n\r\n") == (404, "no such endpoint")
    assert ask(b"POST /v1/relay HTTP/1.1\r\n\r\n") == (405, "method not allowed")
    upgrade_only = (f"GET /v1/relay HTTP/1.1\r\nAuthorization: Bearer {good.token}\r\n"
                    f"Upgrade: meshd-relay/1\r\n\r\n").encode()
    assert ask(upgrade_only) == (400, "Connection: expected Upgrade")
    assert not log_lines(control, r"Relay stream of node big")


def test_attack_relay_listener_pending_limit(relay_lab):
    """A stranger holding many connections on the relay port without a
    request gets no more than 16 at once from its address (the rest are
    closed at the accept); a node from another address still gets its
    stream at once, and the stranger's connections are cut after 10 s."""
    lab, control, client, key, alpha, api = relay_lab
    held = [raw_connect(client, control) for _ in range(16)]
    time.sleep(0.2)  # the server accepts them before the next ones come
    extra = [raw_connect(client, control) for _ in range(8)]
    for s in extra:
        assert closed_within(s, 2) is not None, "a 17th pending connection from one address was kept"
    for s in held:
        assert closed_within(s, 0.05) is None, "a held connection was closed early"
    node = lab.add_host("other", f"{meshlab.UNDERLAY}.249")
    good = register(api, control, key, "elsewhere")
    r = Relay(node, control, good.token)
    assert r.status == 101
    assert all(closed_within(s, 12) is not None for s in held)
    assert not r.closed_by_server(0.5)
    r.close()


def test_relay_port_unavailable_serve_goes_on(lab):
    """--relay-port naming a port that is taken (here the API's own): one
    warning naming address and port, serve goes on, netmaps announce no
    relay_port, and the API port's upgrade still opens streams. A bad
    --relay-port value is one line and a non-zero exit."""
    control = lab.add_control(hub_args=[f"--relay-port={meshlab.CONTROL_PORT}"])
    client = lab.add_host("client", meshlab.CLIENT_ADDRESS)
    key = control.authkey(reusable=True)
    api = meshlab.ControlApi(client, control)
    a = register(api, control, key, "one")
    lines = log_lines(control, rf"Failed to listen for the TLS relay on 192\.0\.2\.1:{meshlab.CONTROL_PORT} "
                               rf"\(--relay-port={meshlab.CONTROL_PORT}\): .*serving without it")
    assert len(lines) == 1, lines
    assert "relay_port" not in api.netmap(a.token).json()["hub"]
    r = Relay(client, control, a.token, port=control.port)
    assert r.status == 101
    r.close()
    api.close()

    bad = control.command("serve", "--relay-port=65536", check=False)
    assert bad.returncode != 0
    assert "Invalid --relay-port '65536', expected 0 … 65535." in bad.stderr, bad.stderr


def test_attack_relay_listener_pending_limit_all_addresses(relay_lab):
    """256 connections without a request from 16 addresses fill the relay
    port's pending slots: the next, from a 17th address, is closed at the
    accept; 10 s later the strangers are cut and a node gets its stream."""
    lab, control, client, key, alpha, api = relay_lab
    addresses = [f"{meshlab.UNDERLAY}.{230 + i}" for i in range(17)]
    for a in addresses:
        client.ip("addr", "add", f"{a}/24", "dev", "eth0")

    def connect_from(a):
        s = meshlab.netns_socket(client, socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(15)
        s.bind((a, 0))
        s.connect((control.address, RELAY_PORT))
        return s

    held = []
    try:
        for a in addresses[:16]:
            held += [connect_from(a) for _ in range(16)]
        time.sleep(0.3)  # the server accepts the 256 before the next comes
        late = connect_from(addresses[16])
        assert closed_within(late, 2) is not None, "a 257th pending connection was kept"
        late.close()
        good = register(api, control, key, "afterwards")
        assert all(closed_within(s, 12) is not None for s in held)
        r = Relay(client, control, good.token)
        assert r.status == 101
        r.close()
    finally:
        for s in held:
            s.close()

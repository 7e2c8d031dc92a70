# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 14 scenarios: mesh DNS for programs that do not use NSS.

Every node serves DNS on its own mesh addresses (port 53), from its
netmap; the hub serves the same on the hub's mesh address. A program asks
with `dig` (bind9-dnsutils) from another node's namespace, through the
tunnel. Names outside the mesh go to the resolvers of the node's
[DNS] ResolvConf= file: here one test resolver (a few lines of Python
below, on 192.0.2.53 of the underlay) that answers every A query with
192.0.2.99, so that a forwarded answer is told from any other.
"""

import re
import socket
import struct
import threading
import time

import meshlab
from meshlab import wait_until

UPSTREAM = f"{meshlab.UNDERLAY}.53"
UPSTREAM_ANSWER = "192.0.2.99"
HUB_V4 = "100.64.0.1"


class Upstream:
    """A resolver in its own namespace: every query gets one A record,
    UPSTREAM_ANSWER; the sources of the queries are kept."""

    def __init__(self, lab):
        self.ns = lab.add_host("dnsup", UPSTREAM)
        self.sock = meshlab.netns_socket(self.ns)
        self.sock.bind((UPSTREAM, 53))
        self.sock.settimeout(0.2)
        self.sources = []
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stopping:
            try:
                query, source = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            end = 12
            while end < len(query) and query[end] != 0:
                end += 1 + query[end]
            question = query[12:end + 5]
            reply = (query[:2] + b"\x81\x80" + b"\x00\x01\x00\x01\x00\x00\x00\x00" + question +
                     b"\xc0\x0c\x00\x01\x00\x01" + struct.pack(">IH", 60, 4) +
                     socket.inet_aton(UPSTREAM_ANSWER))
            self.sources.append(source[0])
            self.sock.sendto(reply, source)

    def close(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


def resolv_conf(lab):
    path = lab.dir / "resolv.conf"
    path.write_text(f"# the test's resolver\nnameserver {UPSTREAM}\n")
    return path


def dig(node, server, name, rtype="A", *options, port=53):
    """(status, [rdata...]) of `dig @server name rtype` run in node's
    namespace; status "no reply" when none came."""
    cp = node.exec("dig", f"@{server}", "-p", str(port), "+tries=1", "+time=3", "+noall", "+comments",
                   "+answer", *options, name, rtype, timeout=30)
    m = re.search(r"status: (\w+)", cp.stdout)
    if not m:
        return "no reply", []
    answers = [line.split()[-1] for line in cp.stdout.splitlines() if line.strip() and not line.startswith(";")]
    return m.group(1), answers


def start_mesh(lab, names=("alpha", "bravo"), *, dns=(), hub_args=()):
    """Control and nodes; dns: more [DNS] lines for every node."""
    path = resolv_conf(lab)
    control = lab.add_control(hub_args=["--resolv-conf", str(path), *hub_args])
    key = control.authkey(reusable=True)
    nodes = [lab.add_node(n, authkey=key) for n in names]
    for n in nodes:
        n.config.write_text(n.config.read_text() + f"\n[DNS]\nResolvConf={path}\n" + "".join(f"{d}\n" for d in dns))
        n.start()
    for n in nodes:
        n.wait_ready(30)
    return control, key, nodes


def test_node_answers_mesh_names_and_forwards_the_rest(lab):
    """bravo asks alpha's server: A, AAAA (any case), PTR of both address
    families, NXDOMAIN for a name nobody has, the same over TCP; junk gets
    FORMERR or nothing and the server answers on; example.test comes from
    the upstream resolver, asked by alpha; a node that joins later is
    answered within 10 s."""
    upstream = Upstream(lab)
    try:
        control, key, (alpha, bravo) = start_mesh(lab)
        a, b = alpha.status(), bravo.status()
        server = a["ipv4"]

        assert dig(bravo, server, "bravo.mesh.internal", "A") == ("NOERROR", [b["ipv4"]])
        assert dig(bravo, server, "ALPHA.Mesh.Internal", "A") == ("NOERROR", [a["ipv4"]])
        assert dig(bravo, server, "bravo.mesh.internal", "AAAA") == ("NOERROR", [b["ipv6"]])
        assert dig(bravo, a["ipv6"], "alpha.mesh.internal", "AAAA") == ("NOERROR", [a["ipv6"]])
        assert dig(bravo, server, b["ipv4"], "PTR", "-x") == ("NOERROR", ["bravo.mesh.internal."])
        assert dig(bravo, server, a["ipv6"], "PTR", "-x") == ("NOERROR", ["alpha.mesh.internal."])
        assert dig(bravo, server, "nobody.mesh.internal", "A") == ("NXDOMAIN", [])
        assert dig(bravo, server, "alpha.mesh.internal", "MX") == ("NOERROR", [])
        assert dig(bravo, server, "bravo.mesh.internal", "A", "+tcp") == ("NOERROR", [b["ipv4"]])
        assert dig(bravo, server, "nobody.mesh.internal", "A", "+tcp") == ("NXDOMAIN", [])

        # junk: a truncated question is FORMERR with its ID; shorter than a
        # header or a reply (QR set) gets nothing; the server answers on
        sock = meshlab.netns_socket(bravo.ns)
        sock.settimeout(2)
        try:
            sock.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3f\x61", (server, 53))
            reply, _ = sock.recvfrom(4096)
            assert reply[:2] == b"\x12\x34" and reply[2] & 0x80 and reply[3] & 0x0f == 1, reply
            for junk in (b"\x00", b"\xff" * 11, b"\x12\x34\x81\x80" + b"\x00" * 8, bytes(range(256)) * 2):
                sock.sendto(junk, (server, 53))
        finally:
            sock.close()
        assert dig(bravo, server, "alpha.mesh.internal", "A") == ("NOERROR", [a["ipv4"]])

        # forwarded, by alpha (its underlay address), with the upstream's answer
        assert dig(bravo, server, "example.test", "A") == ("NOERROR", [UPSTREAM_ANSWER])
        assert alpha.address in upstream.sources, upstream.sources
        assert dig(bravo, server, "example.test", "A", "+tcp") == ("NOERROR", [UPSTREAM_ANSWER])

        charlie = lab.add_node("charlie", authkey=key)
        charlie.start()
        charlie.wait_ready(30)
        c = charlie.status()
        wait_until(lambda: dig(bravo, server, "charlie.mesh.internal", "A") == ("NOERROR", [c["ipv4"]]), 10,
                   what="charlie in alpha's DNS")
    finally:
        upstream.close()


def test_hub_answers_and_nodes_answer_without_the_control_server(lab):
    """The hub answers mesh names and forwards the rest on its mesh address
    (the DNS= of device configs), reached from a node through the tunnel.
    With the control server stopped, alpha (restarted, so from its cached
    netmap) still answers mesh names."""
    upstream = Upstream(lab)
    try:
        control, _key, (alpha, bravo) = start_mesh(lab)
        a, b = alpha.status(), bravo.status()

        wait_until(lambda: dig(alpha, HUB_V4, "bravo.mesh.internal", "A") == ("NOERROR", [b["ipv4"]]), 10,
                   what="the hub's DNS")
        assert dig(alpha, HUB_V4, "nobody.mesh.internal", "A") == ("NXDOMAIN", [])
        assert dig(alpha, HUB_V4, "hub.mesh.internal", "A") == ("NOERROR", [HUB_V4])
        assert dig(alpha, HUB_V4, "alpha.mesh.internal", "A", "+tcp") == ("NOERROR", [a["ipv4"]])
        assert dig(alpha, HUB_V4, "example.test", "A") == ("NOERROR", [UPSTREAM_ANSWER])
        assert control.address in upstream.sources, upstream.sources

        control.stop()
        alpha.restart()
        started = time.monotonic()
        wait_until(lambda: dig(bravo, a["ipv4"], "bravo.mesh.internal", "A") == ("NOERROR", [b["ipv4"]]), 20,
                   what="alpha's DNS from its cached netmap")
        assert time.monotonic() - started < 20
        assert dig(bravo, a["ipv4"], "alpha.mesh.internal", "AAAA") == ("NOERROR", [a["ipv6"]])
        assert dig(bravo, a["ipv4"], "example.test", "A") == ("NOERROR", [UPSTREAM_ANSWER])
    finally:
        upstream.close()


def test_dns_port_options(lab):
    """[DNS] Port=5353 moves the node's server, --dns-port=5354 the hub's;
    port 53 then answers nothing."""
    _control, _key, (alpha, bravo) = start_mesh(lab, dns=["Port=5353"], hub_args=["--dns-port=5354"])
    a, b = alpha.status(), bravo.status()

    assert dig(bravo, a["ipv4"], "alpha.mesh.internal", port=5353) == ("NOERROR", [a["ipv4"]])
    assert dig(bravo, a["ipv4"], "alpha.mesh.internal") == ("no reply", [])
    wait_until(lambda: dig(alpha, HUB_V4, "bravo.mesh.internal", port=5354) == ("NOERROR", [b["ipv4"]]), 10,
               what="the hub's DNS on 5354")
    assert dig(alpha, HUB_V4, "bravo.mesh.internal") == ("no reply", [])


def test_phone_resolves_through_the_hub(lab):
    """Issue 14, Done when 1 (DNS): a stock wg-quick phone asks the DNS= of
    its config (the hub's mesh address) for alpha.mesh.internal and for an
    outside name (forwarded to the test's resolver); every node's own
    server answers the device's name."""
    from test_devices import Phone, add, config_value

    upstream = Upstream(lab)
    try:
        control, _, nodes = start_mesh(lab)
        cp = add(control, "cam1")
        assert config_value(cp.stdout, "DNS").split(",")[0].strip() == HUB_V4, cp.stdout
        phone = Phone(lab, "phone", 0, cp.stdout)
        alpha = nodes[0]
        # the phone's first handshake may reach the hub before its peer does; WireGuard retries after 5 s
        status, answers = wait_until(lambda: (lambda r: r if r[0] != "no reply" else None)(
            dig(phone.ns, HUB_V4, "alpha.mesh.internal")), 15, interval=0.5, what="the hub's DNS from the phone")
        assert (status, answers) == ("NOERROR", [alpha.status()["ipv4"]]), (status, answers)
        assert dig(phone.ns, HUB_V4, "example.org") == ("NOERROR", [UPSTREAM_ANSWER])
        assert dig(phone.ns, HUB_V4, "nobody.mesh.internal")[0] == "NXDOMAIN"
        for node in nodes:
            wait_until(lambda: dig(node, node.status()["ipv4"], "cam1.mesh.internal") ==
                       ("NOERROR", [phone.address]), 10, interval=0.2, what=f"{node.name} answers cam1")
    finally:
        upstream.close()

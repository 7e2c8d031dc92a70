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

import os
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

    def __init__(self, lab, address=UPSTREAM, answer=UPSTREAM_ANSWER, name="dnsup"):
        self.ns = lab.add_host(name, address)
        self.answer = answer
        self.sock = meshlab.netns_socket(self.ns)
        self.sock.bind((address, 53))
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
                     socket.inet_aton(self.answer))
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


def test_upstreams_follow_resolv_conf(lab):
    """The node's and the hub's servers take a new upstream from their
    resolv.conf as soon as it changes (replaced by a rename, as resolvconf
    and NetworkManager do, or rewritten in place), within 2 s each: before,
    they re-read it only when a netmap came, which nothing here causes (a
    coincidental one, an observed endpoint moving, is not counted on)."""
    first = Upstream(lab)
    second = Upstream(lab, f"{meshlab.UNDERLAY}.54", "192.0.2.98", "dnsup2")
    try:
        control, _key, (alpha, bravo) = start_mesh(lab)
        a = alpha.status()
        wait_until(lambda: dig(alpha, HUB_V4, "example.test") == ("NOERROR", [UPSTREAM_ANSWER]), 10,
                   what="the hub's DNS")
        wait_until(lambda: dig(bravo, a["ipv4"], "example.test") == ("NOERROR", [UPSTREAM_ANSWER]), 10,
                   what="alpha's DNS")

        path = lab.dir / "resolv.conf"
        tmp = lab.dir / "resolv.conf.new"
        tmp.write_text(f"nameserver {meshlab.UNDERLAY}.54\n")
        os.replace(tmp, path)
        changed = time.monotonic()
        for node, server in ((bravo, a["ipv4"]), (alpha, HUB_V4)):
            wait_until(lambda: dig(node, server, "example.test") == ("NOERROR", ["192.0.2.98"]), 2,
                       interval=0.05, what=f"{server} asks the new upstream")
        print(f"new upstream in use after {time.monotonic() - changed:.3f} s")

        path.write_text(f"nameserver {UPSTREAM}\n")      # in place
        for node, server in ((bravo, a["ipv4"]), (alpha, HUB_V4)):
            wait_until(lambda: dig(node, server, "example.test") == ("NOERROR", [UPSTREAM_ANSWER]), 2,
                       interval=0.05, what=f"{server} asks the first upstream again")
    finally:
        first.close()
        second.close()


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


def wire_name(*labels: bytes) -> bytes:
    """A name in wire format, each label as given (no checks: the test
    sends names no library would build)."""
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\0"


def wire_query(qid, name, qtype=1, *, qclass=1, flags=0x0100, qdcount=1, extra=b"", arcount=0) -> bytes:
    return (struct.pack(">HHHHHH", qid, flags, qdcount, 0, 0, arcount) + name + struct.pack(">HH", qtype, qclass)
            + extra)


def udp_ask(ns, server, message, *, timeout=2):
    """The reply to one datagram, or None."""
    sock = meshlab.netns_socket(ns)
    sock.settimeout(timeout)
    try:
        sock.sendto(message, (server, 53))
        return sock.recvfrom(65535)[0]
    except (TimeoutError, socket.timeout):
        return None
    finally:
        sock.close()


def tcp_connect(ns, server):
    sock = meshlab.netns_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect((server, 53))
    return sock


def tcp_read_message(sock):
    """One length-prefixed reply, or None when the server closed."""
    data = b""
    while len(data) < 2 or len(data) < 2 + (data[0] << 8 | data[1]):
        chunk = sock.recv(65537)
        if not chunk:
            return None
        data += chunk
    return data[2:]


def rcode(reply) -> int:
    return reply[3] & 0x0f


FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 1, 2, 3, 4, 5


def bad_queries(a_ipv4):
    """(what, query, the rcode dns-answer.c gives it, the answer's rdata or
    None when not looked at)."""
    alpha = (b"alpha", b"mesh", b"internal")
    query = wire_query(0, wire_name(*alpha))
    txt = wire_name() + struct.pack(">HHIH", 16, 1, 0, 402) + (bytes([200]) + b"x" * 200) * 2
    v4 = socket.inet_aton(a_ipv4)
    return [
        # names: a label of 64 (0x40 is no length but an extended label type), 256 bytes
        ("a 64-byte label", wire_query(1, wire_name(b"a" * 64, b"mesh", b"internal")), FORMERR, None),
        ("a 64-byte label outside", wire_query(2, wire_name(b"a" * 64, b"example", b"test")), FORMERR, None),
        ("a 256-byte name", wire_query(3, wire_name(*[b"b" * 63] * 3, b"c" * 62)), FORMERR, None),
        ("a 257-byte name", wire_query(4, wire_name(*[b"b" * 63] * 4)), FORMERR, None),
        ("a 255-byte name (forwarded)", wire_query(5, wire_name(*[b"b" * 63] * 3, b"c" * 61)), 0,
         socket.inet_aton(UPSTREAM_ANSWER)),
        ("a compression loop", wire_query(6, b"\x05alpha\xc0\x0c"), FORMERR, None),
        ("a pointer to itself", wire_query(7, b"\xc0\x0c"), FORMERR, None),
        # odd labels in the mesh domain: no member's, so NXDOMAIN
        ("a NUL in a label", wire_query(8, wire_name(b"al\0pha", b"mesh", b"internal")), NXDOMAIN, None),
        ("a dot in a label", wire_query(9, wire_name(b"al.pha", b"mesh", b"internal")), NXDOMAIN, None),
        ("a wildcard", wire_query(10, wire_name(b"*", b"mesh", b"internal")), NXDOMAIN, None),
        ("below a member", wire_query(11, wire_name(b"x", *alpha)), NXDOMAIN, None),
        ("a 63-byte label", wire_query(12, wire_name(b"a" * 63, b"mesh", b"internal")), NXDOMAIN, None),
        ("class CH", wire_query(13, wire_name(*alpha), qclass=3), REFUSED, None),
        ("AXFR", wire_query(14, wire_name(*alpha), qtype=252), REFUSED, None),
        # the header
        ("QDCOUNT=2, one question", wire_query(15, wire_name(*alpha), qdcount=2), FORMERR, None),
        ("QDCOUNT=2, two questions", wire_query(16, wire_name(*alpha), qdcount=2, extra=query[12:]), FORMERR, None),
        ("QDCOUNT=0", wire_query(17, b"", qdcount=0)[:12], FORMERR, None),
        ("TC in a query", wire_query(18, wire_name(*alpha), flags=0x0300), FORMERR, None),
        *[(f"opcode {op}", wire_query(19 + op, wire_name(*alpha), flags=0x0100 | op << 11), NOTIMP, None)
          for op in (1, 2, 4, 5, 15)],
        # oversized without EDNS0: read whole, answered within 512 bytes
        ("600 bytes (an additional record)", wire_query(40, wire_name(*alpha), extra=txt + txt[:150], arcount=1),
         0, v4),
        ("60000 bytes (trailing zeros)", wire_query(41, wire_name(*alpha)) + bytes(60000), 0, v4),
    ]


def test_bad_queries_get_dns_errors(lab):
    """Issue 14, Done when 6 (DNS over the network): what is malformed,
    oversized or an odd name gets the DNS error dns-answer.c decides
    (FORMERR, NXDOMAIN, REFUSED, NOTIMP), with the query's ID, from a
    node's server and the hub's alike, over UDP and TCP; a TCP length
    prefix that claims more than comes is cut off at the idle timeout, and
    good queries are answered meanwhile and after."""
    upstream = Upstream(lab)
    try:
        _control, _key, (alpha, bravo) = start_mesh(lab)
        a = alpha.status()
        wait_until(lambda: dig(bravo, HUB_V4, "alpha.mesh.internal") == ("NOERROR", [a["ipv4"]]), 10,
                   what="the hub's DNS")
        good = wire_query(0x4242, wire_name(b"alpha", b"mesh", b"internal"))
        for server in (a["ipv4"], HUB_V4):
            for what, message, want, rdata in bad_queries(a["ipv4"]):
                for transport in ("udp", "tcp"):
                    if transport == "udp":
                        reply = udp_ask(bravo.ns, server, message)
                    else:
                        with tcp_connect(bravo.ns, server) as sock:
                            sock.sendall(struct.pack(">H", len(message)) + message)
                            reply = tcp_read_message(sock)
                    where = f"{what} over {transport} to {server}"
                    assert reply is not None, f"{where}: no reply"
                    assert reply[:2] == message[:2] and reply[2] & 0x80, f"{where}: {reply[:12].hex()}"
                    assert rcode(reply) == want, f"{where}: rcode {rcode(reply)}, want {want}"
                    if transport == "udp":
                        assert len(reply) <= 512, f"{where}: {len(reply)} bytes"
                    if rdata is not None:
                        assert reply.endswith(rdata), f"{where}: {reply.hex()}"
                assert udp_ask(bravo.ns, server, good)[3] & 0x0f == 0, f"{server} after {what}"

            # TCP: a prefix that claims 65535 bytes, 100 sent; a zero-length
            # message (nothing to answer); 65535 bytes of a query and its
            # padding, then a good query on the same connection
            hanging = tcp_connect(bravo.ns, server)
            hanging.sendall(b"\xff\xff" + good + bytes(100 - len(good)))
            opened = time.monotonic()
            with tcp_connect(bravo.ns, server) as sock:
                sock.sendall(b"\0\0" + struct.pack(">H", len(good)) + good)
                reply = tcp_read_message(sock)
                assert reply is not None and reply[:2] == good[:2] and rcode(reply) == 0, reply
                big = good + bytes(65535 - len(good))
                sock.sendall(b"\xff\xff" + big + struct.pack(">H", len(good)) + good)
                assert rcode(tcp_read_message(sock)) == 0 and rcode(tcp_read_message(sock)) == 0
            assert dig(bravo, server, "alpha.mesh.internal", "A", "+tcp") == ("NOERROR", [a["ipv4"]])
            hanging.settimeout(15)
            try:
                assert hanging.recv(4096) == b"", "a reply to an incomplete message"
            finally:
                hanging.close()
            assert time.monotonic() - opened < 15
            assert dig(bravo, server, "alpha.mesh.internal") == ("NOERROR", [a["ipv4"]])
    finally:
        upstream.close()


def test_attack_underlay_neighbour_gets_no_dns(lab):
    """A host on the underlay that routes the mesh range to a node (or to
    the control host) reaches the mesh addresses there (Linux accepts a
    datagram for a local address on any interface), but the DNS servers
    answer only mesh and loopback sources: no open resolver, no mesh names,
    no reply at all (UDP) and a closed connection (TCP). Members still get
    answers."""
    upstream = Upstream(lab)
    try:
        control, _, nodes = start_mesh(lab)
        alpha, bravo = nodes
        alpha_v4 = alpha.status()["ipv4"]
        stranger = lab.add_host("stranger", f"{meshlab.UNDERLAY}.60")
        for via, target in ((alpha.address, alpha_v4), (control.address, HUB_V4)):
            stranger.exec("ip", "route", "replace", f"{target}/32", "via", via, check=True)
            # the path works: the target answers the stranger's ping over the underlay
            assert stranger.exec("ping", "-n", "-c", "1", "-W", "2", target).returncode == 0, target
            for proto in ((), ("+tcp",)):
                assert dig(stranger, target, "alpha.mesh.internal", "A", *proto)[0] == "no reply", (target, proto)
                assert dig(stranger, target, "example.org", "A", *proto)[0] == "no reply", (target, proto)
        assert upstream.sources == [], upstream.sources
        assert dig(bravo, alpha_v4, "alpha.mesh.internal") == ("NOERROR", [alpha_v4])
        assert dig(bravo, HUB_V4, "example.org") == ("NOERROR", [UPSTREAM_ANSWER])
    finally:
        upstream.close()

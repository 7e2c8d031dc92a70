#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Load generator for meshd-control: many nodes over HTTPS, few processes.

Runs inside a network namespace (`ip netns exec NS python3 loadgen.py …`),
standard library only (asyncio + ssl, a minimal HTTP/1.1 client with
keep-alive). The server's certificate is self-signed and is not checked:
the load generator measures the server, it does not protect secrets.

  register  POST /v1/register COUNT times over CONCURRENCY keep-alive
            connections, asking for a netmap of the node alone
            ("netmap_scope": "self", as meshd does; --netmap-scope=full for
            the whole netmap in every reply); writes one JSON line per node
            (id, name, token, public_key) to --out and a summary line to
            stdout.
  poll      one long-poll (GET /v1/netmap?since=V, with --delta &delta=1
            as meshd sends it) per token of --tokens
            (lines FIRST..LAST-1), each on its own TLS connection. Prints
            "parked N" once every request is sent, then waits for the
            replies (a 304 is re-polled, as meshd does) and prints one JSON
            summary with each reply's arrival (time.monotonic(), the same
            clock in every process of the host) when all have come or
            --deadline seconds passed.
"""

import argparse
import asyncio
import json
import re
import resource
import ssl
import sys
import time
from pathlib import Path

# the proof of key possession (docs/protocol.md, "Joining"), as the tests make it
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from meshlab import fake_public_key, private_key_of, register_proof  # noqa: E402

TOKEN_RE = re.compile(rb'"node_id":(\d+),"name":"([^"]*)","token":"([^"]+)"')


def tls_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def raise_nofile(want: int):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(want, soft), hard), hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        sys.exit(f"loadgen: RLIMIT_NOFILE is {soft}, {want} needed (hard limit {hard})")


class Connection:
    """One keep-alive HTTPS connection; request() returns (status, body
    length, first bytes of the body, monotonic time of the last byte)."""

    def __init__(self, host, port, ctx):
        self.host, self.port, self.ctx = host, port, ctx
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, ssl=self.ctx,
                                                                 ssl_handshake_timeout=120)

    def send(self, method, path, token=None, body=None):
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if token:
            head.append(f"Authorization: Bearer {token}")
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        data = ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")
        self.writer.write(data)

    async def drain(self):
        await self.writer.drain()

    async def response(self, keep=512):
        """Reads one response; keeps the first `keep` bytes of the body."""
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            if line.lower().startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        first = b""
        left = length
        while left > 0:
            chunk = await self.reader.read(min(left, 1 << 20))
            if not chunk:
                raise ConnectionError("connection closed mid-body")
            if len(first) < keep:
                first += chunk[:keep - len(first)]
            left -= len(chunk)
        return status, length, first, time.monotonic()

    def close(self):
        if self.writer is not None:
            self.writer.close()


def split_url(url):
    m = re.match(r"^https://([^/:]+):(\d+)$", url)
    if not m:
        sys.exit(f"loadgen: --url must be https://IP:PORT, not {url!r}")
    return m.group(1), int(m.group(2))


# ---------------------------------------------------------------- register

async def register(a):
    host, port = split_url(a.url)
    ctx = tls_context()
    queue = asyncio.Queue()
    for i in range(a.first, a.first + a.count):
        queue.put_nowait(i)
    out = open(a.out, "a")
    done = 0
    errors = []

    async def worker():
        nonlocal done
        conn = Connection(host, port, ctx)
        await conn.open()
        try:
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                key = fake_public_key()
                conn.send("POST", "/v1/challenge", body=b"{}")
                await conn.drain()
                status, _length, first, _t = await conn.response()
                if status != 200:
                    errors.append(f"node {i}: challenge: HTTP {status} {first[:200]!r}")
                    continue
                ch = json.loads(first)
                hostname = f"{a.prefix}{i}"
                body = json.dumps({
                    "authkey": a.authkey, "public_key": key, "hostname": hostname,
                    # a documentation address per node: unreachable, but a
                    # real endpoint for WireGuard to hold
                    "endpoints": [f"203.0.113.{1 + i % 250}:{20000 + i % 40000}"],
                    "challenge": ch["challenge"],
                    "proof": register_proof(private_key_of(key), ch["server_key"], ch["challenge"], key,
                                            hostname, a.authkey),
                    "netmap_scope": a.netmap_scope,
                }).encode()
                conn.send("POST", "/v1/register", body=body)
                await conn.drain()
                status, _length, first, _t = await conn.response()
                m = TOKEN_RE.search(first)
                if status != 200 or not m:
                    errors.append(f"node {i}: HTTP {status} {first[:200]!r}")
                    continue
                out.write(json.dumps({"id": int(m.group(1)), "name": m.group(2).decode(),
                                      "token": m.group(3).decode(), "public_key": key}) + "\n")
                done += 1
        finally:
            conn.close()

    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(min(a.concurrency, a.count))))
    out.close()
    elapsed = time.monotonic() - start
    print(json.dumps({"registered": done, "seconds": round(elapsed, 3), "errors": errors[:5],
                      "n_errors": len(errors)}), flush=True)
    return 0 if not errors else 1


# ---------------------------------------------------------------- poll

async def poll(a):
    host, port = split_url(a.url)
    ctx = tls_context()
    with open(a.tokens) as f:
        tokens = [json.loads(line)["token"] for line in f if line.strip()][a.first:a.last]
    raise_nofile(len(tokens) + 256)
    replies = [None] * len(tokens)       # (status, bytes, monotonic) of the reply that ended the wait
    failures = []
    sem = asyncio.Semaphore(a.handshakes)
    parked = 0
    all_parked = asyncio.Event()

    async def one(i, token):
        nonlocal parked
        conn = Connection(host, port, ctx)
        counted = False
        try:
            async with sem:
                await conn.open()
            while True:
                conn.send("GET", f"/v1/netmap?since={a.since}&timeout=60{'&delta=1' if a.delta else ''}",
                          token=token)
                await conn.drain()
                if not counted:
                    counted = True
                    parked += 1
                    if parked == len(tokens):
                        all_parked.set()
                status, length, _first, t = await conn.response(keep=0)
                if status == 304:
                    continue        # the server's timeout: poll again, as meshd does
                replies[i] = (status, length, t)
                return
        except Exception as e:      # noqa: BLE001 - counted and reported, never hidden
            failures.append(f"{type(e).__name__}: {e}")
            if not counted:
                counted = True
                parked += 1
                if parked == len(tokens):
                    all_parked.set()
        finally:
            conn.close()

    tasks = [asyncio.ensure_future(one(i, t)) for i, t in enumerate(tokens)]
    await all_parked.wait()
    print(f"parked {len(tokens) - len(failures)} {time.monotonic():.6f}", flush=True)
    done, pending = await asyncio.wait(tasks, timeout=a.deadline)
    for t in pending:
        t.cancel()
    got = [r for r in replies if r is not None]
    print(json.dumps({
        "polls": len(tokens),
        "replies": len(got),
        "status": {str(s): sum(1 for r in got if r[0] == s) for s in sorted({r[0] for r in got})},
        "bytes": sum(r[1] for r in got),
        "replies_at": [[r[0], round(r[2], 6)] for r in got],     # [status, monotonic time]
        "failures": len(failures) + len(pending),
        "failure_sample": failures[:5],
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }), flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("register")
    r.add_argument("--url", required=True)
    r.add_argument("--authkey", required=True)
    r.add_argument("--count", type=int, required=True)
    r.add_argument("--first", type=int, default=0, help="number of the first node (host names PREFIX<n>)")
    r.add_argument("--prefix", default="n")
    r.add_argument("--concurrency", type=int, default=8)
    r.add_argument("--out", required=True)
    r.add_argument("--netmap-scope", choices=("self", "full"), default="self",
                   help="the reply's netmap: the node alone (as meshd asks) or the whole mesh")
    p = sub.add_parser("poll")
    p.add_argument("--url", required=True)
    p.add_argument("--tokens", required=True)
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--last", type=int, default=None)
    p.add_argument("--since", type=int, required=True)
    p.add_argument("--delta", action="store_true", help="ask for deltas (&delta=1), as meshd does")
    p.add_argument("--handshakes", type=int, default=64, help="TLS handshakes in flight at once")
    p.add_argument("--deadline", type=float, default=300.0)
    a = ap.parse_args()
    return asyncio.run(register(a) if a.cmd == "register" else poll(a))


if __name__ == "__main__":
    sys.exit(main())

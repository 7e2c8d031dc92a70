# SPDX-License-Identifier: LGPL-2.1-or-later
"""A stand-in for meshd's local API (docs/api.md), for testing clients
without a daemon, a network or root.

    with FakeMeshd(tmp_path / "io.meshd.sock") as meshd:
        meshd.handlers["io.meshd.Up"] = lambda params: meshd.fail(
            "io.meshd.AuthFailed", message="invalid auth key")
        ... run meshctl --socket meshd.path ...
        assert meshd.calls[-1] == ("io.meshd.Up", {...})

Each handler takes the call's parameters and returns the reply's
parameters, or raises VarlinkError. Wire format: one JSON object per
message, each terminated by a NUL byte.
"""

import json
import socketserver
import threading
import time
from pathlib import Path

NOW_USEC = lambda: int(time.time() * 1_000_000)  # noqa: E731


class VarlinkError(Exception):
    def __init__(self, name, **parameters):
        super().__init__(name)
        self.name = name
        self.parameters = parameters


def default_status():
    return {
        "state": "online", "status_text": "",
        "name": "laptop", "fqdn": "laptop.mesh.internal",
        "ipv4": "100.64.0.2", "ipv6": "fd7a:115c:a1e0::2",
        "public_key": "pTxOnom++kAALwxGQfxN3Jtw3/BOeCNHuhm8+7kVI2k=",
        "interface": "mesh0", "backend": "userspace", "listen_port": 41641,
        "control_url": "https://control.example.net:8443", "control_connected": True,
        "netmap_version": 12, "peers_total": 2, "peers_reachable": 1,
    }


def default_peers():
    now = NOW_USEC()
    return [
        {"name": "nas", "fqdn": "nas.mesh.internal",
         "ipv4": "100.64.0.3", "ipv6": "fd7a:115c:a1e0::3",
         "public_key": "bG9yZW0gaXBzdW0gZG9sb3Igc2l0IGFtZXQgY29uc2U=",
         "endpoint": "192.0.2.10:41641", "path": "direct",
         "path_reason": "probe replies over the direct path", "reachable": True,
         "last_handshake_usec": now - 12_000_000, "last_probe_reply_usec": now - 2_000_000,
         "rtt_usec": 1234, "rx_bytes": 1000, "tx_bytes": 2000},
        {"name": "backup", "fqdn": "backup.mesh.internal",
         "ipv4": "100.64.0.4", "ipv6": "fd7a:115c:a1e0::4",
         "public_key": "ZG9sb3Igc2l0IGFtZXQgbG9yZW0gaXBzdW0gY29uc2U=",
         "endpoint": None, "path": "relay",
         "path_reason": "no probe reply over the direct path", "reachable": False,
         "last_handshake_usec": 0, "last_probe_reply_usec": 0,
         "rtt_usec": 0, "rx_bytes": 0, "tx_bytes": 0},
    ]


class FakeMeshd:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.status = default_status()
        self.peers = default_peers()
        self.calls = []  # (method, parameters), in order
        self.handlers = {
            "io.meshd.GetStatus": lambda p: self.status,
            "io.meshd.ListPeers": lambda p: {"peers": self.peers},
            "io.meshd.Ping": self._ping,
            "io.meshd.WaitOnline": self._wait_online,
            "io.meshd.Up": lambda p: self.status,
            "io.meshd.Down": lambda p: {},
            "io.meshd.Logout": lambda p: {},
        }

    @staticmethod
    def fail(name, **parameters):
        raise VarlinkError(name, **parameters)

    def peer(self, name):
        for p in self.peers:
            if name in (p["name"], p["fqdn"], p["ipv4"], p["ipv6"]):
                return p
        self.fail("io.meshd.PeerNotFound", peer=name, message=f"no peer {name}")

    def _ping(self, params):
        p = self.peer(params["peer"])
        if not p["reachable"]:
            self.fail("io.meshd.Timeout", unreachable=[p["name"]],
                      message="no probe reply within 2s")
        return {"peer": p["name"], "address": p["ipv4"], "rtt_usec": p["rtt_usec"],
                "path": p["path"]}

    def _wait_online(self, params):
        wanted = [self.peer(n) for n in params.get("peers", [])] or self.peers
        down = [p["name"] for p in wanted if not p["reachable"]]
        online = len(down) < len(wanted) if params.get("any") else not down
        if not online:
            self.fail("io.meshd.Timeout", unreachable=down,
                      message="not online in time")
        return {"online": True}

    def _answer(self, message):
        method = message.get("method")
        params = message.get("parameters", {})
        self.calls.append((method, params))
        handler = self.handlers.get(method)
        try:
            if handler is None:
                self.fail("org.varlink.service.MethodNotFound", method=method)
            return {"parameters": handler(params)}
        except VarlinkError as e:
            return {"error": e.name, "parameters": e.parameters}

    def __enter__(self):
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                buf = b""
                while chunk := self.request.recv(65536):
                    buf += chunk
                    while b"\0" in buf:
                        raw, buf = buf.split(b"\0", 1)
                        reply = fake._answer(json.loads(raw))
                        self.request.sendall(json.dumps(reply).encode() + b"\0")

        self.server = socketserver.ThreadingUnixStreamServer(str(self.path), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.path.unlink(missing_ok=True)
